package cpl.rules.idempotency_key_test

import rego.v1

import data.cpl.rules.idempotency_key

_paths(d) := {v.path | some v in d}

_compliant := {"workflow": {"spec": {"start": "charge", "steps": [
	{"name": "charge", "type": "task", "idempotencyKey": "$.orderId", "retry": {"maxAttempts": 3}, "compensation": "refund", "end": true},
	{"name": "refund", "type": "task", "idempotencyKey": "$.orderId", "end": true},
	{"name": "notify", "type": "task", "retry": {"maxAttempts": 1}, "end": true},
]}}}

test_compliant if {
	count(idempotency_key.deny) == 0 with input as _compliant
}

test_retrying_task_without_key if {
	inp := json.remove(_compliant, ["workflow/spec/steps/0/idempotencyKey"])
	d := idempotency_key.deny with input as inp
	d == {{"msg": "step 'charge' has no idempotencyKey but has compensation 'refund' and retries (maxAttempts 3)", "path": "/spec/steps/0"}}
}

test_compensation_task_without_key if {
	inp := json.remove(_compliant, ["workflow/spec/steps/1/idempotencyKey"])
	d := idempotency_key.deny with input as inp
	d == {{"msg": "step 'refund' has no idempotencyKey but is the compensation of 'charge'", "path": "/spec/steps/1"}}
}

test_nested_task_with_compensation_only if {
	inp := {"workflow": {"spec": {"steps": [{"name": "m", "type": "map", "steps": [
		{"name": "a", "type": "task", "compensation": "b"},
		{"name": "b", "type": "task", "idempotencyKey": "$.id"},
	]}]}}}
	d := idempotency_key.deny with input as inp
	_paths(d) == {"/spec/steps/0/steps/0"}
}
