# METADATA
# title: Regulated data runs only on regulated targets
# description: |
#   A workflow classified pii, phi or pci, or with hipaa in its compliance
#   list, is deployed only to targets with regulated: true (segregated,
#   audited infrastructure).
# custom:
#   id: CPL-P010
#   severity: critical
#   controls:
#     - "HIPAA §164.308(a)(4) information access management (segregation of ePHI systems)"
#     - "PCI DSS 1.2 / 12.5.2 cardholder data environment scoping and segmentation"
#     - "GDPR Art. 32 security of processing"
package cpl.rules.regulated_target

import rego.v1

import data.cpl.lib.context

deny contains v if {
	context.sensitive
	not input.target.regulated == true
	v := {
		"msg": sprintf("workflow '%s' is classified %s but target '%s' (%s) is not regulated", [
			context.name, context.classification, context.target_name, context.engine,
		]),
		"path": "/metadata/classification",
	}
}

deny contains v if {
	some i, c in context.compliance
	c == "hipaa"
	not input.target.regulated == true
	v := {
		"msg": sprintf("workflow '%s' is subject to hipaa but target '%s' (%s) is not regulated", [
			context.name, context.target_name, context.engine,
		]),
		"path": sprintf("/metadata/compliance/%d", [i]),
	}
}
