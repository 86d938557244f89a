"""Controls the interpreter carries out, on the session's real Temporal dev server:
idempotency keys as activity ids, retries with full jitter, circuit breakers shared by runs,
and injected faults (the run's events say which paths ran)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from controlplane.engines.runs import RunOutcome
from controlplane.engines.temporal.runner import run_outcome, start_run
from controlplane.engines.temporal.runtime.breaker import new_state
from controlplane.engines.temporal.runtime.payload import (
    BREAKER_WORKFLOW,
    FaultSpec,
    InterpreterPayload,
)

from .conftest import BINDINGS, INTERPRETER_QUEUE, Harness, workflow_doc

pytestmark = pytest.mark.integration

QUEUE = "control-activities"

# Calls of the control activities: workflow id → [{"activityId", "at"}]
CALLS: dict[str, list[dict[str, Any]]] = defaultdict(list)
RUNNING: dict[str, int] = defaultdict(int)
OVERLAP: dict[str, int] = defaultdict(int)
REMOTE = {"healthy": False, "calls": 0}


@activity.defn(name="ctl.keyed")
async def keyed(argument: dict[str, Any]) -> Any:
    """Fails with `Flaky` on the run's first `failures` calls (`Fatal` if `fatal`)."""
    info = activity.info()
    calls = CALLS[info.workflow_id]
    calls.append({"activityId": info.activity_id, "at": time.monotonic()})
    RUNNING[info.activity_id] += 1
    OVERLAP[info.activity_id] = max(OVERLAP[info.activity_id], RUNNING[info.activity_id])
    try:
        await asyncio.sleep(float(argument.get("seconds", 0)))
    finally:
        RUNNING[info.activity_id] -= 1
    if len(calls) <= int(argument.get("failures", 0)):
        error = "Fatal" if argument.get("fatal") else "Flaky"
        raise ApplicationError(f"call {len(calls)} failed", type=error)
    return {"calls": len(calls)}


@activity.defn(name="ctl.remote")
async def remote(argument: Any) -> Any:
    """A remote service behind a circuit breaker: fails while it is not healthy."""
    REMOTE["calls"] += 1
    if not REMOTE["healthy"]:
        raise ApplicationError("remote service down", type="RemoteDown")
    return {"served": True}


CONTROL_BINDINGS = {
    "ctl.keyed": {"activity": "ctl.keyed", "taskQueue": QUEUE},
    "ctl.remote": {"activity": "ctl.remote", "taskQueue": QUEUE},
}


@pytest.fixture(scope="module")
def controls(harness: Harness) -> Iterator[Harness]:
    """The control activities in a worker of their own on the harness's event loop."""
    stopped = asyncio.Event()

    async def start() -> asyncio.Task[None]:
        async def serve() -> None:
            async with Worker(harness.client, task_queue=QUEUE, activities=[keyed, remote]):
                await stopped.wait()

        return asyncio.ensure_future(serve())

    task = harness.run(start())
    yield harness
    harness.loop.call_soon_threadsafe(stopped.set)
    harness.run(asyncio.wait_for(task, 20))


def _payload(
    harness: Harness, steps: list[dict[str, Any]], run_input: Any, **spec: Any
) -> InterpreterPayload:
    payload = harness.payload(workflow_doc(steps, **spec), run_input)
    payload["activities"] = {**BINDINGS, **CONTROL_BINDINGS}  # type: ignore[dict-item]
    return payload


def _run(
    harness: Harness,
    payload: InterpreterPayload,
    run_input: Any,
    faults: list[FaultSpec] | None = None,
    timeout: float = 30.0,
) -> tuple[WorkflowHandle[Any, Any], RunOutcome]:
    async def go() -> tuple[WorkflowHandle[Any, Any], RunOutcome]:
        handle = await start_run(
            harness.client, payload, run_input, task_queue=INTERPRETER_QUEUE, faults=faults
        )
        return handle, await run_outcome(handle, timeout)

    return harness.run(go(), timeout + 10)


def _task(name: str, activity: str = "ctl.keyed", **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "task", "activity": activity, "end": True, **fields}


