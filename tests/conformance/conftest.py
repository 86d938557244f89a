"""The two engines the conformance scenarios run on, behind one interface.

`temporal_engine`: the session's real Temporal dev server, with one worker on
`ACTIVITY_QUEUE` hosting cpl's interpreter and the scenario activities (`conf.echo` returns
its argument, as a Lambda function does on moto; `conf.fail` raises `TaskFailed`).
`sfn_engine`: the session's real moto server with ASL execution on; a scenario's rendered
state machine is created there and executed. Both answer with a `RunOutcome`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import pytest
import temporalio.converter
from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from controlplane.deadletters.outbox import Outbox
from controlplane.deadletters.spool import Spool
from controlplane.engines.stepfunctions.breaker import breaker_tables, ensure_circuit_table
from controlplane.engines.stepfunctions.runner import execution_outcome, start_execution
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runner import RunOutcome, run_outcome, start_run
from controlplane.engines.temporal.runtime.activities import DeadLetterHandOff
from controlplane.engines.temporal.runtime.payload import SpecPayload
from controlplane.engines.temporal.runtime.worker import build_worker
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import Target
from controlplane.spec.model import Workflow

from .scenarios import ACTIVITY_QUEUE, DEAD_LETTER_QUEUE, HANG_QUEUE, TARGETS, environment

T = TypeVar("T")


@dataclass(frozen=True)
class Observed:
    """How a scenario's run ended, and how many attempts each task step made."""

    outcome: RunOutcome
    attempts: Counter[str]


UNAVAILABLE_ERROR = "SQS.SdkClientException"
"""What moto's sqs:sendMessage to a missing queue fails with (conf.unavailable's error)."""

RUN_TIMEOUT = 30.0
"""Seconds a scenario run may take on either engine."""


@activity.defn(name="conf.echo")
async def echo(argument: Any) -> Any:
    """Returns its input, like a Lambda function on moto."""
    return argument


ATTEMPT_TIMES: dict[str, list[float]] = defaultdict(list)
"""When each attempt of conf.unavailable started (epoch seconds), per workflow id."""


@activity.defn(name="conf.unavailable")
async def unavailable(argument: Any) -> Any:
    """Always fails, retryably, with the error moto's sendMessage to a missing queue raises,
    so that retry scenarios (and `retry.nonRetryable`) name one error on both engines."""
    ATTEMPT_TIMES[activity.info().workflow_id].append(time.time())
    raise ApplicationError("The specified queue does not exist.", type=UNAVAILABLE_ERROR)


@activity.defn(name="conf.hang")
async def hang(argument: Any) -> Any:
    """Never answers (until cancelled), like a task waiting for a token nobody sends."""
    await asyncio.Event().wait()


@activity.defn(name="conf.fail")
async def fail(argument: Any) -> Any:
    """Always fails, like an sqs:sendMessage to a missing queue on moto (retried as often
    as the step's `retry` says, as there)."""
    raise ApplicationError("injected task failure", type="TaskFailed")


