# METADATA
# title: Production constructs render faithfully on their target
# description: |
#   On the production tier no construct of the workflow renders as
#   `unsupported` on its target engine (input.compat). `warn` (reported as
#   warnings, never failing) lists constructs that render as `approximated`
#   on production and constructs that render as `unsupported` on the other
#   tiers. Findings are aggregated per feature: one per (feature, support) for
#   the (workflow, target), at the path of its first occurrence (in
#   input.compat order), with the number of places and the first paths when
#   the feature occurs more than once.
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

# _groups[[feature, support]] := indexes into _entries, in input order.
_groups[[f, s]] := [i |
	some i, e in _entries
	_feature_key(e) == f
	e.support == s
] if {
	some e in _entries
	s := e.support
	s in {"unsupported", "approximated"}
	f := _feature_key(e)
}

deny contains v if {
	context.production
	some [_, "unsupported"], idx in _groups
	v := _finding(idx, "is unsupported on", "")
}

warn contains v if {
	context.production
	some [_, "approximated"], idx in _groups
	v := _finding(idx, "is only approximated on", "")
}

warn contains v if {
	not context.production
	some [_, "unsupported"], idx in _groups
	v := _finding(idx, "is unsupported on", " (a violation on production)")
}

_finding(idx, what, suffix) := {
	"msg": sprintf("%s %s %s target '%s'%s%s%s", [_feature(e), what, context.engine, context.target_name, _places(idx), _reason(e), suffix]),
	"path": object.get(e, "path", ""),
} if {
	e := _entries[idx[0]]
}

# The places of a feature met more than once: " at 4 places (/a, /b, /c and 1 more)".
_places(idx) := "" if count(idx) == 1

_places(idx) := sprintf(" at %d places (%s%s)", [count(idx), concat(", ", _first_paths(idx)), _more(idx)]) if count(idx) > 1

_first_paths(idx) := [sprintf("%v", [object.get(_entries[i], "path", "")]) | some i in array.slice(idx, 0, 3)]

_more(idx) := "" if count(idx) <= 3

_more(idx) := sprintf(" and %d more", [count(idx) - 3]) if count(idx) > 3

_feature_key(e) := object.get(e, "feature", "?")

_feature(e) := sprintf("feature '%v'", [_feature_key(e)])

_reason(e) := sprintf(": %v", [e.reason]) if e.reason != ""

_reason(e) := "" if not e.reason

_reason(e) := "" if e.reason == ""