def _ids(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [call["activityId"] for call in CALLS[handle.id]]


# --- idempotency keys ----------------------------------------------------------------------


@pytest.mark.parametrize("jitter", ["none", "full"])
def test_idempotency_key_is_the_activity_id_on_every_retry_and_run(
    controls: Harness, jitter: str
) -> None:
    retry = {"maxAttempts": 3, "initialInterval": 0.1, "jitter": jitter}
    step = _task("charge", idempotencyKey="$.order.id", parameters={"failures": 1}, retry=retry)
    payload = _payload(controls, [step], {"order": {"id": "o-7"}}, start="charge")
    first, outcome = _run(controls, payload, {"order": {"id": "o-7"}})
    assert outcome["status"] == "succeeded", outcome
    assert _ids(first) == ["charge:o-7", "charge:o-7"]  # the failed attempt and its retry
    second, outcome = _run(controls, payload, {"order": {"id": "o-7"}})
    assert outcome["status"] == "succeeded", outcome
    assert _ids(second) == ["charge:o-7", "charge:o-7"]  # another run, the same key


def test_a_key_that_does_not_resolve_is_a_catchable_data_path_error(controls: Harness) -> None:
    steps = [
        _task(
            "charge",
            idempotencyKey="$.order.id",
            catch=[{"errors": ["DataPathError"], "next": "no-key", "resultPath": "$.error"}],
        ),
        {"name": "no-key", "type": "succeed"},
    ]
    payload = _payload(controls, steps, {"order": {}}, start="charge")
    handle, outcome = _run(controls, payload, {"order": {}})
    assert outcome["status"] == "succeeded", outcome
    assert outcome["output"]["error"]["Error"] == "DataPathError"
    assert "$.order.id" in outcome["output"]["error"]["Cause"]
    assert CALLS[handle.id] == []  # the activity was never called without its key
    assert {"step": "charge", "kind": "caught", "attempt": None, "error": "DataPathError"} in (
        outcome.get("events") or []
    )


def test_concurrent_iterations_with_the_same_key_take_turns(controls: Harness) -> None:
    steps = [
        {
            "name": "per-item",
            "type": "map",
            "items": "$.items",
            "start": "charge",
            "steps": [_task("charge", idempotencyKey="$.key", parameters={"seconds": 0.3})],
            "end": True,
        }
    ]
    items = [{"key": "k-1"}, {"key": "k-1"}, {"key": "k-2"}]
    payload = _payload(controls, steps, {"items": items}, start="per-item")
    handle, outcome = _run(controls, payload, {"items": items})
    assert outcome["status"] == "succeeded", outcome
    assert sorted(_ids(handle)) == ["charge:k-1", "charge:k-1", "charge:k-2"]
    assert OVERLAP["charge:k-1"] == 1  # never two calls with one id at once


# --- retries with full jitter --------------------------------------------------------------


def _timer_delays(controls: Harness, handle: WorkflowHandle[Any, Any]) -> list[float]:
    async def read() -> list[float]:
        delays = []
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                timeout = event.timer_started_event_attributes.start_to_fire_timeout
                delays.append(timeout.ToTimedelta().total_seconds())
        return delays

    return controls.run(read())


def test_full_jitter_delays_are_random_within_the_backoff(controls: Harness) -> None:
    retry = {
        "maxAttempts": 4,
        "initialInterval": 0.4,
        "backoffRate": 2,
        "maxInterval": 1,
        "jitter": "full",
    }
    step = _task("flaky", parameters={"failures": 9}, retry=retry)
    payload = _payload(controls, [step], {}, start="flaky")
    delays: list[list[float]] = []
    for _ in range(2):
        handle, outcome = _run(controls, payload, {})
        assert outcome["status"] == "failed"
        assert outcome["error"] == {"error": "Flaky", "cause": "call 4 failed"}
        calls = CALLS[handle.id]
        assert len(calls) == 4  # maxAttempts, each its own activity execution
        drawn = _timer_delays(controls, handle)
        ceilings = [0.4, 0.8, 1.0]  # min(maxInterval, 0.4 * 2^(n-1))
        assert len(drawn) == 3
        assert all(0 <= d <= c for d, c in zip(drawn, ceilings, strict=True)), drawn
        gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(calls)]
        # the dev server fires timers with about a second of granularity
        assert all(d <= gap < d + 2.0 for d, gap in zip(drawn, gaps, strict=True)), (drawn, gaps)
        kinds = [(e["kind"], e["attempt"]) for e in outcome.get("events") or []]
        assert kinds == [
            ("attempt-failed", 1),
            ("retry", 2),
            ("attempt-failed", 2),
            ("retry", 3),
            ("attempt-failed", 3),
            ("retry", 4),
            ("attempt-failed", 4),
        ]
        delays.append(drawn)
    assert delays[0] != delays[1]  # drawn anew for every run


