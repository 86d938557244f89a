"""Payload offload on Step Functions: why cpl does not render one, shown on the emulator.

Step Functions checks its 256 KiB limit on every state's result before the next state runs,
so no state after a task could move the task's large result to S3: the run fails first. The
translator therefore records `payload.offload` as unsupported, and the pattern that works is
the function's own (docs/runtime.md, "Payload offload").
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from controlplane.engines import ENGINES
from controlplane.engines.stepfunctions.runner import execution_outcome, start_execution
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow

pytestmark = pytest.mark.integration

KIB = 1024
ROLE = "arn:aws:iam::123456789012:role/cpl-sfn"


def _environment(endpoint: str) -> Environment:
    return Environment.model_validate(
        {
            "apiVersion": "cpl.dev/v1",
            "kind": "Environment",
            "metadata": {"name": "offload-sfn"},
            "spec": {
                "tier": "development",
                "targets": [
                    {
                        "name": "sfn-offload",
                        "engine": "stepfunctions",
                        "region": "us-east-1",
                        "endpoint": endpoint,
                        "roleArn": ROLE,
                    }
                ],
                "bindings": {
                    "activities": {
                        "offload.double": {
                            "stepfunctions": {
                                "resource": "arn:aws:lambda:us-east-1:123456789012:function:double"
                            }
                        }
                    },
                    "stores": {"artifacts": {"url": "s3://cpl-offload-tests/runs"}},
                },
            },
        }
    )


def _workflow() -> Workflow:
    """One task whose Lambda function returns twice the run's blob (moto echoes its event)."""
    return Workflow.model_validate(
        {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": {
                "name": "sfn-offload",
                "tenant": "retail",
                "version": "1.0.0",
                "owner": "team-cpl",
            },
            "spec": {
                "start": "double",
                "steps": [
                    {
                        "name": "double",
                        "type": "task",
                        "activity": "offload.double",
                        "parameters": {"a": "$.blob", "b": "$.blob"},
                        "resultPath": "$.doubled",
                        "end": True,
                    }
                ],
                "payload": {"offload": {"store": "artifacts", "threshold": "64KiB"}},
            },
        }
    )


def test_a_task_result_above_256_kib_fails_before_any_state_could_offload_it(
    moto_endpoint: str,
) -> None:
    environment = _environment(moto_endpoint)
    target = environment.target("sfn-offload")
    workflow = _workflow()
    artifact = ENGINES["stepfunctions"].translator.render(workflow, target, environment)
    [record] = [s for s in artifact.support if s.feature == "payload.offload"]
    assert record.support == "unsupported"
    assert "256 KiB" in record.reason

    client: Any = boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_state_machine(
        name=artifact.resource, definition=json.dumps(artifact.document["definition"]), roleArn=ROLE
    )
    small = start_execution(client, target, workflow, {"blob": "s" * (20 * KIB)})
    assert execution_outcome(client, small, 30, poll=0.05)["status"] == "succeeded"

    large = start_execution(client, target, workflow, {"blob": "l" * (150 * KIB)})
    outcome = execution_outcome(client, large, 30, poll=0.05)
    assert outcome["status"] == "failed"
    assert outcome["error"] is not None
    assert outcome["error"]["error"] == "States.DataLimitExceeded"
