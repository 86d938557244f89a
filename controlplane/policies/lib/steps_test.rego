package cpl.lib.steps_test

import rego.v1

import data.cpl.lib.steps

_nest(n) := s if {
	# n levels of map nesting built without recursion
	inner := {"name": "leaf", "type": "task"}
	levels := [l | some l in numbers.range(1, n)]
	s := _wrap(inner, count(levels))
}

_wrap(inner, 0) := inner

_wrap(inner, 1) := {"name": "m1", "type": "map", "steps": [inner]}

_wrap(inner, 10) := {"name": "m1", "type": "map", "steps": [{"name": "m2", "type": "map", "steps": [{"name": "m3", "type": "map", "steps": [{"name": "m4", "type": "map", "steps": [{"name": "m5", "type": "map", "steps": [{"name": "m6", "type": "map", "steps": [{"name": "m7", "type": "map", "steps": [{"name": "m8", "type": "map", "steps": [{"name": "m9", "type": "parallel", "branches": [{"steps": [{"name": "m10", "type": "map", "steps": [inner]}]}]}]}]}]}]}]}]}]}]}

_wf := {"workflow": {"spec": {"steps": [
	{"name": "a", "type": "task", "parameters": {"steps": [{"name": "fake", "type": "task"}]}},
	{"name": "p", "type": "parallel", "branches": [{"steps": [{"name": "b", "type": "task", "compensation": "c"}, {"name": "c", "type": "task"}]}]},
	{"name": "m", "type": "map", "steps": [{"name": "w", "type": "wait", "duration": 1, "next": "x"}, {"name": "x", "type": "choice", "rules": [{"next": "w"}], "default": "y"}]},
]}}}

test_enumerates_all_depths_but_not_parameters if {
	object.keys(steps.all_steps) == {
		"/spec/steps/0", "/spec/steps/1", "/spec/steps/1/branches/0/steps/0",
		"/spec/steps/1/branches/0/steps/1", "/spec/steps/2", "/spec/steps/2/steps/0", "/spec/steps/2/steps/1",
	} with input as _wf
	object.keys(steps.tasks) == {"/spec/steps/0", "/spec/steps/1/branches/0/steps/0", "/spec/steps/1/branches/0/steps/1"} with input as _wf
}

test_scopes_graphs_compensations if {
	steps.scope["/spec/steps/2/steps/1"] == "/spec/steps/2/steps" with input as _wf
	steps.graph("/spec/steps/2/steps") == {"w": {"x"}, "x": {"w", "y"}} with input as _wf
	object.keys(steps.compensation_tasks) == {"/spec/steps/1/branches/0/steps/1"} with input as _wf
	steps.owner("/spec/steps/1/branches/0/steps/0/parameters/x") == "/spec/steps/1/branches/0/steps/0" with input as _wf
}

test_deep_nesting_falls_back_to_walk if {
	inp := {"workflow": {"spec": {"steps": [_nest(10)]}}}
	steps.all_steps["/spec/steps/0/steps/0/steps/0/steps/0/steps/0/steps/0/steps/0/steps/0/steps/0/branches/0/steps/0/steps/0"].name == "leaf" with input as inp
	count(steps.tasks) == 1 with input as inp
}

test_paths if {
	steps.paths["/spec/steps/1/branches/0/steps/1"] == ["spec", "steps", 1, "branches", 0, "steps", 1] with input as _wf
}
