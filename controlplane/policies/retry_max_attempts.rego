# METADATA
# title: Retry attempts are bounded
# description: |
#   A task retry's maxAttempts does not exceed config.maxAttempts
#   (default 10); long retry chains hide outages, multiply load and
#   delay compensation and alerting.
# custom:
#   id: CPL-P003
#   severity: medium
#   controls:
#     - "SRE resilience: retry storms"
#     - "SOC 2 CC7.4 incident response: timely detection of failures"
package cpl.rules.retry_max_attempts

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.steps

deny contains v if {
	some ptr, task in steps.tasks
	n := task.retry.maxAttempts
	n > config.maxAttempts
	v := {
		"msg": sprintf("%s retries up to %v attempts, more than the allowed %v", [steps.label(task), n, config.maxAttempts]),
		"path": concat("", [ptr, "/retry/maxAttempts"]),
	}
}
