package cpl.rules.compensation_test

import rego.v1

import data.cpl.rules.compensation

_inp(compensate, steps) := {"workflow": {"metadata": {"name": "orders"}, "spec": {"onError": {"compensate": compensate}, "steps": steps}}}

test_compliant_nested_compensation if {
	count(compensation.deny) == 0 with input as _inp(true, [{"name": "p", "type": "parallel", "branches": [{"steps": [
		{"name": "a", "type": "task", "compensation": "b"},
		{"name": "b", "type": "task"},
	]}]}])
}

test_compensate_false_is_fine if {
	count(compensation.deny) == 0 with input as _inp(false, [{"name": "a", "type": "task"}])
}

test_no_compensation if {
	d := compensation.deny with input as _inp(true, [{"name": "a", "type": "task"}])
	d == {{"msg": "workflow 'orders' sets onError.compensate but no task declares a compensation", "path": "/spec/onError/compensate"}}
}
