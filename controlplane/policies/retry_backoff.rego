# METADATA
# title: Retries back off exponentially
# description: |
#   Every task retry with maxAttempts > 1 backs off exponentially
#   (backoffRate > 1) and caps the delay with maxInterval, so that a failing
#   dependency is not hammered by immediate, synchronized retries.
#   Retries inherited from spec.defaults are reported on each task.
# custom:
#   id: CPL-P001
#   severity: medium
#   controls:
#     - "SRE resilience: retry storms"
#     - "AWS Well-Architected REL05-BP03 control and limit retry calls"
#     - "SOC 2 A1.2 availability: recovery infrastructure"
package cpl.rules.retry_backoff

import rego.v1

import data.cpl.lib.steps

deny contains v if {
	some ptr, task in steps.tasks
	steps.retries(task)
	rate := object.get(task.retry, "backoffRate", 1)
	rate <= 1
	path := _field_path(ptr, task.retry, "backoffRate")
	v := {
		"msg": sprintf("%s retries %s without backoff (backoffRate %v)%s", [
			steps.label(task), _times(task.retry), _show(task.retry, "backoffRate"), _inherited(task),
		]),
		"path": path,
	}
}

deny contains v if {
	some ptr, task in steps.tasks
	steps.retries(task)
	not task.retry.maxInterval
	v := {
		"msg": sprintf("%s retries %s without maxInterval: backoff delays are unbounded%s", [
			steps.label(task), _times(task.retry), _inherited(task),
		]),
		"path": concat("", [ptr, "/retry"]),
	}
}

_field_path(ptr, retry, field) := concat("", [ptr, "/retry/", field]) if retry[field] != null

_field_path(ptr, retry, field) := concat("", [ptr, "/retry"]) if not retry[field]

_show(retry, field) := sprintf("%v", [retry[field]])

_show(retry, field) := "unset" if not retry[field]

_times(retry) := sprintf("up to %d times (maxAttempts %d)", [retry.maxAttempts - 1, retry.maxAttempts]) if is_number(retry.maxAttempts)

_times(retry) := "(maxAttempts unset)" if not retry.maxAttempts

_inherited(task) := " (inherited from spec.defaults.retry)" if task.retry == steps.spec.defaults.retry

_inherited(task) := "" if task.retry != object.get(steps.spec, ["defaults", "retry"], null)
