package cpl.rules.regulated_target_test

import rego.v1

import data.cpl.rules.regulated_target

_inp(class, compliance, regulated) := {
	"workflow": {"metadata": {"name": "claims", "classification": class, "compliance": compliance}},
	"target": {"name": "aws-eu", "engine": "stepfunctions", "regulated": regulated},
}

test_compliant if {
	count(regulated_target.deny) == 0 with input as _inp("phi", ["hipaa"], true)
}

test_internal_on_unregulated_is_fine if {
	count(regulated_target.deny) == 0 with input as _inp("internal", ["sox"], false)
}

test_phi_and_hipaa_on_unregulated if {
	d := regulated_target.deny with input as _inp("phi", ["sox", "hipaa"], false)
	{v.path | some v in d} == {"/metadata/classification", "/metadata/compliance/1"}
	some v in d
	v.msg == "workflow 'claims' is classified phi but target 'aws-eu' (stepfunctions) is not regulated"
}

test_missing_regulated_flag_counts_as_unregulated if {
	inp := json.remove(_inp("internal", ["hipaa"], false), ["target/regulated"])
	d := regulated_target.deny with input as inp
	{v.path | some v in d} == {"/metadata/compliance/0"}
}

_isolated(regulated, shared) := {
	"workflow": {"metadata": {"name": "claims", "classification": "internal"}, "spec": {"security": {"isolation": "regulated"}}},
	"target": {"name": "temporal-eu", "engine": "temporal", "regulated": regulated},
	"shared": shared,
}

_namespace(standard) := {"kind": "namespace", "name": "claims-ns", "target": "temporal-eu", "engine": "temporal", "standard": standard}

test_isolated_alone_in_a_regulated_namespace if {
	count(regulated_target.deny) == 0 with input as _isolated(true, [_namespace([])])
	count(regulated_target.deny) == 0 with input as json.remove(_isolated(true, []), ["shared"])
}

test_isolated_on_an_unregulated_target if {
	d := regulated_target.deny with input as _isolated(false, [])
	d == {{"msg": "workflow 'claims' has security.isolation regulated but target 'temporal-eu' (temporal) is not regulated", "path": "/spec/security/isolation"}}
}

test_isolated_sharing_a_namespace_with_standard_workflows if {
	d := regulated_target.deny with input as _isolated(true, [_namespace(["retail/a", "retail/b"])])
	d == {{"msg": "workflow 'claims' has security.isolation regulated but on target 'temporal-eu' it shares temporal namespace 'claims-ns' (managed through target 'temporal-eu') with workflows that are not isolated: retail/a, retail/b", "path": "/spec/security/isolation"}}
}

test_standard_workflows_may_share if {
	inp := json.patch(_isolated(true, [_namespace(["retail/a"])]), [{"op": "replace", "path": "/workflow/spec/security/isolation", "value": "standard"}])
	count(regulated_target.deny) == 0 with input as inp
}
