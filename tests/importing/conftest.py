"""A control repo whose `dev` environment targets the session's moto server."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3
import pytest

CORPUS = Path(__file__).parent / "corpus"
ROLE = "arn:aws:iam::123456789012:role/cpl-sfn"

ENVIRONMENT = """\
# Development: moto for Step Functions, manifests for Argo.
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: dev}}
spec:
  tier: development
  targets:
    - name: sfn
      engine: stepfunctions
      region: us-east-1
      endpoint: {endpoint}
      roleArn: {role}
      select: {{labels: {{runtime: stepfunctions}}}}
    - name: argo
      engine: argo
      delivery: gitops
      path: deploy/argo
      namespace: batch
      select: {{labels: {{kind: batch}}}}
  policy:
    enforcement: advisory
  bindings:
    activities:
      # owned by the payments team: keep as written
      charge-card:
        stepfunctions: {{resource: "arn:aws:lambda:us-east-1:123456789012:function:charge-card"}}
      ship-order:
        stepfunctions: {{resource: "arn:aws:lambda:us-east-1:999999999999:function:ship-order"}}
"""


def make_control_repo(root: Path, endpoint: str = "http://127.0.0.1:1") -> Path:
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "workflows").mkdir(exist_ok=True)
    text = ENVIRONMENT.format(endpoint=endpoint, role=ROLE)
    (root / "environments" / "dev.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def control_repo(tmp_path: Path) -> Path:
    """A control repo with no reachable Step Functions target (file imports only)."""
    return make_control_repo(tmp_path / "repo")


@pytest.fixture
def sfn(moto_endpoint: str) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def corpus_definition(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / f"{name}.asl.json").read_text("utf-8"))
    return data


def run_all(
    client: Any, runs: Iterable[tuple[str, Any]], timeout: float = 45.0
) -> list[dict[str, Any]]:
    """Start every (state machine ARN, input) at once, wait for all, return each execution's
    status, output, error and task trace, in order."""
    arns = [
        client.start_execution(
            stateMachineArn=machine, name=f"run-{index}", input=json.dumps(document)
        )["executionArn"]
        for index, (machine, document) in enumerate(runs)
    ]
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(arns):
        for arn in arns:
            if arn in results:
                continue
            described = client.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                results[arn] = described
        if len(results) < len(arns):
            assert time.monotonic() < deadline, "executions did not finish in time"
            time.sleep(0.1)
    return [_summary(client, arn, results[arn]) for arn in arns]


def _summary(client: Any, arn: str, described: dict[str, Any]) -> dict[str, Any]:
    trace = []
    for page in client.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            if event.get("type") == "TaskStateEntered":
                trace.append(event["stateEnteredEventDetails"]["name"])
    output = described.get("output")
    return {
        "status": described["status"],
        "output": json.loads(output) if output else None,
        "error": described.get("error"),
        "trace": trace,
    }
