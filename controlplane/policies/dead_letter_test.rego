package cpl.rules.dead_letter_test

import rego.v1

import data.cpl.rules.dead_letter

_inp(tier, spec) := {"environment": {"tier": tier}, "workflow": {"metadata": {"name": "orders"}, "spec": spec}}

test_compliant if {
	count(dead_letter.deny) == 0 with input as _inp("production", {"onError": {"deadLetter": "orders-dlq"}})
}

test_non_production_exempt if {
	count(dead_letter.deny) == 0 with input as _inp("staging", {})
}

test_missing_on_error if {
	d := dead_letter.deny with input as _inp("production", {"steps": []})
	d == {{"msg": "production workflow 'orders' sets no onError.deadLetter: unhandled failures would be lost", "path": "/spec"}}
}

test_on_error_without_dead_letter if {
	d := dead_letter.deny with input as _inp("production", {"onError": {"compensate": true}})
	{v.path | some v in d} == {"/spec/onError"}
}
