package cpl.rules.engine_compat_test

import rego.v1

import data.cpl.rules.engine_compat

_inp(tier, compat) := {
	"environment": {"name": "prod", "tier": tier},
	"target": {"name": "aws-eu", "engine": "stepfunctions"},
	"workflow": {"spec": {}},
	"compat": compat,
}

_jitter := {"feature": "retry.jitter", "support": "approximated", "path": "/spec/steps/0/retry/jitter", "reason": "Step Functions JitterStrategy FULL"}

_heartbeat := {"feature": "task.heartbeat", "support": "unsupported", "path": "/spec/steps/1/heartbeat", "reason": "no heartbeat on Lambda tasks"}

test_compliant if {
	count(engine_compat.deny) == 0 with input as _inp("production", [{"feature": "retry", "support": "exact", "path": "/spec/steps/0/retry"}])
	count(engine_compat.warn) == 0 with input as _inp("production", [{"feature": "retry", "support": "exact", "path": "/spec/steps/0/retry"}])
	count(engine_compat.deny) == 0 with input as _inp("production", [])
	count(engine_compat.deny) == 0 with input as json.remove(_inp("production", []), ["compat"])
}

test_unsupported_on_production if {
	d := engine_compat.deny with input as _inp("production", [_jitter, _heartbeat])
	d == {{"msg": "feature 'task.heartbeat' is unsupported on stepfunctions target 'aws-eu': no heartbeat on Lambda tasks", "path": "/spec/steps/1/heartbeat"}}
}

test_approximated_warns_on_production if {
	w := engine_compat.warn with input as _inp("production", [_jitter, _heartbeat])
	w == {{"msg": "feature 'retry.jitter' is only approximated on stepfunctions target 'aws-eu': Step Functions JitterStrategy FULL", "path": "/spec/steps/0/retry/jitter"}}
}

test_unsupported_outside_production_only_warns if {
	count(engine_compat.deny) == 0 with input as _inp("staging", [_jitter, _heartbeat])
	w := engine_compat.warn with input as _inp("staging", [_jitter, _heartbeat])
	{v.path | some v in w} == {"/spec/steps/1/heartbeat"}
}

_jitter_at(i) := object.union(_jitter, {"path": sprintf("/spec/steps/%d/retry/jitter", [i])})

test_one_finding_per_feature_with_count_and_first_paths if {
	w := engine_compat.warn with input as _inp("production", [_jitter_at(0), _heartbeat, _jitter_at(2), _jitter_at(5), _jitter_at(7)])
	w == {{"msg": "feature 'retry.jitter' is only approximated on stepfunctions target 'aws-eu' at 4 places (/spec/steps/0/retry/jitter, /spec/steps/2/retry/jitter, /spec/steps/5/retry/jitter and 1 more): Step Functions JitterStrategy FULL", "path": "/spec/steps/0/retry/jitter"}}
	d := engine_compat.deny with input as _inp("production", [_heartbeat, _jitter_at(0), object.union(_heartbeat, {"path": "/spec/steps/3/heartbeat"})])
	d == {{"msg": "feature 'task.heartbeat' is unsupported on stepfunctions target 'aws-eu' at 2 places (/spec/steps/1/heartbeat, /spec/steps/3/heartbeat): no heartbeat on Lambda tasks", "path": "/spec/steps/1/heartbeat"}}
}

test_same_feature_different_support_reported_separately if {
	hb := object.union(_heartbeat, {"support": "approximated", "path": "/spec/steps/4/heartbeat"})
	count(engine_compat.deny) == 1 with input as _inp("production", [_heartbeat, hb])
	count(engine_compat.warn) == 1 with input as _inp("production", [_heartbeat, hb])
}