def test_jitter_honours_non_retryable_errors(controls: Harness) -> None:
    retry = {"maxAttempts": 4, "initialInterval": 0.1, "jitter": "full", "nonRetryable": ["Fatal"]}
    step = _task("fatal", parameters={"failures": 9, "fatal": True}, retry=retry)
    handle, outcome = _run(controls, _payload(controls, [step], {}, start="fatal"), {})
    assert outcome["error"] is not None and outcome["error"]["error"] == "Fatal"
    assert len(CALLS[handle.id]) == 1


# --- circuit breakers ----------------------------------------------------------------------


def test_circuit_breaker_is_shared_by_runs_fails_fast_and_recovers(controls: Harness) -> None:
    steps = [
        _task(
            "call-remote",
            activity="ctl.remote",
            circuitBreaker={"failureThreshold": 2, "resetTimeout": 2},
            catch=[{"errors": ["CircuitOpen"], "next": "fallback", "resultPath": "$.error"}],
        ),
        {"name": "fallback", "type": "succeed"},
    ]
    payload = _payload(controls, steps, {}, start="call-remote")
    payload["target"] = f"breaker-test-{uuid.uuid4().hex[:8]}"  # a breaker of its own
    REMOTE.update(healthy=False, calls=0)

    for expected_calls in (1, 2):  # two failed calls in a row (each its own run) open it
        _, outcome = _run(controls, payload, {})
        assert outcome["status"] == "failed" and outcome["error"]["error"] == "RemoteDown"
        assert REMOTE["calls"] == expected_calls
    opened = time.monotonic()

    _, outcome = _run(controls, payload, {})  # open: fails at once, the activity not called
    assert outcome["status"] == "succeeded", outcome
    assert outcome["output"]["error"]["Error"] == "CircuitOpen"
    assert REMOTE["calls"] == 2
    assert outcome.get("events") == [
        {"step": "call-remote", "kind": "circuit-open", "attempt": None, "error": "CircuitOpen"},
        {"step": "call-remote", "kind": "caught", "attempt": None, "error": "CircuitOpen"},
    ]

    REMOTE["healthy"] = True  # the service is back; the breaker lets one trial through later
    deadline = time.monotonic() + 15
    while True:
        _, outcome = _run(controls, payload, {})
        assert outcome["status"] == "succeeded", outcome
        if "error" not in outcome["output"]:
            break
        assert time.monotonic() < deadline, "the breaker never let a trial call through"
        time.sleep(0.2)
    assert time.monotonic() - opened >= 2  # not before resetTimeout
    assert REMOTE["calls"] == 3  # the trial
    _, outcome = _run(controls, payload, {})  # closed again
    assert outcome["output"] == {"served": True} and REMOTE["calls"] == 4


# --- fault injection -----------------------------------------------------------------------


def _fault(step: str, **effect: Any) -> FaultSpec:
    fault: FaultSpec = {
        "step": step,
        "attempts": None,
        "error": None,
        "cause": "injected fault",
        "timeout": False,
        "delay": None,
    }
    fault.update(effect)  # type: ignore[typeddict-item]
    return fault


def test_injected_timeout_is_a_real_timeout_that_is_retried(controls: Harness) -> None:
    step = _task("slow-call", timeout=0.5, retry={"maxAttempts": 2, "initialInterval": 0.1})
    payload = _payload(controls, [step], {}, start="slow-call")
    faults = [_fault("slow-call", attempts=[1], timeout=True)]
    handle, outcome = _run(controls, payload, {}, faults)
    assert outcome["status"] == "succeeded", outcome
    assert len(CALLS[handle.id]) == 1  # only the second attempt reached the activity
    assert outcome.get("events") == [
        {"step": "slow-call", "kind": "fault", "attempt": 1, "error": "Timeout"},
        {"step": "slow-call", "kind": "attempt-failed", "attempt": 1, "error": "Timeout"},
        {"step": "slow-call", "kind": "retry", "attempt": 2, "error": "Timeout"},
    ]


