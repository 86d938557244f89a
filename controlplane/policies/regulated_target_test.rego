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
