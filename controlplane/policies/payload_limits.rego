# METADATA
# title: Inline payloads fit the engine; larger data is offloaded
# description: |
#   spec.input.maxInlineBytes is at most the target engine's inline payload
#   limit (input.target.payloadLimit when given, else
#   config.payloadLimits[engine]: stepfunctions 256KiB, temporal 2MiB,
#   argo 1MiB). When spec.payload.offload is configured, data above its
#   threshold travels by reference, so (a) maxInlineBytes must not exceed
#   the threshold and (b) the threshold itself must not exceed the engine
#   limit (data between the limit and the threshold would stay inline and
#   fail the run).
# custom:
#   id: CPL-P013
#   severity: medium
#   controls:
#     - "SRE resilience: payload size limits (runtime failures on large inputs)"
#     - "SOC 2 A1.1 availability: capacity management"
package cpl.rules.payload_limits

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.context
import data.cpl.lib.util

# limit: the inline payload limit (bytes) of the target under evaluation.
limit := input.target.payloadLimit if {
	is_number(input.target.payloadLimit)
	input.target.payloadLimit > 0
}

limit := config.payloadLimits[context.engine] if not _target_limit

_target_limit if {
	is_number(input.target.payloadLimit)
	input.target.payloadLimit > 0
}

_threshold := context.spec.payload.offload.threshold

deny contains v if {
	inline := context.spec.input.maxInlineBytes
	inline > limit
	v := {
		"msg": sprintf("workflow '%s' allows %s of inline input, above the %s payload limit %s of target '%s'; %s", [
			context.name, util.size(inline), context.engine, util.size(limit), context.target_name, _hint,
		]),
		"path": "/spec/input/maxInlineBytes",
	}
}

deny contains v if {
	inline := context.spec.input.maxInlineBytes
	inline > _threshold
	v := {
		"msg": sprintf("workflow '%s' allows %s of inline input, above payload.offload.threshold %s: data above the threshold must be offloaded to '%v'", [
			context.name, util.size(inline), util.size(_threshold), object.get(context.spec.payload.offload, "store", ""),
		]),
		"path": "/spec/input/maxInlineBytes",
	}
}

deny contains v if {
	_threshold > limit
	v := {
		"msg": sprintf("workflow '%s' offloads only data above %s, but the %s payload limit of target '%s' is %s: payloads in between would travel inline and fail", [
			context.name, util.size(_threshold), context.engine, context.target_name, util.size(limit),
		]),
		"path": "/spec/payload/offload/threshold",
	}
}

_hint := sprintf("lower maxInlineBytes to at most %s", [util.size(limit)]) if context.spec.payload.offload

_hint := sprintf("lower maxInlineBytes to at most %s and configure spec.payload.offload for larger data", [util.size(limit)]) if not context.spec.payload.offload
