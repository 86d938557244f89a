package cpl.rules.rendered_hardening_test

import rego.v1

import data.cpl.rules.rendered_hardening

_sfn(include, tracing) := {"kind": "stepfunctions", "definition": {"StartAt": "a", "States": {}}, "configuration": {
	"loggingConfiguration": {"level": "ALL", "includeExecutionData": include},
	"tracingConfiguration": {"enabled": tracing},
}}

_hardened := {
	"serviceAccountName": "cpl-orders",
	"securityContext": {"runAsNonRoot": true, "runAsUser": 65534},
	"templates": [
		{"name": "task-a", "container": {"image": "x", "securityContext": {"readOnlyRootFilesystem": true}}},
		{"name": "main", "steps": []},
	],
}

_gc := object.union(_hardened, {"ttlStrategy": {"secondsAfterCompletion": 2592000}, "podGC": {"strategy": "OnPodCompletion"}})

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
	d := rendered_hardening.deny with input as _inp("development", "internal", _argo(object.union(_hardened, {"ttlStrategy": {"secondsAfterCompletion": 60}}), _hardened))
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

_msgs(d) := {v.msg | some v in d}

test_argo_default_service_account_root_and_writable_root_filesystem if {
	bare := {"templates": [{"name": "task-a", "script": {"image": "x", "source": "true"}}]}
	d := rendered_hardening.deny with input as _inp("development", "internal", _argo(object.union(_gc, {"serviceAccountName": "default"}), object.union(bare, {"ttlStrategy": {}, "podGC": {}})))
	_msgs(d) == {
		"rendered Argo WorkflowTemplate 'orders' (manifest 0) runs its pods as the namespace's default service account (spec.serviceAccountName unset or 'default')",
		"rendered Argo CronWorkflow 'orders-cron' (manifest 1) runs its pods as the namespace's default service account (spec.workflowSpec.serviceAccountName unset or 'default')",
		"rendered Argo CronWorkflow 'orders-cron' (manifest 1) does not run its pods as non-root (spec.workflowSpec.securityContext.runAsNonRoot is not true)",
		"rendered Argo CronWorkflow 'orders-cron' (manifest 1): template 'task-a' (script) has a writable root filesystem (securityContext.readOnlyRootFilesystem is not true)",
	}
}

test_argo_container_back_to_root if {
	root := {"name": "task-b", "container": {"image": "x", "securityContext": {"readOnlyRootFilesystem": true, "runAsUser": 0}}}
	spec := object.union(_gc, {"templates": [root]})
	d := rendered_hardening.deny with input as _inp("development", "internal", _argo(spec, _gc))
	_msgs(d) == {"rendered Argo WorkflowTemplate 'orders' (manifest 0): template 'task-b' (container) runs as root (securityContext.runAsNonRoot false or runAsUser 0)"}
}

_policy(statements) := {"Version": "2012-10-17", "Statement": statements}

_lambda := {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": ["arn:aws:lambda:us-east-1:1:function:a"]}

_logs := {"Effect": "Allow", "Action": ["logs:CreateLogDelivery", "logs:GetLogDelivery"], "Resource": ["*"]}

_with_role(role) := object.union(_sfn(false, false), {"role": role})

_managed(statements, attached) := _with_role({"managed": true, "RoleName": "cpl-t-orders", "Policies": {"cpl-bindings": _policy(statements)}, "AttachedPolicies": attached})

test_managed_role_least_privilege if {
	count(rendered_hardening.deny) == 0 with input as _inp("development", "internal", _managed([_lambda, _logs], []))
}

test_managed_role_wildcards_and_attached_policies if {
	star := {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:1:q"}
	anywhere := {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": "*"}
	d := rendered_hardening.deny with input as _inp("development", "internal", _managed([star, anywhere, _logs], ["arn:aws:iam::aws:policy/AdministratorAccess"]))
	_msgs(d) == {
		"workflow 'orders': its Step Functions role 'cpl-t-orders' on target 't1' grants sqs:* on arn:aws:sqs:us-east-1:1:q (policy cpl-bindings): a wildcard beyond what its bindings need",
		"workflow 'orders': its Step Functions role 'cpl-t-orders' on target 't1' grants lambda:InvokeFunction on * (policy cpl-bindings): a wildcard beyond what its bindings need",
		"workflow 'orders': its Step Functions role 'cpl-t-orders' on target 't1' has managed policy arn:aws:iam::aws:policy/AdministratorAccess attached: it grants beyond what its bindings need",
	}
}

_provided(granted) := _with_role(object.union(
	{"managed": false, "Arn": "arn:aws:iam::1:role/shared", "Needs": _policy([_lambda, _logs])},
	granted,
))

test_provided_role_unread_is_not_judged if {
	count(rendered_hardening.deny) == 0 with input as _inp("development", "internal", _provided({}))
}

test_provided_role_granting_exactly_the_needs if {
	exact := {"Effect": "Allow", "Action": "Lambda:invokefunction", "Resource": "arn:aws:lambda:us-east-1:1:function:a"}
	count(rendered_hardening.deny) == 0 with input as _inp("development", "internal", _provided({"Granted": [_policy([exact, _logs])]}))
}

test_provided_role_granting_more if {
	other := {"Effect": "Allow", "Action": ["lambda:InvokeFunction", "sqs:SendMessage"], "Resource": ["arn:aws:lambda:us-east-1:1:function:b"]}
	everything := {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
	denied := {"Effect": "Deny", "Action": "*", "Resource": "*"}
	d := rendered_hardening.deny with input as _inp("development", "internal", _provided({"Granted": [_policy([_lambda, other]), _policy([everything, denied])]}))
	_msgs(d) == {"workflow 'orders': the role arn:aws:iam::1:role/shared of target 't1' grants more than the workflow's bindings need (3 grants: * on *, lambda:InvokeFunction on arn:aws:lambda:us-east-1:1:function:b, sqs:SendMessage on arn:aws:lambda:us-east-1:1:function:b)"}
}
