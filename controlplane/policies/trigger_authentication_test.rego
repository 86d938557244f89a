package cpl.rules.trigger_authentication_test

import rego.v1

import data.cpl.rules.trigger_authentication

_trigger(name, authenticated) := {"name": name, "source": "com.acme.shop", "type": "t", "authenticated": authenticated}

_inp(class, isolation, triggers) := {"workflow": {
	"metadata": {"name": "claims", "classification": class},
	"spec": {"security": {"isolation": isolation}, "triggers": triggers},
}}

test_authenticated_triggers_of_a_pii_workflow_pass if {
	count(trigger_authentication.deny) == 0 with input as _inp("pii", "standard", [_trigger("a", true)])
}

test_an_internal_workflow_may_take_unauthenticated_events if {
	count(trigger_authentication.deny) == 0 with input as _inp("internal", "standard", [_trigger("a", false)])
}

test_a_phi_workflow_denies_each_unauthenticated_trigger if {
	triggers := [_trigger("a", true), _trigger("b", false), {"name": "c", "source": "s", "type": "t"}]
	d := trigger_authentication.deny with input as _inp("phi", "standard", triggers)
	{v.path | some v in d} == {"/spec/triggers/1/authenticated", "/spec/triggers/2"}
	some v in d
	v.msg == "workflow 'claims' is classified phi but trigger 'b' accepts events from an unauthenticated source (com.acme.shop)"
}

test_regulated_isolation_counts_like_a_regulated_class if {
	d := trigger_authentication.deny with input as _inp("internal", "regulated", [_trigger("a", false)])
	some v in d
	v.msg == "workflow 'claims' is isolated as regulated but trigger 'a' accepts events from an unauthenticated source (com.acme.shop)"
}

test_no_triggers_no_finding if {
	count(trigger_authentication.deny) == 0 with input as {"workflow": {"metadata": {"classification": "pci"}, "spec": {}}}
}
