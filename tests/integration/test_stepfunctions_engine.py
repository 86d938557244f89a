"""Rendered state machines executed by a real moto server (ASL execution enabled).

The trace is read from `get_execution_history`: state names in the order they were entered.
moto quirks (ARCHITECTURE.md): Lambda code never runs, a function echoes its event (a
missing one too), so failures are injected with an `sqs:sendMessage` to a queue that does
not exist or a `fail` step inside a `parallel`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from controlplane.engines.stepfunctions.translate import StepFunctionsTranslator
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import ActivityBinding, Environment, Selector
from controlplane.spec.load import load_environment, load_repo
from controlplane.spec.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

TRANSLATOR = StepFunctionsTranslator()
MISSING_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"


@pytest.fixture(scope="module")
def environment() -> Environment:
    env = load_environment(ROOT, "local")
    targets = [
        t.model_copy(update={"select": Selector()}) if t.engine == "stepfunctions" else t
        for t in env.spec.targets
    ]
    return env.model_copy(update={"spec": env.spec.model_copy(update={"targets": targets})})


@pytest.fixture(scope="module")
def examples() -> dict[str, Workflow]:
    result = load_repo(ROOT)
    assert result.ok
    return {loaded.model.key: loaded.model for loaded in result.workflows}


class Engine:
    """boto3 clients on the moto server, and helpers to deploy and run artifacts."""

    def __init__(self, endpoint: str) -> None:
        options: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.sfn = boto3.client("stepfunctions", **options)
        self.sqs = boto3.client("sqs", **options)
        self.role = "arn:aws:iam::123456789012:role/cpl-sfn"
        self.machines: dict[str, str] = {}

    def deploy(self, artifact: Artifact, name: str | None = None) -> str:
        name = name or artifact.resource
        tags = artifact.document["configuration"]["tags"]
        arn: str = self.sfn.create_state_machine(
            name=name,
            definition=json.dumps(artifact.document["definition"]),
            roleArn=self.role,
            type="STANDARD",
            tags=[{"key": k, "value": v} for k, v in sorted(tags.items())],
        )["stateMachineArn"]
        self.machines[name] = arn
        return arn

    def start(self, name: str, document: Any) -> str:
        arn: str = self.sfn.start_execution(
            stateMachineArn=self.machines[name],
            name=uuid.uuid4().hex,
            input=json.dumps(document),
        )["executionArn"]
        return arn

    def finish(self, execution: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.05)

    def run(self, name: str, document: Any) -> tuple[dict[str, Any], list[str]]:
        execution = self.start(name, document)
        described = self.finish(execution)
        return described, self.trace(execution)

    def history(self, execution: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.sfn.get_execution_history(
                executionArn=execution, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def trace(self, execution: str) -> list[str]:
        """Entered states, without the input check and the Pass states that lift a keyed
        Lambda call's result into place (tests/controls checks those)."""
        return [
            name
            for e in self.history(execution)
            if "stateEnteredEventDetails" in e
            for name in [e["stateEnteredEventDetails"]["name"]]
            if name != "check-input" and not name.endswith("-result")
        ]

    def messages(self, queue: str) -> list[dict[str, Any]]:
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        found = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        # the data of each dead-letter CloudEvent
        return [json.loads(m["Body"])["data"] for m in found.get("Messages", [])]


@pytest.fixture(scope="module")
def engine(
    moto_endpoint: str, examples: dict[str, Workflow], environment: Environment
) -> Iterator[Engine]:
    """Every example deployed once; the dead-letter queues exist."""
    engine = Engine(moto_endpoint)
    for queue in ("orders-dlq", "retail-batch-dlq", "health-dlq", "finance-dlq"):
        engine.sqs.create_queue(QueueName=queue)
    target = environment.target("sfn-local")
    for workflow in examples.values():
        engine.deploy(TRANSLATOR.render(workflow, target, environment))
    yield engine


ORDER = {
    "orderId": "ORD-00000001",
    "customer": {"id": "c-1", "verified": True, "email": "a@example.com"},
    "items": [{"sku": "s-1", "quantity": 1}],
    "total": 50,
    "currency": "EUR",
    "shipping": {"method": "standard", "address": {}, "warehouse": "w-1"},
}


