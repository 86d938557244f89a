"""The Step Functions engine module against the real moto server of tests/engines.py."""

from __future__ import annotations

import dataclasses
import json
import socket
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from controlplane.engines import ResourceError, each
from controlplane.engines.retry import RetryPolicy
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.engines.stepfunctions.client import StepFunctionsEngine
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import Environment
from tests.engine_modules.conftest import changed, renamed, unique

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


@pytest.fixture
def engine(moto_endpoint: str, environment: Environment) -> StepFunctionsEngine:
    target = environment.target("sfn-local").model_copy(update={"endpoint": moto_endpoint})
    return StepFunctionsEngine(target, environment, policy=FAST)


@pytest.fixture
def scheduled(artifacts: dict[tuple[str, str], Artifact]) -> Artifact:
    """retail/inventory-sync: a schedule and a 90-day log retention, under a fresh tenant."""
    return renamed(artifacts[("retail/inventory-sync", "stepfunctions")], unique())


def test_lifecycle_create_read_diff_update_delete(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    assert engine.read(scheduled) is None

    live = engine.create(scheduled)
    assert live.id == engine.arn(scheduled.resource)
    assert live.digest == scheduled.digest  # apply stamps the digest tag
    assert engine.diff(scheduled, live) == []
    read = engine.read(scheduled)
    assert read is not None and engine.diff(scheduled, read) == []

    edited = changed(
        scheduled,
        {
            "/definition/Comment": "edited",
            "/logGroup/retentionInDays": 180,
            "/schedule/ScheduleExpression": "cron(0 4 * * ? *)",
            "/configuration/tracingConfiguration/enabled": True,
        },
    )
    assert [c["path"] for c in engine.diff(edited, read)] == [
        "/configuration/tracingConfiguration/enabled",
        "/definition/Comment",
        "/logGroup/retentionInDays",
        "/schedule/ScheduleExpression",
    ]
    assert {"path": "/logGroup/retentionInDays", "expected": 180, "actual": 90} in engine.diff(
        edited, read
    )

    updated = engine.update(edited, read)
    assert engine.diff(edited, updated) == []
    assert updated.digest == edited.digest

    engine.delete(updated.id)
    assert engine.read(scheduled) is None
    with pytest.raises(Exception, match="does not exist"):
        engine.scheduler.get_schedule(Name=scheduled.resource, GroupName="default")
    engine.delete(updated.id)  # deleting twice is not an error


def test_removing_the_schedule_deletes_it(engine: StepFunctionsEngine, scheduled: Artifact) -> None:
    live = engine.create(scheduled)
    document = {k: v for k, v in scheduled.document.items() if k != "schedule"}
    unscheduled = dataclasses.replace(scheduled, document=document)
    assert [c["path"] for c in engine.diff(unscheduled, live)] == ["/schedule"]
    assert engine.diff(unscheduled, engine.update(unscheduled, live)) == []
    engine.delete(live.id)


def test_list_managed_finds_cpl_machines_not_hand_made_ones(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    ours = engine.create(scheduled)
    foreign = f"{unique('hand')}-made"
    engine.sfn.create_state_machine(
        name=foreign,
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/someone",
    )
    managed = {live.id: live for live in engine.list_managed()}
    assert ours.id in managed
    assert managed[ours.id].workflow == scheduled.workflow
    assert engine.diff(scheduled, managed[ours.id]) == []
    assert engine.arn(foreign) not in managed
    engine.delete(ours.id)


def test_inventory_lists_marked_machines_lightly_and_leaves_out_known_ones(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    ours = engine.create(scheduled)
    foreign = f"{unique('hand')}-made"
    engine.sfn.create_state_machine(
        name=foreign,
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/someone",
    )
    listed = {live.resource: live for live in engine.inventory(set())}
    assert foreign not in listed
    assert listed[ours.resource].id == ours.id
    assert listed[ours.resource].workflow == scheduled.workflow
    # names and marks only: no definition read back
    assert listed[ours.resource].document == {"kind": "stepfunctions", "name": ours.resource}
    assert ours.resource not in {live.resource for live in engine.inventory({ours.resource})}
    engine.delete(ours.id)


def test_desired_document_is_what_the_diff_compares(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    live = engine.create(scheduled)
    assert engine.desired_document(scheduled, live) == live.document
    edited = changed(scheduled, {"/definition/Comment": "edited"})
    assert engine.desired_document(edited, live) != live.document
    assert engine.diff(edited, live)[0]["expected"] == "edited"
    engine.delete(live.id)


def _throttle(times: int, calls: list[str]) -> Any:
    """A botocore `before-send` hook answering the first `times` requests with HTTP 400
    ThrottlingException, as AWS does, and letting the rest through to moto."""

    class _Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Any:
            yield self.body

        def read(self, *_: Any, **__: Any) -> bytes:
            return self.body

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(request.url)
        if len(calls) > times:
            return None
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        headers = {"x-amzn-requestid": "throttled", "content-type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    return hook


def test_throttling_is_retried_with_backoff(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    """Two throttled answers (injected with a botocore `before-send` hook), then moto answers:
    the call succeeds on the third attempt. botocore's own retries are off."""
    calls: list[str] = []
    engine.sfn.meta.events.register("before-send.sfn.DescribeStateMachine", _throttle(2, calls))
    assert engine.read(scheduled) is None
    assert len(calls) == 3


def test_persistent_throttling_is_a_transient_resource_error(
    engine: StepFunctionsEngine, scheduled: Artifact
) -> None:
    calls: list[str] = []
    engine.sfn.meta.events.register("before-send.sfn.DescribeStateMachine", _throttle(99, calls))
    with pytest.raises(ResourceError) as raised:
        engine.read(scheduled)
    assert raised.value.transient and raised.value.resource == scheduled.resource
    assert "ThrottlingException" in raised.value.message
    assert len(calls) == FAST.attempts


def test_unreachable_endpoint_is_transient_and_names_the_resource(
    environment: Environment, scheduled: Artifact
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    target = environment.target("sfn-local").model_copy(update={"endpoint": closed})
    engine = StepFunctionsEngine(target, environment, policy=FAST)
    with pytest.raises(ResourceError) as raised:
        engine.read(scheduled)
    assert raised.value.transient
    assert scheduled.resource in raised.value.message and closed in raised.value.message


def test_permanent_errors_are_reported_per_resource_without_stopping_the_others(
    engine: StepFunctionsEngine, artifacts: dict[tuple[str, str], Artifact]
) -> None:
    base = artifacts[("retail/order-fulfillment", "stepfunctions")]
    good = renamed(base, unique())
    bad_definition = changed(renamed(base, unique()), {"/definition/StartAt": "Nowhere"})
    bad_role = changed(renamed(base, unique()), {"/configuration/roleArn": "not-an-arn"})

    outcome = each([bad_definition, good, bad_role], engine.create)

    assert [artifact.resource for artifact, _ in outcome.done] == [good.resource]
    errors = {artifact.resource: error for artifact, error in outcome.failed}
    assert set(errors) == {bad_definition.resource, bad_role.resource}
    assert "StartAt 'Nowhere' is not a state" in errors[bad_definition.resource].message
    assert "InvalidArn" in errors[bad_role.resource].message  # refused by the emulator
    assert not any(error.transient for error in errors.values())
    assert all(resource in error.message for resource, error in errors.items())
    assert engine.read(bad_definition) is None
    engine.delete(outcome.done[0][1].id)


def test_clients_have_botocore_retries_off(environment: Environment) -> None:
    client = aws_client(environment.target("sfn-local"), "logs")
    assert client.meta.config.retries["total_max_attempts"] == 1
