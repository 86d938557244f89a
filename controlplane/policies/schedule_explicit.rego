# METADATA
# title: Schedules are explicit about timezone and overlap
# description: |
#   A spec.schedule sets timezone (an IANA zone, not the engine's default
#   UTC) and overlap (skip | buffer-one | allow-all) explicitly, so runs
#   fire at the intended wall-clock time across DST changes and a slow run
#   does not silently overlap or skip the next one.
# custom:
#   id: CPL-P014
#   severity: low
#   controls:
#     - "SOX ITGC computer operations: job scheduling accuracy"
#     - "SRE resilience: overlapping batch runs"
package cpl.rules.schedule_explicit

import rego.v1

import data.cpl.lib.context

deny contains v if {
	some field in ["timezone", "overlap"]
	is_object(context.spec.schedule)
	not context.spec.schedule[field]
	v := {
		"msg": sprintf("workflow '%s' schedule '%v' does not set %s explicitly", [
			context.name, object.get(context.spec.schedule, "cron", ""), field,
		]),
		"path": "/spec/schedule",
	}
}