def test_every_example_is_created(engine: Engine, examples: dict[str, Workflow]) -> None:
    pages = engine.sfn.get_paginator("list_state_machines").paginate()  # the session's moto
    listed = {m["name"] for page in pages for m in page["stateMachines"]}  # serves many tests
    expected = {f"{w.metadata.tenant}-{w.metadata.name}" for w in examples.values()}
    assert expected <= listed


def _with_step(workflow: Workflow, name: str, **update: Any) -> Workflow:
    steps = [s.model_copy(update=update) if s.name == name else s for s in workflow.spec.steps]
    return workflow.model_copy(update={"spec": workflow.spec.model_copy(update={"steps": steps})})


def test_order_fulfillment_happy_path(
    engine: Engine, examples: dict[str, Workflow], environment: Environment
) -> None:
    """The echoing functions return no reservation id: ship-order here sends what it has."""
    workflow = _with_step(
        examples["retail/order-fulfillment"],
        "ship-order",
        parameters={"orderId": "$.orderId", "reservation": "$.reservation"},
    )
    engine.deploy(
        TRANSLATOR.render(workflow, environment.target("sfn-local"), environment), "happy"
    )
    described, trace = engine.run("happy", ORDER)
    assert described["status"] == "SUCCEEDED", (described, trace)
    assert trace == [
        "screen-order",
        "reserve-inventory",
        "charge-payment",
        "ship-order",
        "confirm-order",
        "order-completed",
    ]
    output = json.loads(described["output"])
    # Lambda results land at resultPath unwrapped, as on Temporal (the function echoes)
    assert output["reservation"] == {
        "orderId": "ORD-00000001",
        "items": ORDER["items"],
        "warehouse": "w-1",
    }


def test_fail_step_goes_to_the_dead_letter_queue(engine: Engine) -> None:
    order = {**ORDER, "orderId": "ORD-00000002", "total": 5000}
    order["customer"] = {**ORDER["customer"], "verified": False}
    described, trace = engine.run("retail-order-fulfillment", order)
    assert described["status"] == "FAILED"
    assert described["error"] == "VerificationRequired"
    assert trace == ["screen-order", "reject-unverified", "dead-letter", "run-failed"]
    bodies = [m for m in engine.messages("orders-dlq") if m["input"]["orderId"] == "ORD-00000002"]
    assert len(bodies) == 1
    assert bodies[0]["error"] == "VerificationRequired"
    assert bodies[0]["workflow"] == "retail/order-fulfillment"
    assert bodies[0]["runId"].startswith("arn:aws:states:")


def test_saga_compensates_in_reverse_order_then_dead_letters(
    engine: Engine, examples: dict[str, Workflow], environment: Environment
) -> None:
    """ship-order fails (an SQS send to a queue that does not exist): the compensations
    recorded so far run newest first, then the dead-letter hand-off, then the run fails."""
    broken = _with_step(
        examples["retail/order-fulfillment"],
        "ship-order",
        parameters={"QueueUrl": MISSING_QUEUE, "MessageBody": "ship"},
        retry=None,
    )
    activities = dict(environment.spec.bindings.activities)
    activities["shipping.create-shipment"] = ActivityBinding(
        stepfunctions={"resource": "arn:aws:states:::sqs:sendMessage"}
    )
    bindings = environment.spec.bindings.model_copy(update={"activities": activities})
    env = environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"bindings": bindings})}
    )
    artifact = TRANSLATOR.render(broken, env.target("sfn-local"), env)
    engine.deploy(artifact, "saga-order-fulfillment")
    order = {**ORDER, "orderId": "ORD-00000003"}
    described, trace = engine.run("saga-order-fulfillment", order)
    assert described["status"] == "FAILED"
    assert trace == [
        "screen-order",
        "reserve-inventory",
        "charge-payment",
        "ship-order",
        "refund-payment",
        "release-inventory",
        "dead-letter",
        "run-failed",
    ]
    bodies = [m for m in engine.messages("orders-dlq") if m["input"]["orderId"] == "ORD-00000003"]
    assert described["error"] == "SQS.SdkClientException"
    assert len(bodies) == 1 and bodies[0]["error"] == described["error"]


FLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: flow, tenant: retail, version: 1.0.0, owner: team-test}
spec:
  start: route
  steps:
    - name: route
      type: choice
      rules: [{when: {path: $.mode, eq: map}, next: chunks}]
      default: fan-out
    - name: chunks
      type: map
      items: $.items
      batchSize: 2
      maxConcurrency: 1
      resultPath: $.chunks
      start: per-chunk
      steps: [{name: per-chunk, type: task, activity: inventory.fetch-stock, end: true}]
      next: done
    - name: fan-out
      type: parallel
      resultPath: $.branches
      branches:
        - start: pause
          steps: [{name: pause, type: wait, duration: 1s, end: true}]
        - start: boom
          steps: [{name: boom, type: fail, error: Boom, cause: injected}]
      catch: [{errors: [Boom], next: recovered, resultPath: $.error}]
      next: done
    - {name: recovered, type: succeed}
    - {name: done, type: succeed}
"""


def test_choice_batched_map_parallel_and_catch(engine: Engine, environment: Environment) -> None:
    workflow = Workflow.model_validate(yaml.safe_load(FLOW))
    engine.deploy(TRANSLATOR.render(workflow, environment.target("sfn-local"), environment))
    described, trace = engine.run("retail-flow", {"mode": "map", "items": [1, 2, 3, 4, 5]})
    assert described["status"] == "SUCCEEDED"
    assert trace == [
        "route",
        "chunks-batches",
        "chunks",
        "per-chunk",
        "per-chunk",
        "per-chunk",
        "done",
    ]
    output = json.loads(described["output"])
    assert output == {"mode": "map", "items": [1, 2, 3, 4, 5], "chunks": [[1, 2], [3, 4], [5]]}

    described, trace = engine.run("retail-flow", {"mode": "parallel"})
    assert described["status"] == "SUCCEEDED"
    assert trace[0] == "route" and trace[1] == "fan-out"
    # Branches run concurrently and a failing branch stops the others: "pause" may or may
    # not have started before "boom" failed the parallel state.
    assert "boom" in trace[2:-1] and set(trace[2:-1]) <= {"boom", "pause"}
    assert trace[-1] == "recovered"
    assert json.loads(described["output"])["error"] == {"Error": "Boom", "Cause": "injected"}


def test_dag_layers_merge_results_and_skip_false_when(engine: Engine) -> None:
    """appointment-reminders: one step, a parallel layer of two maps whose `when` is false
    (the echoed appointments carry no counts), then the step depending on both."""
    described, trace = engine.run("health-appointment-reminders", {"window": "w-1"})
    assert described["status"] == "SUCCEEDED", described
    assert trace[:2] == ["list-appointments", "stage-2"]
    assert sorted(trace[2:7]) == [  # branches run concurrently: their order varies
        "send-email-skipped",
        "send-email-when",
        "send-sms-skipped",
        "send-sms-when",
        "stage-2-input",
    ]
    assert trace[7:] == ["stage-2-merge-1", "stage-2-merge-2", "record-reminders"]
    # record-reminders (resultPath $) echoes its parameters: the merged layer document had
    # null at the skipped steps' resultPaths (approximated) and no helper keys
    assert json.loads(described["output"]) == {"window": "w-1", "sms": None, "emails": None}


def _approval_token(engine: Engine, execution: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for event in engine.history(execution):
            details = event.get("taskScheduledEventDetails")
            if details and "waitForTaskToken" in details["resource"] + details["resourceType"]:
                token: str = json.loads(details["parameters"])["Entries"][0]["Detail"]["taskToken"]
                return token
            if details and details.get("resource", "").startswith("putEvents"):
                token = json.loads(details["parameters"])["Entries"][0]["Detail"]["taskToken"]
                return token
        time.sleep(0.05)
    raise AssertionError("the approval task was never scheduled")


RETURN = {
    "returnId": "r-1",
    "orderId": "o-1",
    "customerId": "c-1",
    "email": "c@example.com",
    "reason": "defective",
    "refund": {"amount": 900, "currency": "EUR"},
}


@pytest.mark.parametrize("approved", [True, False])
def test_approval_waits_for_the_task_token(engine: Engine, approved: bool) -> None:
    execution = engine.start("retail-returns-processing", RETURN)
    token = _approval_token(engine, execution)
    if approved:
        engine.sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    else:
        engine.sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause="no")
    described = engine.finish(execution)
    trace = engine.trace(execution)
    head = ["register-return", "inspect-item", "needs-approval", "manager-approval"]
    if approved:
        assert described["status"] == "SUCCEEDED"
        assert trace == [*head, "issue-refund", "notify-refunded"]
    else:
        assert described["status"] == "FAILED" and described["error"] == "ReturnRejected"
        assert trace == [*head, "notify-rejected", "return-rejected", "dead-letter", "run-failed"]
