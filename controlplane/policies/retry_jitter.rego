# METADATA
# title: Retries use full jitter on staging and production
# description: |
#   On the tiers listed in config.jitterTiers (default staging and
#   production) every task retry that actually retries (maxAttempts > 1)
#   sets jitter: full, so that retries of many runs do not synchronize into
#   load spikes against a recovering dependency.
# custom:
#   id: CPL-P002
#   severity: low
#   controls:
#     - "SRE resilience: retry storms (thundering herd)"
#     - "AWS Well-Architected REL05-BP03 control and limit retry calls"
package cpl.rules.retry_jitter

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.context
import data.cpl.lib.steps

deny contains v if {
	context.tier in config.jitterTiers
	some ptr, task in steps.tasks
	steps.retries(task)
	jitter := object.get(task.retry, "jitter", "none")
	jitter != "full"
	path := _path(ptr, task.retry)
	v := {
		"msg": sprintf("%s retries without full jitter (jitter %v) on %s tier '%s'", [
			steps.label(task), _show(task.retry), context.tier, object.get(input, ["environment", "name"], ""),
		]),
		"path": path,
	}
}

_path(ptr, retry) := concat("", [ptr, "/retry/jitter"]) if retry.jitter

_path(ptr, retry) := concat("", [ptr, "/retry"]) if not retry.jitter

_show(retry) := retry.jitter

_show(retry) := "unset" if not retry.jitter
