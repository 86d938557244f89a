package cpl.rules.retry_max_attempts_test

import rego.v1

import data.cpl.rules.retry_max_attempts

_inp(n) := {"workflow": {"spec": {"steps": [
	{"name": "p", "type": "parallel", "branches": [
		{"steps": [{"name": "a", "type": "task"}]},
		{"steps": [{"name": "b", "type": "task", "retry": {"maxAttempts": n}}]},
	]},
]}}}

test_compliant if {
	count(retry_max_attempts.deny) == 0 with input as _inp(10)
}

test_too_many_attempts if {
	d := retry_max_attempts.deny with input as _inp(11)
	d == {{"msg": "step 'b' retries up to 11 attempts, more than the allowed 10", "path": "/spec/steps/0/branches/1/steps/0/retry/maxAttempts"}}
}

test_configurable_limit if {
	count(retry_max_attempts.deny) == 1 with input as _inp(4) with data.cpl.config as {"maxAttempts": 3}
	count(retry_max_attempts.deny) == 0 with input as _inp(11) with data.cpl.config as {"maxAttempts": 20}
}
