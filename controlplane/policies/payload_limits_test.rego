package cpl.rules.payload_limits_test

import rego.v1

import data.cpl.rules.payload_limits

_inp(engine, spec) := {
	"workflow": {"metadata": {"name": "orders"}, "spec": spec},
	"target": {"name": "t1", "engine": engine},
}

_paths(d) := {v.path | some v in d}

test_compliant if {
	spec := {"input": {"maxInlineBytes": 262144}, "payload": {"offload": {"store": "artifacts", "threshold": 262144}}}
	count(payload_limits.deny) == 0 with input as _inp("stepfunctions", spec)
}

test_compliant_without_offload if {
	count(payload_limits.deny) == 0 with input as _inp("temporal", {"input": {"maxInlineBytes": 1048576}})
	count(payload_limits.deny) == 0 with input as _inp("stepfunctions", {})
}

test_inline_above_engine_limit if {
	d := payload_limits.deny with input as _inp("stepfunctions", {"input": {"maxInlineBytes": 1048576}})
	d == {{
		"msg": "workflow 'orders' allows 1MiB of inline input, above the stepfunctions payload limit 256KiB of target 't1'; lower maxInlineBytes to at most 256KiB and configure spec.payload.offload for larger data",
		"path": "/spec/input/maxInlineBytes",
	}}
}

test_target_limit_wins if {
	inp := json.patch(_inp("temporal", {"input": {"maxInlineBytes": 1048576}}), [{"op": "add", "path": "/target/payloadLimit", "value": 524288}])
	d := payload_limits.deny with input as inp
	_paths(d) == {"/spec/input/maxInlineBytes"}
}

test_inline_above_threshold if {
	spec := {"input": {"maxInlineBytes": 200000}, "payload": {"offload": {"store": "artifacts", "threshold": 102400}}}
	d := payload_limits.deny with input as _inp("stepfunctions", spec)
	_paths(d) == {"/spec/input/maxInlineBytes"}
	count(d) == 1
}

test_threshold_above_engine_limit if {
	spec := {"payload": {"offload": {"store": "artifacts", "threshold": 1048576}}}
	d := payload_limits.deny with input as _inp("stepfunctions", spec)
	_paths(d) == {"/spec/payload/offload/threshold"}
}

test_configured_engine_limit if {
	d := payload_limits.deny with input as _inp("argo", {"input": {"maxInlineBytes": 1048576}})
		with data.cpl.config as {"payloadLimits": {"argo": 524288}}
	_paths(d) == {"/spec/input/maxInlineBytes"}
}

test_unknown_engine_does_not_fire if {
	count(payload_limits.deny) == 0 with input as _inp("", {"input": {"maxInlineBytes": 1073741824}})
}
