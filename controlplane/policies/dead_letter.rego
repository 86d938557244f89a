# METADATA
# title: Production workflows have a dead-letter queue
# description: |
#   On the production tier a workflow sets onError.deadLetter so that the
#   input, error and trace of every unhandled failure are kept for
#   investigation and replay instead of being lost.
# custom:
#   id: CPL-P006
#   severity: medium
#   controls:
#     - "SOX ITGC computer operations: failed job detection and resolution"
#     - "SOC 2 CC7.3 evaluation of security and operational events"
#     - "SRE resilience: no silent data loss on failure"
package cpl.rules.dead_letter

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	context.production
	not util.nonempty(object.get(context.spec, ["onError", "deadLetter"], ""))
	v := {
		"msg": sprintf("production workflow '%s' sets no onError.deadLetter: unhandled failures would be lost", [context.name]),
		"path": util.nearest(input.workflow, ["spec", "onError", "deadLetter"]),
	}
}
