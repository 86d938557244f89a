# METADATA
# title: Changes bump the version; breaking changes bump the major
# description: |
#   For an update (change.action == "update"): when change.breaking is not
#   empty the version bump must be "major"; otherwise, when the workflow
#   differs from change.previous (the previously deployed normalized
#   workflow), the version must be bumped at all (bump != "none"). Updates
#   caused only by environment changes (bindings, target settings) leave the
#   workflow equal to previous and need no bump.
# custom:
#   id: CPL-P017
#   severity: medium
#   controls:
#     - "SOX ITGC change management: changes are identified, versioned and traceable"
#     - "SOC 2 CC8.1 change management"
#     - "Semantic Versioning 2.0.0: incompatible changes increment MAJOR"
package cpl.rules.version_bump

import rego.v1

import data.cpl.lib.context

_change := object.get(input, "change", {})

_bump := object.get(_change, "bump", "none")

_breaking := object.get(_change, "breaking", [])

deny contains v if {
	_change.action == "update"
	count(_breaking) > 0
	_bump != "major"
	v := {
		"msg": sprintf("workflow '%s' version %v has breaking changes (%s) but bumps %s, not major", [
			context.name, object.get(context.metadata, "version", "?"), _describe(_breaking), _bump,
		]),
		"path": "/metadata/version",
	}
}

deny contains v if {
	_change.action == "update"
	count(_breaking) == 0
	_bump == "none"
	is_object(_change.previous)
	_change.previous != input.workflow
	v := {
		"msg": sprintf("workflow '%s' changed but keeps version %v: any change bumps the version", [
			context.name, object.get(context.metadata, "version", "?"),
		]),
		"path": "/metadata/version",
	}
}

_describe(breaking) := concat("; ", _first3(breaking)) if count(breaking) <= 3

_describe(breaking) := sprintf("%s; and %d more", [concat("; ", _first3(breaking)), count(breaking) - 3]) if count(breaking) > 3

_first3(breaking) := [s |
	some b in array.slice(breaking, 0, 3)
	s := sprintf("%v: %v", [object.get(b, "path", ""), object.get(b, "reason", "")])
]
