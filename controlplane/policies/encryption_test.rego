package cpl.rules.encryption_test

import rego.v1

import data.cpl.rules.encryption

_inp(class, spec) := {"workflow": {"metadata": {"name": "claims", "classification": class}, "spec": spec}}

test_compliant if {
	count(encryption.deny) == 0 with input as _inp("phi", {"security": {"encryption": {"key": "claims-kms"}}})
}

test_internal_needs_no_key if {
	count(encryption.deny) == 0 with input as _inp("internal", {})
}

test_pii_without_security if {
	d := encryption.deny with input as _inp("pii", {"steps": []})
	d == {{"msg": "workflow 'claims' is classified pii but sets no security.encryption.key", "path": "/spec"}}
}

test_pci_with_security_but_no_encryption if {
	d := encryption.deny with input as _inp("pci", {"security": {"isolation": "regulated"}})
	{v.path | some v in d} == {"/spec/security"}
}
