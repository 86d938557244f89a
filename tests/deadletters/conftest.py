"""A control repo whose runs fail into dead-letter queues on the real engines: a Temporal dev
server with `cpl worker` (a subprocess) and the moto server (Step Functions and SQS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.cli import run
from controlplane.engines.stepfunctions.translate import StepFunctionsTranslator
from controlplane.engines.temporal.devserver import DevServer
from controlplane.spec.load import load_environment, load_workflows
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]
TASK_QUEUE = "cpl-dlq-test"
TEMPORAL_QUEUE = "dlq-temporal"
LATE_QUEUE = "dlq-late"  # created only by the test that spools
SFN_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq-sfn"

WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: {name}
  tenant: retail
  version: 1.4.0
  owner: team-orders
  labels: {{runtime: {runtime}}}
spec:
  input:
    schema:
      type: object
      required: [orderId]
      properties: {{orderId: {{type: string}}, ok: {{type: boolean}}}}
  start: check
  steps:
    - name: check
      type: choice
      rules:
        - {{when: {{path: $.ok, eq: true}}, next: done}}
      default: reject
    - {{name: reject, type: fail, error: OrderRejected, cause: the order is not ok}}
    - {{name: done, type: succeed}}
  onError: {{deadLetter: {queue}}}
"""

ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: {name}}}
spec:
  tier: development
  targets:
    - name: temporal
      engine: temporal
      address: {address}
      namespace: default
      taskQueue: {task_queue}
      select: {{labels: {{runtime: temporal}}}}
    - name: sfn
      engine: stepfunctions
      region: us-east-1
      endpoint: {moto}
      roleArn: arn:aws:iam::123456789012:role/cpl-sfn
      select: {{labels: {{runtime: stepfunctions}}}}
  bindings:
    queues:
      orders-dlq: {{temporal: {temporal_queue}, stepfunctions: "{sfn_queue}"}}
      late-dlq: {{temporal: {late_queue}, stepfunctions: "{sfn_queue}"}}
  aws: {{region: us-east-1, endpoint: {aws}}}
  audit:
    sinks: [{{file: .cpl/audit/{name}.jsonl}}]
"""


def environment_text(name: str, address: str, moto: str, aws: str) -> str:
    return ENVIRONMENT.format(
        name=name,
        address=address,
        task_queue=TASK_QUEUE,
        moto=moto,
        aws=aws,
        temporal_queue=TEMPORAL_QUEUE,
        late_queue=LATE_QUEUE,
        sfn_queue=SFN_QUEUE,
    )


@pytest.fixture(scope="module")
def sqs(moto_endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: DevServer,
    moto_endpoint: str,
    sqs: Any,
) -> Path:
    """workflows (Temporal: retail/orders, retail/late; Step Functions: retail/sfn-orders),
    environment `test` (queues on moto) and `gone` (its queue service does not answer)."""
    root = tmp_path_factory.mktemp("dlq-repo")
    for name, runtime, queue in (
        ("orders", "temporal", "orders-dlq"),
        ("late", "temporal", "late-dlq"),
        ("sfn-orders", "stepfunctions", "orders-dlq"),
    ):
        path = root / "workflows" / "retail" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(WORKFLOW.format(name=name, runtime=runtime, queue=queue)))
    (root / "environments").mkdir()
    address = temporal_server.address
    (root / "environments" / "test.yaml").write_text(
        environment_text("test", address, moto_endpoint, moto_endpoint)
    )
    dead = f"http://127.0.0.1:{free_port()}"
    (root / "environments" / "gone.yaml").write_text(
        environment_text("gone", address, moto_endpoint, dead)
    )
    sqs.create_queue(QueueName=TEMPORAL_QUEUE)
    sqs.create_queue(QueueName="dlq-sfn")
    environment = load_environment(root, "test")
    translator = StepFunctionsTranslator()
    client = boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for loaded in load_workflows(root).workflows:
        if loaded.model.metadata.name != "sfn-orders":
            continue
        artifact = translator.render(loaded.model, environment.target("sfn"), environment)
        client.create_state_machine(
            name=artifact.resource,
            definition=json.dumps(artifact.document["definition"]),
            roleArn="arn:aws:iam::123456789012:role/cpl-sfn",
            type="STANDARD",
        )
    return root


@pytest.fixture(scope="module")
def worker(repo: Path) -> Iterator[subprocess.Popen[str]]:
    """`cpl worker --env test --target temporal`, a real subprocess."""
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "worker", "--env", "test", "--target", "temporal"],
        cwd=repo,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    assert f"task queue {TASK_QUEUE}" in banner, banner
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpl(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    """Run `cpl ARGS --repo REPO` in this process; exit code, stdout, stderr."""
    capsys.readouterr()
    code = run([*args, "--repo", str(repo)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def queued(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """The CloudEvents in a queue, read without hiding them."""
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    events: dict[str, dict[str, Any]] = {}
    receipts = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=20)
        messages = answer.get("Messages", [])
        if not messages:
            break
        for message in messages:
            receipts.append(message["ReceiptHandle"])
            if message["Body"].startswith("{"):  # other producers' messages are skipped
                events[message["MessageId"]] = json.loads(message["Body"])
    for receipt in receipts:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return list(events.values())
