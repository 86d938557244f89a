package cpl.rules.circuit_breaker_test

import rego.v1

import data.cpl.rules.circuit_breaker

_inp(cb) := {
	"bindings": {"activities": {
		"psp.charge": {"external": true},
		"inventory.reserve": {"external": false},
	}},
	"workflow": {"spec": {"steps": [
		{"name": "reserve", "type": "task", "activity": "inventory.reserve"},
		{"name": "m", "type": "map", "steps": [object.union({"name": "charge", "type": "task", "activity": "psp.charge"}, cb)]},
	]}},
}

test_compliant if {
	count(circuit_breaker.deny) == 0 with input as _inp({"circuitBreaker": {"failureThreshold": 5, "resetTimeout": 30}})
}

test_external_without_breaker if {
	d := circuit_breaker.deny with input as _inp({})
	d == {{"msg": "step 'charge' calls external activity 'psp.charge' without a circuitBreaker", "path": "/spec/steps/1/steps/0"}}
}

test_no_bindings_does_not_fire if {
	inp := json.remove(_inp({}), ["bindings"])
	count(circuit_breaker.deny) == 0 with input as inp
}
