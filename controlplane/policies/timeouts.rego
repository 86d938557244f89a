# METADATA
# title: Workflows and tasks have timeouts
# description: |
#   The workflow sets spec.timeout (a whole-run deadline) and every task,
#   at any depth, has a timeout (its own or spec.defaults.timeout, which the
#   normalized document has already applied). Runs and activities without a
#   deadline hang forever and hold resources and locks.
# custom:
#   id: CPL-P005
#   severity: medium
#   controls:
#     - "SRE resilience: bounded execution time (hung runs)"
#     - "SOC 2 A1.1 availability: capacity management"
package cpl.rules.timeouts

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.steps

deny contains {"msg": sprintf("workflow '%s' sets no spec.timeout (whole-run deadline)", [context.name]), "path": "/spec"} if {
	not context.spec.timeout
}

deny contains v if {
	t := context.spec.timeout
	not t > 0
	v := {"msg": sprintf("workflow '%s' has a non-positive spec.timeout (%v)", [context.name, t]), "path": "/spec/timeout"}
}

deny contains v if {
	some ptr, task in steps.tasks
	not task.timeout
	v := {
		"msg": sprintf("%s has no timeout and spec.defaults sets none", [steps.label(task)]),
		"path": ptr,
	}
}

deny contains v if {
	some ptr, task in steps.tasks
	t := task.timeout
	not t > 0
	v := {
		"msg": sprintf("%s has a non-positive timeout (%v)", [steps.label(task), t]),
		"path": concat("", [ptr, "/timeout"]),
	}
}
