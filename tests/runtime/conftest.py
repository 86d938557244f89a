"""One real Temporal dev server, the interpreter worker and a worker of test activities.

Everything async runs on one event loop in a background thread for the whole session; tests
are plain functions that hand coroutines to it through `Harness.run`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runner import start_run
from controlplane.engines.temporal.runtime.payload import InterpreterPayload
from controlplane.engines.temporal.runtime.worker import build_worker
from controlplane.spec.load import load_environment

T = TypeVar("T")

INTERPRETER_QUEUE = "cpl-interpreter-test"
ACTIVITY_QUEUE = "test-activities"

# Calls seen by the test activities, per workflow id: (activity, argument, attempt).
CALLS: dict[str, list[tuple[str, Any, int]]] = defaultdict(list)
_RUNNING: dict[str, int] = defaultdict(int)
MAX_RUNNING: dict[str, int] = defaultdict(int)


def _record(name: str, argument: Any) -> str:
    info = activity.info()
    CALLS[info.workflow_id].append((name, argument, info.attempt))
    return info.workflow_id


@activity.defn(name="test.echo")
async def echo(argument: Any) -> Any:
    _record("echo", argument)
    return argument


@activity.defn(name="test.undo")
async def undo(argument: Any) -> Any:
    _record("undo", argument)
    return {"undone": argument}


@activity.defn(name="test.flaky")
async def flaky(argument: dict[str, Any]) -> Any:
    """Fails with `Flaky` on the first `failures` attempts, then succeeds."""
    _record("flaky", argument)
    attempt = activity.info().attempt
    if attempt <= int(argument["failures"]):
        raise ApplicationError(f"attempt {attempt} failed", type="Flaky")
    return {"attempts": attempt}


@activity.defn(name="test.fail")
async def fail(argument: dict[str, Any]) -> Any:
    """Always fails with the error type named in the argument."""
    _record("fail", argument)
    raise ApplicationError(argument.get("message", "boom"), type=argument["error"])


@activity.defn(name="test.slow")
async def slow(argument: dict[str, Any]) -> Any:
    """Sleeps `seconds`, tracking how many of a run's calls overlap."""
    workflow_id = _record("slow", argument)
    _RUNNING[workflow_id] += 1
    MAX_RUNNING[workflow_id] = max(MAX_RUNNING[workflow_id], _RUNNING[workflow_id])
    try:
        await asyncio.sleep(float(argument.get("seconds", 0.3)))
    finally:
        _RUNNING[workflow_id] -= 1
    return {"slept": argument.get("seconds", 0.3), "item": argument.get("item")}


@activity.defn(name="test.sum")
async def total(argument: Any) -> Any:
    _record("sum", argument)
    return sum(argument)


BINDINGS = {
    "test.echo": {"activity": "test.echo", "taskQueue": ACTIVITY_QUEUE},
    "test.undo": {"activity": "test.undo", "taskQueue": ACTIVITY_QUEUE},
    "test.flaky": {"activity": "test.flaky", "taskQueue": ACTIVITY_QUEUE},
    "test.fail": {"activity": "test.fail", "taskQueue": ACTIVITY_QUEUE},
    "test.slow": {"activity": "test.slow", "taskQueue": ACTIVITY_QUEUE},
    # no taskQueue: scheduled on the interpreter's own queue, where the test worker hosts it
    "test.sum": {"activity": "test.sum"},
}


