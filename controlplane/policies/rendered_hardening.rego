# METADATA
# title: Rendered artifacts are hardened
# description: |
#   Checks the engine artifact rendered for the target (input.rendered; when
#   it is absent or empty nothing is checked):
#   - stepfunctions: for classification pii/phi/pci, logging (level other
#     than OFF) does not include execution data
#     (configuration.loggingConfiguration.includeExecutionData != true);
#   - argo: every Workflow / WorkflowTemplate / CronWorkflow manifest
#     (CronWorkflow: under spec.workflowSpec) sets ttlStrategy and podGC, so
#     finished workflows and pods (with their data) are garbage-collected;
#   - production tier: tracing is on. stepfunctions:
#     configuration.tracingConfiguration.enabled == true (X-Ray). temporal
#     and argo artifacts have no per-workflow tracing switch (tracing is a
#     property of the worker / controller deployment), so they are only
#     checked when the renderer emits rendered.tracing.enabled, which must
#     then be true.
#   - argo: every workflow-bearing manifest runs its pods as a service
#     account of its own (serviceAccountName set, not `default`), as
#     non-root (securityContext.runAsNonRoot true, no container with
#     runAsNonRoot false or runAsUser 0), and every container or script
#     template with a read-only root filesystem
#     (securityContext.readOnlyRootFilesystem true);
#   - stepfunctions, a role of its own (rendered.role.managed): no policy
#     action with a wildcard, no `*` resource except for the actions AWS
#     authorizes on `*` only (CloudWatch Logs log delivery, X-Ray), and no
#     managed policy attached;
#   - stepfunctions, the target's roleArn (rendered.role.managed false): when
#     the role's policies were read (rendered.role.Granted, on live documents:
#     `cpl drift`), every Allow grant is one the bindings need
#     (rendered.role.Needs, action and resource alike).
#   Violations point at the workflow node that drives the requirement
#   (/metadata/classification for execution data, /spec otherwise).
# custom:
#   id: CPL-P021
#   severity: high
#   controls:
#     - "HIPAA §164.312(b) audit controls without disclosure of ePHI in logs"
#     - "PCI DSS 3.3 / 10.3 sensitive data is not written to logs"
#     - "GDPR Art. 5(1)(c) data minimisation and Art. 5(1)(e) storage limitation"
#     - "SOC 2 CC7.2 system monitoring (distributed tracing)"
#     - "SOC 2 CC6.1 / CC6.3 least privilege of workload identities"
#     - "PCI DSS 7.2 access limited to what the job needs"
package cpl.rules.rendered_hardening

import rego.v1

import data.cpl.lib.context

_rendered := context.rendered

# Step Functions: execution data in logs for sensitive workflows.
deny contains v if {
	_rendered.kind == "stepfunctions"
	context.sensitive
	logging := _rendered.configuration.loggingConfiguration
	logging.includeExecutionData == true
	object.get(logging, "level", "ALL") != "OFF"
	v := {
		"msg": sprintf("workflow '%s' is classified %s but its Step Functions state machine logs execution data (loggingConfiguration.includeExecutionData true, level %v) on target '%s'", [
			context.name, context.classification, object.get(logging, "level", "ALL"), context.target_name,
		]),
		"path": "/metadata/classification",
	}
}

# Argo: ttlStrategy and podGC on every workflow-bearing manifest.
deny contains v if {
	_rendered.kind == "argo"
	some i, m in object.get(_rendered, "manifests", [])
	[where, wspec] := _workflow_spec(m)
	some field in ["ttlStrategy", "podGC"]
	not wspec[field]
	v := {
		"msg": sprintf("rendered Argo %s '%v' (manifest %d) sets no %s.%s: finished workflows and their pods are never cleaned up", [
			m.kind, object.get(m, ["metadata", "name"], "?"), i, where, field,
		]),
		"path": "/spec",
	}
}

# Production: tracing.
deny contains v if {
	context.production
	_rendered.kind == "stepfunctions"
	not _rendered.configuration.tracingConfiguration.enabled == true
	v := {
		"msg": sprintf("production workflow '%s' has X-Ray tracing off on Step Functions target '%s' (configuration.tracingConfiguration.enabled is not true)", [
			context.name, context.target_name,
		]),
		"path": "/spec",
	}
}

deny contains v if {
	context.production
	_rendered.kind in {"temporal", "argo"}
	is_object(_rendered.tracing)
	not _rendered.tracing.enabled == true
	v := {
		"msg": sprintf("production workflow '%s' has tracing off on %s target '%s' (rendered.tracing.enabled is not true)", [
			context.name, _rendered.kind, context.target_name,
		]),
		"path": "/spec",
	}
}

