# METADATA
# title: Regulated workflows are triggered only by authenticated sources
# description: |
#   A workflow classified pii, phi or pci, or isolated as regulated
#   (security.isolation: regulated), starts from events only when every
#   trigger's source is authenticated (authenticated: true): an anonymous
#   sender must not be able to start runs that read or write regulated data.
# custom:
#   id: CPL-P022
#   severity: high
#   controls:
#     - "HIPAA §164.312(d) person or entity authentication"
#     - "PCI DSS 8.3 strong authentication for users and system components"
#     - "GDPR Art. 32 security of processing"
package cpl.rules.trigger_authentication

import rego.v1

import data.cpl.lib.context

regulated if context.sensitive

regulated if object.get(context.spec, ["security", "isolation"], "standard") == "regulated"

why := sprintf("classified %s", [context.classification]) if context.sensitive

else := "isolated as regulated"

deny contains v if {
	regulated
	some i, trigger in object.get(context.spec, "triggers", [])
	not object.get(trigger, "authenticated", false) == true
	v := {
		"msg": sprintf("workflow '%s' is %s but trigger '%s' accepts events from an unauthenticated source (%s)", [
			context.name, why, object.get(trigger, "name", "?"), object.get(trigger, "source", "?"),
		]),
		"path": _pointer(i, trigger),
	}
}

_pointer(i, trigger) := sprintf("/spec/triggers/%d/authenticated", [i]) if "authenticated" in object.keys(trigger)

else := sprintf("/spec/triggers/%d", [i])
