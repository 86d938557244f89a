# METADATA
# title: Regulated data runs only on regulated targets
# description: |
#   A workflow classified pii, phi or pci, with hipaa in its compliance
#   list, or with security.isolation regulated, is deployed only to targets
#   with regulated: true (segregated, audited infrastructure). A workflow
#   with security.isolation regulated also shares no engine resource
#   (input.shared: a Temporal namespace, with its retention, search
#   attributes and authorization) with a workflow that is not isolated
#   (security.isolation standard, the default).
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

_isolated if object.get(context.spec, ["security", "isolation"], "standard") == "regulated"

deny contains v if {
	_isolated
	not input.target.regulated == true
	v := {
		"msg": sprintf("workflow '%s' has security.isolation regulated but target '%s' (%s) is not regulated", [
			context.name, context.target_name, context.engine,
		]),
		"path": "/spec/security/isolation",
	}
}

deny contains v if {
	_isolated
	some shared in object.get(input, "shared", [])
	count(shared.standard) > 0
	v := {
		"msg": sprintf("workflow '%s' has security.isolation regulated but on target '%s' it shares %s %s '%s' (managed through target '%s') with workflows that are not isolated: %s", [
			context.name, context.target_name, shared.engine, shared.kind, shared.name, shared.target,
			concat(", ", shared.standard),
		]),
		"path": "/spec/security/isolation",
	}
}