def workflow_doc(steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A normalized workflow document around `steps`."""
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Workflow",
        "metadata": {
            "name": "runtime-test",
            "tenant": "retail",
            "version": "2.1.0",
            "owner": "team-cpl",
            "classification": "internal",
            "compliance": [],
            "labels": {},
        },
        "spec": {**spec, "steps": steps},
    }


class Harness:
    """Starts interpreter runs on the session's dev server and waits for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Client, dead_letters: Path):
        self.loop = loop
        self.client = client
        self.dead_letters = dead_letters

    workflow = staticmethod(workflow_doc)

    def dead_letter_events(self) -> list[dict[str, Any]]:
        """The dead-letter CloudEvents the worker spooled (it runs without a queue)."""
        lines = self.dead_letters.read_text().splitlines()
        return [json.loads(json.loads(line)["message"]) for line in lines]

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def payload(
        self, document: dict[str, Any], run_input: Any, dead_letter: str | None = None
    ) -> InterpreterPayload:
        return {
            "workflow": document,
            "version": document["metadata"]["version"],
            "digest": "sha256:test",
            "activities": BINDINGS,  # type: ignore[typeddict-item]
            "deadLetter": {"queue": dead_letter} if dead_letter else None,
            "input": run_input,
        }

    def start(
        self, document: dict[str, Any], run_input: Any = None, dead_letter: str | None = None
    ) -> WorkflowHandle[Any, Any]:
        payload = self.payload(document, run_input, dead_letter)
        return self.run(start_run(self.client, payload, run_input, task_queue=INTERPRETER_QUEUE))

    def result(self, handle: WorkflowHandle[Any, Any], timeout: float = 30.0) -> Any:
        return self.run(handle.result(), timeout)

    def execute(
        self, document: dict[str, Any], run_input: Any = None, dead_letter: str | None = None
    ) -> tuple[str, Any]:
        """Run to completion: (workflow id, result)."""
        handle = self.start(document, run_input, dead_letter)
        return handle.id, self.result(handle)

    def failure(
        self, document: dict[str, Any], run_input: Any = None, dead_letter: str | None = None
    ) -> tuple[str, ApplicationError]:
        """Run to failure: (workflow id, the ApplicationError the run failed with)."""
        handle = self.start(document, run_input, dead_letter)
        with pytest.raises(WorkflowFailureError) as caught:
            self.result(handle)
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError), cause
        return handle.id, cause

    def status(self, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.run(handle.query("status"))
        return result

    def signal(self, handle: WorkflowHandle[Any, Any], name: str, *args: Any) -> None:
        self.run(handle.signal(name, *args))

    def wait_status(
        self,
        handle: WorkflowHandle[Any, Any],
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Poll the `status` query until `predicate` holds."""

        async def poll() -> dict[str, Any]:
            while True:
                status: dict[str, Any] = await handle.query("status")
                if predicate(status):
                    return status
                await asyncio.sleep(0.05)

        return self.run(asyncio.wait_for(poll(), timeout), timeout + 5)


@pytest.fixture(scope="session")
def harness(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: DevServer
) -> Iterator[Harness]:
    """A dev server, the interpreter worker (with dead letters to a file) and test activities."""
    directory = tmp_path_factory.mktemp("temporal")
    dead_letters = directory / "dead-letters.jsonl"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="temporal-tests", daemon=True)
    thread.start()

    def on_loop(coroutine: Coroutine[Any, Any, T], timeout: float = 90.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    server = temporal_server
    stopped = asyncio.Event()

    async def serve() -> tuple[Client, list[asyncio.Task[None]]]:
        client = await server.connect()
        interpreter = build_worker(client, INTERPRETER_QUEUE, dead_letters, activities=[total])
        activities = Worker(
            client,
            task_queue=ACTIVITY_QUEUE,
            activities=[echo, undo, flaky, fail, slow],
        )

        async def run_until_stopped(worker: Worker) -> None:
            async with worker:
                await stopped.wait()

        tasks = [loop.create_task(run_until_stopped(w)) for w in (interpreter, activities)]
        return client, tasks

    client, tasks = on_loop(serve())
    try:
        yield Harness(loop, client, dead_letters)
    finally:
        loop.call_soon_threadsafe(stopped.set)
        on_loop(asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


# --- scripted activities for the example workflows ----------------------------------------


@dataclass(frozen=True)
class Raise:
    """A scripted activity failure: an ApplicationError of type `error` (not retried)."""

    error: str
    message: str = "scripted failure"


@dataclass
class Responses:
    """Scripted responses returned in turn, one per call (the last one repeats)."""

    values: list[Any]


# Scripted responses of the example activities: workflow id (or a prefix of it) →
# {activity type: response | Raise | Responses | callable(argument)}; and the activity types
# each workflow id called, in order.
SCRIPTS: dict[str, dict[str, Any]] = {}
CALLED: dict[str, list[str]] = defaultdict(list)


def scripted(activity_type: str) -> Callable[..., Any]:
    """A test activity registered as `activity_type`."""

    @activity.defn(name=activity_type)
    async def respond(argument: Any) -> Any:
        workflow_id = activity.info().workflow_id
        CALLED[workflow_id].append(activity_type)
        script = next((s for key, s in SCRIPTS.items() if workflow_id.startswith(key)), {})
        response = script.get(activity_type, argument)
        if callable(response):
            response = response(argument)
        if isinstance(response, Responses):
            response = response.values.pop(0) if len(response.values) > 1 else response.values[0]
        if isinstance(response, Raise):
            raise ApplicationError(response.message, type=response.error, non_retryable=True)
        return response

    return respond


@pytest.fixture(scope="session")
def activity_workers(harness: Harness) -> Iterator[dict[str, str]]:
    """A scripted activity for every temporal binding of environments/local.yaml, on its
    bound task queue (one worker per queue); yields {logical activity: activity type}."""
    local = load_environment(Path(__file__).resolve().parents[2], "local")
    queues: dict[str, list[Callable[..., Any]]] = defaultdict(list)
    types: dict[str, str] = {}
    for logical, binding in local.spec.bindings.activities.items():
        assert binding.temporal is not None, logical
        types[logical] = binding.temporal["activity"]
        queues[binding.temporal["taskQueue"]].append(scripted(binding.temporal["activity"]))
    stopped = asyncio.Event()

    async def start() -> list[asyncio.Task[None]]:
        async def serve(queue: str, activities: list[Callable[..., Any]]) -> None:
            async with Worker(harness.client, task_queue=queue, activities=activities):
                await stopped.wait()

        return [asyncio.ensure_future(serve(q, a)) for q, a in sorted(queues.items())]

    tasks = harness.run(start())
    try:
        yield types
    finally:
        harness.loop.call_soon_threadsafe(stopped.set)
        harness.run(asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20))