_workflow_spec(m) := ["spec", object.get(m, "spec", {})] if m.kind in {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"}

_workflow_spec(m) := ["spec.workflowSpec", object.get(m, ["spec", "workflowSpec"], {})] if m.kind == "CronWorkflow"

# Argo: a service account of its own, non-root, read-only root filesystem.
deny contains v if {
	_rendered.kind == "argo"
	some i, m in object.get(_rendered, "manifests", [])
	[where, wspec] := _workflow_spec(m)
	object.get(wspec, "serviceAccountName", "default") in {"", "default"}
	v := {
		"msg": sprintf("rendered Argo %s '%v' (manifest %d) runs its pods as the namespace's default service account (%s.serviceAccountName unset or 'default')", [
			m.kind, object.get(m, ["metadata", "name"], "?"), i, where,
		]),
		"path": "/spec",
	}
}

deny contains v if {
	_rendered.kind == "argo"
	some i, m in object.get(_rendered, "manifests", [])
	[where, wspec] := _workflow_spec(m)
	not object.get(wspec, ["securityContext", "runAsNonRoot"], false) == true
	v := {
		"msg": sprintf("rendered Argo %s '%v' (manifest %d) does not run its pods as non-root (%s.securityContext.runAsNonRoot is not true)", [
			m.kind, object.get(m, ["metadata", "name"], "?"), i, where,
		]),
		"path": "/spec",
	}
}

deny contains v if {
	_rendered.kind == "argo"
	some i, m in object.get(_rendered, "manifests", [])
	[where, wspec] := _workflow_spec(m)
	some t in object.get(wspec, "templates", [])
	some kind in ["container", "script"]
	container := t[kind]
	problem := _container_problem(object.get(container, "securityContext", {}))
	v := {
		"msg": sprintf("rendered Argo %s '%v' (manifest %d): template '%v' (%s) %s", [
			m.kind, object.get(m, ["metadata", "name"], "?"), i, object.get(t, "name", "?"), kind, problem,
		]),
		"path": "/spec",
	}
}

_container_problem(sc) := "has a writable root filesystem (securityContext.readOnlyRootFilesystem is not true)" if {
	not object.get(sc, "readOnlyRootFilesystem", false) == true
}

_container_problem(sc) := "runs as root (securityContext.runAsNonRoot false or runAsUser 0)" if {
	object.get(sc, "readOnlyRootFilesystem", false) == true
	_root(sc)
}

_root(sc) if sc.runAsNonRoot == false

_root(sc) if sc.runAsUser == 0

# Step Functions: the role grants what the bindings need, nothing more.

# Actions AWS authorizes on `*` only (stepfunctions/iam.py UNSCOPED_ACTIONS).
unscoped_actions := {
	"logs:createlogdelivery", "logs:deletelogdelivery", "logs:describeloggroups",
	"logs:describeresourcepolicies", "logs:getlogdelivery", "logs:listlogdeliveries",
	"logs:putresourcepolicy", "logs:updatelogdelivery",
	"xray:getsamplingrules", "xray:getsamplingtargets", "xray:puttelemetryrecords",
	"xray:puttracesegments",
}

_role := object.get(_rendered, "role", {})

deny contains v if {
	_rendered.kind == "stepfunctions"
	_role.managed == true
	some name, document in object.get(_role, "Policies", {})
	some [action, resource] in _grants(document)
	_wildcard(action, resource)
	v := {
		"msg": sprintf("workflow '%s': its Step Functions role '%v' on target '%s' grants %s on %s (policy %s): a wildcard beyond what its bindings need", [
			context.name, object.get(_role, "RoleName", "?"), context.target_name, action, resource, name,
		]),
		"path": "/spec",
	}
}

deny contains v if {
	_rendered.kind == "stepfunctions"
	_role.managed == true
	some arn in object.get(_role, "AttachedPolicies", [])
	v := {
		"msg": sprintf("workflow '%s': its Step Functions role '%v' on target '%s' has managed policy %s attached: it grants beyond what its bindings need", [
			context.name, object.get(_role, "RoleName", "?"), context.target_name, arn,
		]),
		"path": "/spec",
	}
}

deny contains v if {
	_rendered.kind == "stepfunctions"
	_role.managed == false
	is_array(_role.Granted)
	needed := {[lower(a), r] | some [a, r] in _grants(object.get(_role, "Needs", {}))}
	excess := sort({sprintf("%s on %s", [a, r]) |
		some document in _role.Granted
		some [a, r] in _grants(document)
		not [lower(a), r] in needed
	})
	count(excess) > 0
	shown := array.slice(excess, 0, 10)
	v := {
		"msg": sprintf("workflow '%s': the role %v of target '%s' grants more than the workflow's bindings need (%d grants: %s%s)", [
			context.name, object.get(_role, "Arn", "?"), context.target_name, count(excess),
			concat(", ", shown), _more(count(excess), count(shown)),
		]),
		"path": "/spec",
	}
}

_more(total, shown) := "" if total == shown

_more(total, shown) := ", ..." if total > shown

_wildcard(action, _) if contains(action, "*")

_wildcard(action, resource) if {
	resource == "*"
	not lower(action) in unscoped_actions
}

# [action, resource] of every Allow statement of a policy document; NotAction and
# NotResource statements grant everything but what they name, so they count as `*`.
_grants(document) := {[a, r] |
	some statement in _list(object.get(document, "Statement", []))
	statement.Effect == "Allow"
	some a in _actions(statement)
	some r in _resources(statement)
}

_actions(statement) := ["*"] if statement.NotAction

_actions(statement) := _list(object.get(statement, "Action", [])) if not statement.NotAction

_resources(statement) := ["*"] if statement.NotResource

_resources(statement) := _list(object.get(statement, "Resource", [])) if not statement.NotResource

_list(x) := x if is_array(x)

_list(x) := [x] if not is_array(x)
