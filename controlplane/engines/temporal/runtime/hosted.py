"""Activities cpl hosts for the interpreter's controls, on the interpreter's own task queue.

- `cpl.breaker.acquire` / `cpl.breaker.record`: consult and update a circuit breaker
  (`breaker.py`). The breaker workflow is started if absent (on this task queue, so `cpl
  worker` hosts it) and sent a Temporal Update; the update id is this activity's id and run,
  so a retried activity never counts an outcome twice.
- `cpl.fault.hang`: an injected `timeout` fault; it outlives the start-to-close timeout the
  interpreter gives it, so the attempt really times out on the server.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from controlplane.engines.temporal.runtime.breaker import BreakerSettings, Decision, new_state
from controlplane.engines.temporal.runtime.payload import (
    BREAKER_ACQUIRE_ACTIVITY,
    BREAKER_RECORD_ACTIVITY,
    BREAKER_WORKFLOW,
    FAULT_TIMEOUT_ACTIVITY,
)


class BreakerRequest(TypedDict):
    """What the interpreter asks: the breaker's workflow id, its settings, and for `record`
    whether the call succeeded."""

    id: str
    failureThreshold: int
    resetTimeout: float
    success: bool | None


async def _update(request: BreakerRequest, update: str, argument: Any) -> Decision:
    info = activity.info()
    settings: BreakerSettings = {
        "failureThreshold": int(request["failureThreshold"]),
        "resetTimeout": float(request["resetTimeout"]),
    }
    client = activity.client()
    await client.start_workflow(
        BREAKER_WORKFLOW,
        new_state(settings),
        id=request["id"],
        task_queue=info.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    # no run id: the update reaches the breaker's current run, even after a continue-as-new
    decision: Decision = await client.get_workflow_handle(request["id"]).execute_update(
        update,
        settings if argument is None else argument,
        id=f"{info.workflow_run_id}/{info.activity_id}",
    )
    return decision


@activity.defn(name=BREAKER_ACQUIRE_ACTIVITY)
async def breaker_acquire(request: BreakerRequest) -> Decision:
    """Whether a call may go ahead (closed, or the half-open trial)."""
    return await _update(request, "acquire", None)


@activity.defn(name=BREAKER_RECORD_ACTIVITY)
async def breaker_record(request: BreakerRequest) -> Decision:
    """Count a call's outcome (after its retries)."""
    return await _update(request, "record", bool(request["success"]))


@activity.defn(name=FAULT_TIMEOUT_ACTIVITY)
async def fault_hang(seconds: float) -> None:
    """Sleep past the attempt's timeout (the server times the attempt out first)."""
    await asyncio.sleep(float(seconds) + 1.0)


HOSTED_ACTIVITIES = (breaker_acquire, breaker_record, fault_hang)
"""The activities `build_worker` registers next to the dead-letter recorder."""
