# METADATA
# title: Run history retention is bounded
# description: |
#   spec.retention (how long finished run histories are kept) is set and at
#   most config.maxRetention (default 365d); a workflow with gdpr in its
#   compliance list and classification pii keeps histories at most
#   config.gdprMaxRetention (default 30d). Only the stricter applicable
#   limit is reported.
# custom:
#   id: CPL-P011
#   severity: high
#   controls:
#     - "GDPR Art. 5(1)(e) storage limitation"
#     - "GDPR Art. 17 right to erasure"
#     - "SOX ITGC / SEC 17a-4 records retention policy"
#     - "ISO 27001 A.5.33 protection of records"
package cpl.rules.retention

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	not context.spec.retention
	v := {
		"msg": sprintf("workflow '%s' sets no spec.retention: run histories would be kept indefinitely", [context.name]),
		"path": "/spec",
	}
}

deny contains v if {
	r := context.spec.retention
	_gdpr_pii
	r > config.gdprMaxRetention
	v := {
		"msg": sprintf("workflow '%s' (gdpr, pii) keeps run histories for %s, more than the GDPR maximum %s", [
			context.name, util.duration(r), util.duration(config.gdprMaxRetention),
		]),
		"path": "/spec/retention",
	}
}

deny contains v if {
	r := context.spec.retention
	r > config.maxRetention
	not _gdpr_exceeded(r)
	v := {
		"msg": sprintf("workflow '%s' keeps run histories for %s, more than the maximum %s", [
			context.name, util.duration(r), util.duration(config.maxRetention),
		]),
		"path": "/spec/retention",
	}
}

_gdpr_pii if {
	"gdpr" in context.compliance
	context.classification == "pii"
}

_gdpr_exceeded(r) if {
	_gdpr_pii
	r > config.gdprMaxRetention
}
