package cpl.rules.timeouts_test

import rego.v1

import data.cpl.rules.timeouts

_paths(d) := {v.path | some v in d}

_wf := {"workflow": {"metadata": {"name": "orders"}, "spec": {"timeout": 7200, "steps": [
	{"name": "a", "type": "task", "timeout": 300},
	{"name": "w", "type": "wait", "duration": 10},
	{"name": "p", "type": "parallel", "branches": [{"steps": [{"name": "b", "type": "task", "timeout": 60}]}]},
]}}}

test_compliant if {
	count(timeouts.deny) == 0 with input as _wf
}

test_missing_workflow_timeout if {
	d := timeouts.deny with input as json.remove(_wf, ["workflow/spec/timeout"])
	d == {{"msg": "workflow 'orders' sets no spec.timeout (whole-run deadline)", "path": "/spec"}}
}

test_missing_nested_task_timeout if {
	d := timeouts.deny with input as json.remove(_wf, ["workflow/spec/steps/2/branches/0/steps/0/timeout"])
	_paths(d) == {"/spec/steps/2/branches/0/steps/0"}
}

test_zero_timeout if {
	d := timeouts.deny with input as json.patch(_wf, [{"op": "replace", "path": "/workflow/spec/steps/0/timeout", "value": 0}])
	_paths(d) == {"/spec/steps/0/timeout"}
}
