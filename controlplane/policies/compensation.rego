# METADATA
# title: Compensation is declared when requested
# description: |
#   If onError.compensate is true, at least one task (at any depth) declares
#   a compensation; otherwise the flag promises a rollback that does not
#   exist and partial side effects survive a failed run.
# custom:
#   id: CPL-P007
#   severity: medium
#   controls:
#     - "SOX ITGC: completeness and accuracy (rollback of partial transactions)"
#     - "Saga pattern: every forward step with side effects is compensable"
package cpl.rules.compensation

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.steps
import data.cpl.lib.util

deny contains v if {
	context.spec.onError.compensate == true
	count([p | some p, t in steps.tasks; util.nonempty(object.get(t, "compensation", ""))]) == 0
	v := {
		"msg": sprintf("workflow '%s' sets onError.compensate but no task declares a compensation", [context.name]),
		"path": "/spec/onError/compensate",
	}
}
