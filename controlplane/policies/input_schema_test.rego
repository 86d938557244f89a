package cpl.rules.input_schema_test

import rego.v1

import data.cpl.rules.input_schema

_inp(spec) := {"workflow": {"metadata": {"name": "orders"}, "spec": spec}}

test_compliant if {
	count(input_schema.deny) == 0 with input as _inp({"input": {"schema": {"type": "object"}}})
}

test_scheduled_needs_no_schema if {
	count(input_schema.deny) == 0 with input as _inp({"schedule": {"cron": "0 2 * * *"}})
}

test_missing_schema if {
	d := input_schema.deny with input as _inp({"input": {"maxInlineBytes": 1024}})
	d == {{"msg": "workflow 'orders' has no schedule (it is started by callers) but declares no input.schema", "path": "/spec/input"}}
}

test_missing_input if {
	d := input_schema.deny with input as _inp({})
	{v.path | some v in d} == {"/spec"}
}
