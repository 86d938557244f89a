package cpl.rules.retention_test

import rego.v1

import data.cpl.rules.retention

_inp(class, compliance, spec) := {"workflow": {"metadata": {"name": "orders", "classification": class, "compliance": compliance}, "spec": spec}}

test_compliant if {
	count(retention.deny) == 0 with input as _inp("pii", ["gdpr"], {"retention": 2592000})
	count(retention.deny) == 0 with input as _inp("internal", ["gdpr"], {"retention": 31536000})
}

test_missing_retention if {
	d := retention.deny with input as _inp("internal", [], {})
	d == {{"msg": "workflow 'orders' sets no spec.retention: run histories would be kept indefinitely", "path": "/spec"}}
}

test_over_max if {
	d := retention.deny with input as _inp("internal", [], {"retention": 34560000})
	d == {{"msg": "workflow 'orders' keeps run histories for 400d, more than the maximum 365d", "path": "/spec/retention"}}
}

test_gdpr_pii_over_30d_reports_only_stricter_limit if {
	d := retention.deny with input as _inp("pii", ["sox", "gdpr"], {"retention": 34560000})
	d == {{"msg": "workflow 'orders' (gdpr, pii) keeps run histories for 400d, more than the GDPR maximum 30d", "path": "/spec/retention"}}
}

test_configurable_limits if {
	d := retention.deny with input as _inp("pii", ["gdpr"], {"retention": 864000})
		with data.cpl.config as {"gdprMaxRetention": 604800}
	{v.path | some v in d} == {"/spec/retention"}
}
