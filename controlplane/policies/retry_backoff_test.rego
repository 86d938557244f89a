package cpl.rules.retry_backoff_test

import rego.v1

import data.cpl.rules.retry_backoff

_wf(retry) := {"workflow": {"spec": {"start": "charge", "steps": [
	{"name": "charge", "type": "task", "activity": "pay", "retry": retry, "end": true},
	{"name": "par", "type": "parallel", "branches": [{"start": "inner", "steps": [
		{"name": "inner", "type": "task", "activity": "x", "retry": retry, "end": true},
	]}]},
]}}}

_paths(d) := {v.path | some v in d}

test_compliant if {
	count(retry_backoff.deny) == 0 with input as _wf({"maxAttempts": 5, "backoffRate": 2.0, "maxInterval": 60, "jitter": "full"})
}

test_no_retry_attempts_is_fine if {
	count(retry_backoff.deny) == 0 with input as _wf({"maxAttempts": 1})
}

test_rate_one_fires_on_field_at_any_depth if {
	d := retry_backoff.deny with input as _wf({"maxAttempts": 5, "backoffRate": 1.0, "maxInterval": 60})
	_paths(d) == {"/spec/steps/0/retry/backoffRate", "/spec/steps/1/branches/0/steps/0/retry/backoffRate"}
	some v in d
	v.msg == "step 'charge' retries up to 4 times (maxAttempts 5) without backoff (backoffRate 1)"
}

test_missing_rate_and_interval_fire_on_retry if {
	d := retry_backoff.deny with input as _wf({"maxAttempts": 3})
	_paths(d) == {"/spec/steps/0/retry", "/spec/steps/1/branches/0/steps/0/retry"}
	count(d) == 4
}

test_inherited_default_is_named if {
	r := {"maxAttempts": 3, "backoffRate": 2, "jitter": "full"}
	inp := {"workflow": {"spec": {"defaults": {"retry": r}, "steps": [{"name": "a", "type": "task", "retry": r}]}}}
	d := retry_backoff.deny with input as inp
	_paths(d) == {"/spec/steps/0/retry"}
	some v in d
	contains(v.msg, "inherited from spec.defaults.retry")
}
