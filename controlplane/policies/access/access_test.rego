package cpl.access_test

import rego.v1

import data.cpl.access

_alice := {"sub": "alice", "roles": ["finance"], "verified": true, "claims": {"repository": "org/repo", "ref": "refs/heads/main"}}

_bob := {"sub": "bob", "roles": ["viewer"], "verified": true, "claims": {}}

_inp(principal, rule, grants) := {
	"operation": "admin", "rule": rule, "ruleName": "access.admin", "principal": principal,
	"grants": grants, "workflow": "retail/orders", "now": 1000,
}

test_role_held if {
	d := access.decision with input as _inp(_alice, {"roles": ["finance"]}, [])
	d.allow
	d.reason == "role held"
}

test_missing_role_names_rule_and_roles if {
	d := access.decision with input as _inp(_bob, {"roles": ["sre", "finance"]}, [])
	not d.allow
	d.rule == "access.admin"
	d.missing == ["finance", "sre"]
}

test_no_rule_allows if {
	d := access.decision with input as _inp(_bob, null, [])
	d.allow
}

test_attributes_match_claims if {
	rule := {"roles": [], "attributes": {"repository": "org/*", "ref": "refs/heads/main"}}
	access.decision.allow with input as _inp(_alice, rule, [])
	d := access.decision with input as _inp(_bob, rule, [])
	not d.allow
	d.reason == "attributes not matched: ref, repository"
}

test_grant_allows_until_expiry if {
	grant := {"id": "g1", "role": "sre", "workflow": "retail/orders", "expires": 2000}
	d := access.decision with input as _inp(_bob, {"roles": ["sre"]}, [grant])
	d.allow
	d.grant == "g1"
	expired := object.union(grant, {"expires": 999})
	not access.decision.allow with input as _inp(_bob, {"roles": ["sre"]}, [expired])
}

test_grant_for_environment_or_other_workflow if {
	env_wide := {"id": "g2", "role": "sre", "workflow": "*", "expires": 2000}
	access.decision.allow with input as _inp(_bob, {"roles": ["sre"]}, [env_wide])
	other := {"id": "g3", "role": "sre", "workflow": "retail/other", "expires": 2000}
	not access.decision.allow with input as _inp(_bob, {"roles": ["sre"]}, [other])
	wrong_role := {"id": "g4", "role": "finance", "workflow": "*", "expires": 2000}
	not access.decision.allow with input as _inp(_bob, {"roles": ["sre"]}, [wrong_role])
}