def test_injected_error_runs_catch_and_compensation_for_real(controls: Harness) -> None:
    keyed_task = {"type": "task", "activity": "ctl.keyed"}
    steps = [
        {"name": "reserve", **keyed_task, "compensation": "release", "next": "charge"},
        {
            "name": "charge",
            **keyed_task,
            "catch": [{"errors": ["Declined"], "next": "declined"}],
            "next": "ship",
        },
        {"name": "declined", "type": "fail", "error": "PaymentDeclined"},
        {"name": "ship", "type": "succeed"},
        {"name": "release", **keyed_task},
    ]
    payload = _payload(controls, steps, {}, start="reserve", onError={"compensate": True})
    faults = [_fault("charge", error="Declined", cause="card declined")]
    handle, outcome = _run(controls, payload, {}, faults)
    assert outcome["status"] == "failed" and outcome["error"]["error"] == "PaymentDeclined"
    assert outcome["trace"] == ["reserve", "charge", "declined", "release"]
    assert outcome.get("events") == [
        {"step": "charge", "kind": "fault", "attempt": 1, "error": "Declined"},
        {"step": "charge", "kind": "attempt-failed", "attempt": 1, "error": "Declined"},
        {"step": "charge", "kind": "caught", "attempt": None, "error": "Declined"},
        {"step": "release", "kind": "compensated", "attempt": None, "error": None},
    ]
    assert len(CALLS[handle.id]) == 2  # reserve and release; charge never reached


def test_injected_delay_starts_the_attempt_late(controls: Harness) -> None:
    payload = _payload(controls, [_task("late")], {}, start="late")
    started = time.monotonic()
    handle, outcome = _run(controls, payload, {}, [_fault("late", delay=1.0)])
    assert outcome["status"] == "succeeded", outcome
    assert CALLS[handle.id][0]["at"] - started >= 1.0
    assert outcome.get("events") == [{"step": "late", "kind": "fault", "attempt": 1, "error": None}]


def test_injected_errors_open_the_circuit_breaker(controls: Harness) -> None:
    steps = [
        _task(
            "call-remote",
            activity="ctl.remote",
            circuitBreaker={"failureThreshold": 1, "resetTimeout": 60},
        )
    ]
    payload = _payload(controls, steps, {}, start="call-remote")
    payload["target"] = f"fault-breaker-{uuid.uuid4().hex[:8]}"
    REMOTE.update(healthy=True, calls=0)
    _, outcome = _run(controls, payload, {}, [_fault("call-remote", error="RemoteDown")])
    assert outcome["error"] is not None and outcome["error"]["error"] == "RemoteDown"
    _, outcome = _run(controls, payload, {})  # no fault now, but the circuit is open
    assert outcome["error"] is not None and outcome["error"]["error"] == "CircuitOpen"
    assert REMOTE["calls"] == 0  # the healthy service was never called
    assert outcome.get("events") == [
        {"step": "call-remote", "kind": "circuit-open", "attempt": None, "error": "CircuitOpen"}
    ]


def test_breaker_keeps_its_state_across_continue_as_new(controls: Harness) -> None:
    """A breaker that continues as new after every 2 updates counts failures across runs."""
    state = {**new_state({"failureThreshold": 3, "resetTimeout": 60}), "updatesPerRun": 2}
    settings = {"failureThreshold": 3, "resetTimeout": 60}
    breaker_id = f"cpl-breaker:can-test-{uuid.uuid4().hex[:8]}:ctl.remote"

    async def go() -> tuple[list[str], dict[str, Any], set[str]]:
        client = controls.client
        await client.start_workflow(
            BREAKER_WORKFLOW, state, id=breaker_id, task_queue=INTERPRETER_QUEUE
        )
        handle = client.get_workflow_handle(breaker_id)
        states = []
        runs = set()
        for update, argument in [("acquire", settings), ("record", False)] * 3:
            decision = await handle.execute_update(update, argument)
            states.append(decision["state"])
            runs.add((await handle.describe()).run_id or "")
        final = await handle.query("state")
        await handle.terminate("test done")
        return states, final, runs

    states, final, runs = controls.run(go())
    assert states == ["closed", "closed", "closed", "closed", "closed", "open"]
    assert final["state"] == "open" and final["failures"] == 3
    assert len(runs) >= 2  # it did continue as new, and kept counting
