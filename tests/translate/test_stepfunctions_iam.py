"""The least-privilege policy read off a rendered state machine (stepfunctions/iam.py)."""

from __future__ import annotations

import re
from typing import Any

from controlplane.engines.stepfunctions import iam
from tests.conftest import ROOT

MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:t-w"


def _grants(document: dict[str, Any]) -> set[tuple[str, str]]:
    policy = iam.policy_document(
        document, region="eu-west-1", account="111122223333", machine_arn=MACHINE
    )
    return {(a, r) for s in policy["Statement"] for a in s["Action"] for r in s["Resource"]}


def _task(resource: str, **parameters: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}


def test_each_binding_becomes_its_exact_grant() -> None:
    branch = {"States": {"breaker": _task("arn:aws:states:::dynamodb:updateItem", TableName="c")}}
    document = {
        "definition": {
            "StartAt": "a",
            "States": {
                "a": _task("arn:aws:lambda:eu-west-1:111122223333:function:f"),
                "b": _task("arn:aws:states:::lambda:invoke", FunctionName="arn:x:function:g"),
                "p": {"Type": "Parallel", "Branches": [branch]},
                "approve": _task(
                    "arn:aws:states:::events:putEvents.waitForTaskToken", Entries=[{}]
                ),
                "dlq": _task(
                    "arn:aws:states:::sqs:sendMessage",
                    QueueUrl="http://127.0.0.1:5000/111122223333/dlq",
                ),
                "act": _task("arn:aws:states:eu-west-1:111122223333:activity:manual"),
            },
        },
        "configuration": {
            "loggingConfiguration": {"destinations": [{}]},
            "tracingConfiguration": {"enabled": False},
            "encryptionConfiguration": {"kmsKeyId": "k-1"},
        },
        "schedule": {"Name": "t-w"},
    }
    grants = _grants(document)
    scoped = {(a, r) for a, r in grants if r != "*"}
    assert scoped == {
        ("lambda:InvokeFunction", "arn:aws:lambda:eu-west-1:111122223333:function:f"),
        ("lambda:InvokeFunction", "arn:x:function:g"),
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:eu-west-1:111122223333:table/c"),
        ("events:PutEvents", "arn:aws:events:eu-west-1:111122223333:event-bus/default"),
        ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:111122223333:dlq"),
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/k-1"),
        ("kms:GenerateDataKey", "arn:aws:kms:eu-west-1:111122223333:key/k-1"),
        ("states:StartExecution", MACHINE),
    }
    assert {a for a, r in grants if r == "*"} == set(iam.LOG_DELIVERY_ACTIONS)  # no tracing


def test_an_unknown_service_integration_is_granted_on_any_resource() -> None:
    document = {
        "definition": {"StartAt": "a", "States": {"a": _task("arn:aws:states:::glue:startJobRun")}}
    }
    assert _grants(document) == {("glue:StartJobRun", "*")}  # which CPL-P021 reports


def test_role_names_fit_iam() -> None:
    assert iam.role_name("t-w") == "cpl-t-w"
    long = iam.role_name("t-" + "x" * 80)
    assert len(long) == 64 and long.startswith("cpl-t-xxx")


def test_the_unscoped_actions_are_those_cpl_p021_allows_on_any_resource() -> None:
    rego = (ROOT / "controlplane/policies/rendered_hardening.rego").read_text()
    block = rego.split("unscoped_actions := {", 1)[1].split("}", 1)[0]
    assert set(re.findall(r'"([a-z:]+)"', block)) == {a.lower() for a in iam.UNSCOPED_ACTIONS}
