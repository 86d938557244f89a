# METADATA
# title: Production constructs render faithfully on their target
# description: |
#   On the production tier no construct of the workflow renders as
#   `unsupported` on its target engine (input.compat). `warn` (reported as
#   warnings, never failing) lists constructs that render as `approximated`
#   on production and constructs that render as `unsupported` on the other
#   tiers.
# custom:
#   id: CPL-P020
#   severity: high
#   controls:
#     - "SOX ITGC change management: deployed behaviour matches the approved specification"
#     - "SOC 2 CC8.1 change management: tested and approved changes"
#     - "SRE resilience: engine portability gaps"
package cpl.rules.engine_compat

import rego.v1

import data.cpl.lib.context

_entries := [e | some e in object.get(input, "compat", []); is_object(e)]

deny contains v if {
	context.production
	some e in _entries
	e.support == "unsupported"
	v := {
		"msg": sprintf("%s is unsupported on %s target '%s'%s", [_feature(e), context.engine, context.target_name, _reason(e)]),
		"path": object.get(e, "path", ""),
	}
}

warn contains v if {
	context.production
	some e in _entries
	e.support == "approximated"
	v := {
		"msg": sprintf("%s is only approximated on %s target '%s'%s", [_feature(e), context.engine, context.target_name, _reason(e)]),
		"path": object.get(e, "path", ""),
	}
}

warn contains v if {
	not context.production
	some e in _entries
	e.support == "unsupported"
	v := {
		"msg": sprintf("%s is unsupported on %s target '%s'%s (a violation on production)", [_feature(e), context.engine, context.target_name, _reason(e)]),
		"path": object.get(e, "path", ""),
	}
}

_feature(e) := sprintf("feature '%v'", [object.get(e, "feature", "?")])

_reason(e) := sprintf(": %v", [e.reason]) if e.reason != ""

_reason(e) := "" if not e.reason

_reason(e) := "" if e.reason == ""
