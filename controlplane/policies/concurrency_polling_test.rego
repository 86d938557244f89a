package cpl.rules.concurrency_polling_test

import rego.v1

import data.cpl.rules.concurrency_polling

_paths(d) := {v.path | some v in d}

# poll -> check -> (done | poll) : a polling loop paced by `poll`
_loop(wait) := [
	object.union({"name": "poll", "type": "wait", "next": "check"}, wait),
	{"name": "check", "type": "task", "next": "decide"},
	{"name": "decide", "type": "choice", "rules": [{"when": {"path": "$.ready", "eq": true}, "next": "done"}], "default": "poll"},
	{"name": "done", "type": "succeed"},
]

_inp(steps) := {"workflow": {"spec": {"start": "poll", "steps": steps}}}

test_compliant if {
	steps := array.concat(_loop({"duration": 30}), [{"name": "fan", "type": "map", "items": "$.xs", "maxConcurrency": 10, "steps": [{"name": "x", "type": "task"}]}])
	count(concurrency_polling.deny) == 0 with input as _inp(steps)
}

test_fast_wait_without_loop_is_fine if {
	count(concurrency_polling.deny) == 0 with input as _inp([
		{"name": "w", "type": "wait", "duration": 1, "next": "t"},
		{"name": "t", "type": "task", "end": true},
	])
}

test_map_without_max_concurrency if {
	d := concurrency_polling.deny with input as _inp([{"name": "fan", "type": "map", "items": "$.xs", "steps": []}])
	d == {{"msg": "map step 'fan' sets no maxConcurrency: it fans out over all items of $.xs at once", "path": "/spec/steps/0"}}
}

test_fast_polling_loop if {
	d := concurrency_polling.deny with input as _inp(_loop({"duration": 1}))
	d == {{"msg": "step 'poll' loops back to itself and pauses only 1s (duration), faster than the minimum poll interval 5s", "path": "/spec/steps/0/duration"}}
}

test_loop_paced_by_another_slow_wait_is_fine if {
	steps := [
		{"name": "poll", "type": "wait", "duration": 1, "next": "check"},
		{"name": "check", "type": "task", "next": "backoff"},
		{"name": "backoff", "type": "wait", "duration": 60, "next": "poll"},
	]
	count(concurrency_polling.deny) == 0 with input as _inp(steps)
}

test_fast_approval_loop_via_on_timeout_inside_map if {
	inner := [
		{"name": "ask", "type": "approval", "signal": "ok", "timeout": 2, "onTimeout": "ask", "next": "fin"},
		{"name": "fin", "type": "succeed"},
	]
	d := concurrency_polling.deny with input as _inp([{"name": "m", "type": "map", "maxConcurrency": 1, "steps": inner}])
	_paths(d) == {"/spec/steps/0/steps/0/timeout"}
}

test_configurable_min_poll_interval if {
	d := concurrency_polling.deny with input as _inp(_loop({"duration": 30})) with data.cpl.config as {"minPollInterval": 60}
	_paths(d) == {"/spec/steps/0/duration"}
}
