package cpl.rules.rendered_hardening_test

import rego.v1

import data.cpl.rules.rendered_hardening

_sfn(include, tracing) := {"kind": "stepfunctions", "definition": {"StartAt": "a", "States": {}}, "configuration": {
	"loggingConfiguration": {"level": "ALL", "includeExecutionData": include},
	"tracingConfiguration": {"enabled": tracing},
}}

_gc := {"ttlStrategy": {"secondsAfterCompletion": 2592000}, "podGC": {"strategy": "OnPodCompletion"}}

_argo(tpl_spec, cron_spec) := {"kind": "argo", "manifests": [
	{"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "orders"}, "spec": tpl_spec},
	{"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "orders-cron"}, "spec": {"schedule": "0 2 * * *", "workflowSpec": cron_spec}},
]}

_inp(tier, class, rendered) := {
	"environment": {"name": "env", "tier": tier},
	"target": {"name": "t1", "engine": object.get(rendered, "kind", "")},
	"workflow": {"metadata": {"name": "orders", "classification": class}, "spec": {}},
	"rendered": rendered,
}

_paths(d) := {v.path | some v in d}

test_compliant if {
	count(rendered_hardening.deny) == 0 with input as _inp("production", "pii", _sfn(false, true))
	count(rendered_hardening.deny) == 0 with input as _inp("production", "pii", _argo(_gc, _gc))
	count(rendered_hardening.deny) == 0 with input as _inp("production", "pii", {"kind": "temporal", "tracing": {"enabled": true}})
	count(rendered_hardening.deny) == 0 with input as _inp("production", "pii", {"kind": "temporal"})
}

test_absent_rendered_never_fires if {
	count(rendered_hardening.deny) == 0 with input as json.remove(_inp("production", "pii", {}), ["rendered"])
	count(rendered_hardening.deny) == 0 with input as _inp("production", "pii", {})
}

test_execution_data_for_pii if {
	d := rendered_hardening.deny with input as _inp("development", "pii", _sfn(true, false))
	d == {{"msg": "workflow 'orders' is classified pii but its Step Functions state machine logs execution data (loggingConfiguration.includeExecutionData true, level ALL) on target 't1'", "path": "/metadata/classification"}}
	count(rendered_hardening.deny) == 0 with input as _inp("development", "internal", _sfn(true, false))
}

test_tracing_off_on_production if {
	d := rendered_hardening.deny with input as _inp("production", "internal", _sfn(false, false))
	_paths(d) == {"/spec"}
	count(d) == 1
}

test_argo_without_gc if {
	d := rendered_hardening.deny with input as _inp("development", "internal", _argo({"ttlStrategy": {"secondsAfterCompletion": 60}}, {}))
	{v.msg | some v in d} == {
		"rendered Argo WorkflowTemplate 'orders' (manifest 0) sets no spec.podGC: finished workflows and their pods are never cleaned up",
		"rendered Argo CronWorkflow 'orders-cron' (manifest 1) sets no spec.workflowSpec.ttlStrategy: finished workflows and their pods are never cleaned up",
		"rendered Argo CronWorkflow 'orders-cron' (manifest 1) sets no spec.workflowSpec.podGC: finished workflows and their pods are never cleaned up",
	}
}

test_temporal_tracing_off if {
	d := rendered_hardening.deny with input as _inp("production", "internal", {"kind": "temporal", "tracing": {"enabled": false}})
	_paths(d) == {"/spec"}
}
