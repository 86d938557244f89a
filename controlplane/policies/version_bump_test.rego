package cpl.rules.version_bump_test

import rego.v1

import data.cpl.rules.version_bump

_prev := {"metadata": {"name": "orders", "version": "1.0.0"}, "spec": {"timeout": 60}}

_cur := {"metadata": {"name": "orders", "version": "1.0.0"}, "spec": {"timeout": 120}}

_inp(action, prev, cur, breaking, bump) := {"workflow": cur, "change": {"action": action, "previous": prev, "breaking": breaking, "bump": bump}}

test_compliant if {
	count(version_bump.deny) == 0 with input as _inp("update", _prev, _cur, [{"path": "/spec/steps/0", "reason": "step removed"}], "major")
	count(version_bump.deny) == 0 with input as _inp("update", _prev, _cur, [], "minor")
	count(version_bump.deny) == 0 with input as _inp("create", null, _cur, [], "none")
}

test_environment_only_update_needs_no_bump if {
	count(version_bump.deny) == 0 with input as _inp("update", _cur, _cur, [], "none")
}

test_breaking_without_major if {
	d := version_bump.deny with input as _inp("update", _prev, _cur, [{"path": "/spec/input/schema", "reason": "field orderId became required"}], "minor")
	d == {{
		"msg": "workflow 'orders' version 1.0.0 has breaking changes (/spec/input/schema: field orderId became required) but bumps minor, not major",
		"path": "/metadata/version",
	}}
}

test_change_without_bump if {
	d := version_bump.deny with input as _inp("update", _prev, _cur, [], "none")
	d == {{"msg": "workflow 'orders' changed but keeps version 1.0.0: any change bumps the version", "path": "/metadata/version"}}
}

test_many_breaking_changes_are_summarized if {
	b := [{"path": sprintf("/spec/steps/%d", [i]), "reason": "removed"} | some i in numbers.range(0, 4)]
	d := version_bump.deny with input as _inp("update", _prev, _cur, b, "patch")
	some v in d
	endswith(v.msg, "; and 2 more) but bumps patch, not major")
}
