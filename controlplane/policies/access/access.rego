# METADATA
# title: Access decisions (ABAC) for cpl's entry points
# description: |
#   One decision per command (cpl run, cpl signal, admin signals, cpl apply,
#   cpl drift --sync). Input:
#     operation  start | signal | admin | apply | sync
#     rule       the access rule that applies: {roles, attributes} (access.start,
#                access.signal, access.admin of the workflow, or the environment's
#                deploy.approvers), null where none is declared
#     ruleName   how users know that rule, e.g. "access.admin"
#     principal  {sub, roles, verified, claims}: claims are the token's string claims
#     grants     the principal's just-in-time grants: {id, role, workflow, expires}
#     workflow   "tenant/name" (null for apply and sync)
#     now        seconds since the epoch
#   A principal is allowed when it holds one of the rule's roles (in its token or
#   through an unexpired grant for this workflow or for the whole environment, "*")
#   and every attribute of the rule equals (or glob-matches) the claim of that name.
package cpl.access

import rego.v1

default decision := {"allow": false, "rule": "", "missing": [], "grant": null, "reason": "no decision"}

_rule := object.get(input, "rule", null)

_roles := object.get(_rule, "roles", []) if _rule != null

_attributes := object.get(_rule, "attributes", {}) if _rule != null

_claims := object.get(input.principal, "claims", {})

# A grant the principal holds for one of the rule's roles, on this workflow, still running.
usable_grants contains g.id if {
	some g in object.get(input, "grants", [])
	g.role in _roles
	g.workflow in {"*", input.workflow}
	g.expires > input.now
}

has_role if {
	count(_roles) == 0
}

has_role if {
	some role in input.principal.roles
	role in _roles
}

# Attribute conditions that do not hold: the claim is missing or does not match.
unmet_attributes contains name if {
	some name, pattern in _attributes
	not _matches(pattern, object.get(_claims, name, null))
}

_matches(pattern, value) if {
	is_string(value)
	glob.match(pattern, [], value)
}

_granted := min(usable_grants) if count(usable_grants) > 0

decision := {"allow": true, "rule": input.ruleName, "missing": [], "grant": null, "reason": "no access rule declared"} if {
	_rule == null
}

decision := {"allow": true, "rule": input.ruleName, "missing": [], "grant": null, "reason": "role held"} if {
	_rule != null
	has_role
	count(unmet_attributes) == 0
}

decision := {"allow": true, "rule": input.ruleName, "missing": [], "grant": _granted, "reason": "just-in-time grant"} if {
	_rule != null
	not has_role
	count(usable_grants) > 0
	count(unmet_attributes) == 0
}

decision := {"allow": false, "rule": input.ruleName, "missing": sort(_roles), "grant": null, "reason": "missing role"} if {
	_rule != null
	not has_role
	count(usable_grants) == 0
}

decision := {"allow": false, "rule": input.ruleName, "missing": [], "grant": null, "reason": sprintf("attributes not matched: %s", [concat(", ", sort(unmet_attributes))])} if {
	_rule != null
	count(unmet_attributes) > 0
	any_role
}

any_role if has_role

any_role if count(usable_grants) > 0
