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
