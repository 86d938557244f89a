package cpl.rules.access_control_test

import rego.v1

import data.cpl.rules.access_control

_access := {"start": {"roles": ["orders-service"]}, "admin": {"roles": ["sre"], "jit": {"maxDuration": 3600}}}

_inp(tier, access) := {"environment": {"tier": tier}, "workflow": {"metadata": {"name": "orders"}, "spec": {"access": access}}}

_paths(d) := {v.path | some v in d}

test_compliant if {
	count(access_control.deny) == 0 with input as _inp("production", _access)
	count(access_control.deny) == 0 with input as _inp("development", {})
}

test_production_without_start if {
	d := access_control.deny with input as _inp("production", {"signal": {"roles": ["finance"]}})
	d == {{"msg": "production workflow 'orders' declares no access.start: anyone with engine access could start runs", "path": "/spec/access"}}
}

test_standing_admin_on_any_tier if {
	d := access_control.deny with input as _inp("development", {"admin": {"roles": ["sre"]}})
	_paths(d) == {"/spec/access/admin"}
}

test_jit_without_duration if {
	d := access_control.deny with input as _inp("development", {"admin": {"roles": ["sre"], "jit": {}}})
	_paths(d) == {"/spec/access/admin/jit"}
}

test_jit_too_long if {
	d := access_control.deny with input as _inp("staging", {"admin": {"roles": ["sre"], "jit": {"maxDuration": 28800}}})
	d == {{"msg": "workflow 'orders' grants just-in-time admin access for 8h, more than the maximum 4h", "path": "/spec/access/admin/jit/maxDuration"}}
}

test_configurable_max_jit if {
	d := access_control.deny with input as _inp("staging", _access) with data.cpl.config as {"maxJit": 1800}
	_paths(d) == {"/spec/access/admin/jit/maxDuration"}
}