class TemporalEngine:
    """Runs spec payloads on the interpreter; its event loop lives in a background thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Client) -> None:
        self.loop = loop
        self.client = client

    def on_loop(self, coroutine: Coroutine[Any, Any, T], timeout: float = RUN_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout + 5)

    def run(self, spec: SpecPayload, run_input: Any, workflow_id: str) -> Observed:
        async def run() -> Observed:
            handle = await start_run(
                self.client, spec, run_input, task_queue=ACTIVITY_QUEUE, workflow_id=workflow_id
            )
            outcome = await run_outcome(handle, RUN_TIMEOUT)
            return Observed(outcome, await self._attempts(handle))

        return self.on_loop(run())

    @staticmethod
    async def _attempts(handle: WorkflowHandle[Any, Any]) -> Counter[str]:
        """Attempts per step, from the run's history: each activity the interpreter schedules
        carries its step name as summary; its last Started event counts the attempts."""
        history = await handle.fetch_history()
        converter = temporalio.converter.default().payload_converter
        step_of: dict[int, str] = {}
        attempts: Counter[str] = Counter()
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                if event.user_metadata.HasField("summary"):
                    summary = converter.from_payload(event.user_metadata.summary, str)
                    step_of[event.event_id] = summary
            elif event.HasField("activity_task_started_event_attributes"):
                started = event.activity_task_started_event_attributes
                step = step_of.get(started.scheduled_event_id)
                if step is not None:
                    attempts[step] += started.attempt
        return attempts


class StepFunctionsEngine:
    """Creates rendered state machines on moto and executes them."""

    def __init__(self, endpoint: str) -> None:
        self.client = _aws("stepfunctions", endpoint)
        self.dynamodb = _aws("dynamodb", endpoint)

    def deploy(self, artifact: Artifact, role_arn: str) -> None:
        """Create (or replace) the state machine, with the circuit tables it writes to, as
        `cpl apply` does."""
        for table in breaker_tables(artifact.document["definition"]):
            ensure_circuit_table(self.dynamodb, table)
        definition = json.dumps(artifact.document["definition"])
        try:
            self.client.create_state_machine(
                name=artifact.resource, definition=definition, roleArn=role_arn, type="STANDARD"
            )
        except ClientError as error:  # a re-run in the same session: replace the definition
            if error.response["Error"]["Code"] != "StateMachineAlreadyExists":
                raise
            arn = error.response["Error"]["Message"].rsplit(" ", 1)[-1]
            self.client.update_state_machine(stateMachineArn=arn, definition=definition)

    def run(self, target: Target, workflow: Workflow, run_input: Any) -> Observed:
        execution = start_execution(self.client, target, workflow, run_input)
        outcome = execution_outcome(self.client, execution, RUN_TIMEOUT, poll=0.05)
        return Observed(outcome, self._attempts(execution))

    def _attempts(self, execution: str) -> Counter[str]:
        """Attempts per state: the TaskScheduled events while the task state is entered
        (scenarios counting attempts run their tasks one at a time)."""
        attempts: Counter[str] = Counter()
        current: str | None = None
        paginator = self.client.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution):
            for event in page["events"]:
                kind = str(event["type"])
                if kind == "TaskStateEntered":
                    current = str(event["stateEnteredEventDetails"]["name"])
                elif kind == "TaskScheduled" and current is not None:
                    attempts[current] += 1
                elif kind.endswith("StateExited"):
                    current = None
        return attempts


def _aws(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def take_dead_letters(moto_endpoint: str, workflow: str, target: str) -> list[dict[str, Any]]:
    """The dead-letter CloudEvents of `workflow` on `target` in DEAD_LETTER_QUEUE (removed)."""
    sqs = _aws("sqs", moto_endpoint)
    url = sqs.get_queue_url(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
    taken = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            event = json.loads(message["Body"])
            data = event.get("data") or {}
            if (data.get("workflow"), data.get("target")) == (workflow, target):
                taken.append(event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return taken


@pytest.fixture(scope="session")
def sfn_engine(moto_endpoint: str) -> StepFunctionsEngine:
    """boto3 on the session's moto server (Lambda functions echo their event), with the
    queue conf.hang sends to and the dead-letter queue."""
    engine = StepFunctionsEngine(moto_endpoint)
    sqs = _aws("sqs", moto_endpoint)
    sqs.create_queue(QueueName=HANG_QUEUE.rsplit("/", 1)[-1])
    sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)
    return engine


@pytest.fixture(scope="session")
def temporal_engine(
    temporal_server: DevServer,
    sfn_engine: StepFunctionsEngine,
    moto_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TemporalEngine]:
    """The interpreter and the conf.* activities on ACTIVITY_QUEUE of the dev server; dead
    letters go to SQS on the moto server, as `cpl worker` sends them."""
    conformance = environment(moto_endpoint)
    spool = Spool(tmp_path_factory.mktemp("conformance-dlq") / "spool.jsonl")
    dead_letters = DeadLetterHandOff(
        Outbox(conformance, spool), conformance.target(TARGETS["temporal"])
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="conformance", daemon=True)
    thread.start()
    stopped = asyncio.Event()

    async def serve() -> tuple[Client, asyncio.Task[None]]:
        client = await temporal_server.connect()
        worker = build_worker(
            client, ACTIVITY_QUEUE, dead_letters, activities=[echo, fail, unavailable, hang]
        )

        async def run_until_stopped() -> None:
            async with worker:
                await stopped.wait()

        return client, loop.create_task(run_until_stopped())

    client, task = asyncio.run_coroutine_threadsafe(serve(), loop).result(60)
    try:
        yield TemporalEngine(loop, client)
    finally:
        loop.call_soon_threadsafe(stopped.set)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(task, 20), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
