# METADATA
# title: Sensitive workflows encrypt their data
# description: |
#   A workflow classified pii, phi or pci sets security.encryption.key (a
#   logical key bound per environment), so run payloads and histories are
#   encrypted with a customer-managed key.
# custom:
#   id: CPL-P009
#   severity: critical
#   controls:
#     - "HIPAA §164.312(a)(2)(iv) encryption and decryption"
#     - "HIPAA §164.312(e)(2)(ii) transmission security: encryption"
#     - "PCI DSS 3.5 protect stored account data with strong cryptography"
#     - "GDPR Art. 32(1)(a) encryption of personal data"
package cpl.rules.encryption

import rego.v1

import data.cpl.lib.context
import data.cpl.lib.util

deny contains v if {
	context.sensitive
	not util.nonempty(object.get(context.spec, ["security", "encryption", "key"], ""))
	v := {
		"msg": sprintf("workflow '%s' is classified %s but sets no security.encryption.key", [context.name, context.classification]),
		"path": util.nearest(input.workflow, ["spec", "security", "encryption", "key"]),
	}
}
