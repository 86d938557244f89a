package cpl.rules.retry_jitter_test

import rego.v1

import data.cpl.rules.retry_jitter

_inp(tier, retry) := {
	"environment": {"name": "env", "tier": tier},
	"workflow": {"spec": {"steps": [
		{"name": "ok", "type": "task", "retry": {"maxAttempts": 1}},
		{"name": "charge", "type": "task", "retry": retry},
		{"name": "m", "type": "map", "steps": [{"name": "each", "type": "task", "retry": retry}]},
	]}},
}

_paths(d) := {v.path | some v in d}

test_compliant if {
	count(retry_jitter.deny) == 0 with input as _inp("production", {"maxAttempts": 3, "jitter": "full"})
}

test_development_is_exempt if {
	count(retry_jitter.deny) == 0 with input as _inp("development", {"maxAttempts": 3, "jitter": "none"})
}

test_jitter_none_on_production if {
	d := retry_jitter.deny with input as _inp("production", {"maxAttempts": 3, "jitter": "none"})
	_paths(d) == {"/spec/steps/1/retry/jitter", "/spec/steps/2/steps/0/retry/jitter"}
}

test_jitter_missing_on_staging if {
	d := retry_jitter.deny with input as _inp("staging", {"maxAttempts": 3})
	_paths(d) == {"/spec/steps/1/retry", "/spec/steps/2/steps/0/retry"}
	some v in d
	v.msg == "step 'charge' retries without full jitter (jitter unset) on staging tier 'env'"
}

test_tiers_are_configurable if {
	d := retry_jitter.deny with input as _inp("development", {"maxAttempts": 3})
		with data.cpl.config as {"jitterTiers": ["development"]}
	count(d) == 2
}
