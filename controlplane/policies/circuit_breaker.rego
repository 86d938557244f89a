# METADATA
# title: External activities use a circuit breaker
# description: |
#   A task whose activity binding (input.bindings.activities) is marked
#   external: true sets circuitBreaker, so that an outage of a system
#   outside our control fails fast instead of piling up retries and runs.
# custom:
#   id: CPL-P008
#   severity: medium
#   controls:
#     - "SRE resilience: cascading failure containment (circuit breaker)"
#     - "SOC 2 CC9.2 vendor and business partner risk management"
#     - "DORA Art. 28 ICT third-party risk"
package cpl.rules.circuit_breaker

import rego.v1

import data.cpl.lib.steps

deny contains v if {
	some ptr, task in steps.tasks
	input.bindings.activities[task.activity].external == true
	not task.circuitBreaker
	v := {
		"msg": sprintf("%s calls external activity '%s' without a circuitBreaker", [steps.label(task), task.activity]),
		"path": ptr,
	}
}
