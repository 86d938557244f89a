package cpl.rules.slo_alerts_test

import rego.v1

import data.cpl.rules.slo_alerts

_spec := {
	"slo": {"completionTime": {"p95": 600}, "successRate": 0.995},
	"alerts": [{"metric": "failureRate", "above": 0.02, "window": 900}],
}

_inp(tier, spec) := {"environment": {"tier": tier}, "workflow": {"metadata": {"name": "orders"}, "spec": spec}}

_paths(d) := {v.path | some v in d}

test_compliant if {
	count(slo_alerts.deny) == 0 with input as _inp("production", _spec)
}

test_development_exempt if {
	count(slo_alerts.deny) == 0 with input as _inp("development", {})
}

test_nothing_declared if {
	d := slo_alerts.deny with input as _inp("production", {})
	count(d) == 3
	_paths(d) == {"/spec"}
}

test_partial_slo_and_empty_alerts if {
	d := slo_alerts.deny with input as _inp("production", {"slo": {"successRate": 0.99}, "alerts": []})
	d == {
		{"msg": "production workflow 'orders' declares no slo.completionTime", "path": "/spec/slo"},
		{"msg": "production workflow 'orders' declares no alerts", "path": "/spec/alerts"},
	}
}
