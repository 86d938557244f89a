# METADATA
# title: Production workflows declare SLOs and alerts
# description: |
#   On the production tier a workflow declares slo.completionTime,
#   slo.successRate and at least one entry in alerts, so that failures and
#   slowdowns are detected and someone is paged.
# custom:
#   id: CPL-P015
#   severity: low
#   controls:
#     - "SOC 2 CC7.2 system monitoring"
#     - "SOX ITGC computer operations: monitoring of scheduled jobs"
#     - "SRE: service level objectives and alerting"
package cpl.rules.slo_alerts

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	context.production
	some field in ["completionTime", "successRate"]
	not util.has(context.spec, ["slo", field])
	v := {
		"msg": sprintf("production workflow '%s' declares no slo.%s", [context.name, field]),
		"path": util.nearest(input.workflow, ["spec", "slo", field]),
	}
}

deny contains v if {
	context.production
	count(object.get(context.spec, "alerts", [])) == 0
	v := {
		"msg": sprintf("production workflow '%s' declares no alerts", [context.name]),
		"path": util.nearest(input.workflow, ["spec", "alerts"]),
	}
}
