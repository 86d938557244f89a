# METADATA
# title: Retried and compensated tasks are idempotent
# description: |
#   A task that retries (maxAttempts > 1) or has a compensation declares an
#   idempotencyKey, and so does every compensation task (a task step named by
#   another task's `compensation` in the same scope): at-least-once delivery
#   and replays must not duplicate side effects such as payments.
# custom:
#   id: CPL-P004
#   severity: high
#   controls:
#     - "SOX ITGC: completeness and accuracy of financial transaction processing"
#     - "PCI DSS 10.2 / 6.2: duplicate transaction prevention in payment flows"
#     - "SRE resilience: at-least-once delivery and replay safety"
package cpl.rules.idempotency_key

import rego.v1

import data.cpl.lib.steps
import data.cpl.lib.util

deny contains v if {
	some ptr, task in steps.tasks
	not util.nonempty(object.get(task, "idempotencyKey", ""))
	reasons := [r | some r in _reasons(ptr, task)]
	count(reasons) > 0
	v := {
		"msg": sprintf("%s has no idempotencyKey but %s", [steps.label(task), concat(" and ", sort(reasons))]),
		"path": ptr,
	}
}

_reasons(ptr, task) := {r |
	some r in {
		sprintf("retries (maxAttempts %v)", [object.get(task.retry, "maxAttempts", "unset")]) |
			steps.retries(task)
	} | {
		sprintf("has compensation '%s'", [task.compensation]) |
			util.nonempty(object.get(task, "compensation", ""))
	} | {
		sprintf("is the compensation of %s", [concat(", ", sort(_compensated_by(ptr)))]) |
			steps.compensation_tasks[ptr]
	}
}

_compensated_by(ptr) := {sprintf("'%s'", [t.name]) |
	some tptr, t in steps.tasks
	steps.scope[tptr] == steps.scope[ptr]
	t.compensation == steps.all_steps[ptr].name
}
