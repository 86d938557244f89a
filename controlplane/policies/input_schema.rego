# METADATA
# title: Caller-started workflows validate their input
# description: |
#   A workflow without a schedule is started by callers and declares
#   spec.input.schema (JSON Schema), so malformed or unexpected input is
#   rejected before any step runs.
# custom:
#   id: CPL-P012
#   severity: medium
#   controls:
#     - "OWASP ASVS V5.1 input validation"
#     - "SOX ITGC: input validation / data integrity controls"
#     - "PCI DSS 6.2.4 prevention of injection and data-handling attacks"
package cpl.rules.input_schema

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	not context.spec.schedule
	not util.nonempty(object.get(context.spec, ["input", "schema"], {}))
	v := {
		"msg": sprintf("workflow '%s' has no schedule (it is started by callers) but declares no input.schema", [context.name]),
		"path": util.nearest(input.workflow, ["spec", "input", "schema"]),
	}
}
