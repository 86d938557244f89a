"""The finished interpreter runs of a workflow on a Temporal target, with their step timings
(`TemporalRunner.runs`, behind `cpl runs profile` and the SLO section of `cpl report`).

Runs are found in the namespace's visibility store by what every run `cpl run` starts has:
the interpreter's workflow type and a workflow id `<tenant>-<name>-<12 hex digits>` (the
listing asks for the id prefix; the exact form is checked here, so `orders` does not take
the runs of `orders-v2`). The step timings are the interpreter's own records, read from the
run's close event (its result, or the details of the error it failed with): that needs no
worker, and a run the engine ended itself (timed out, terminated) has none.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from controlplane.engines.runs import (
    MAX_LISTED_RUNS,
    RunRecord,
    RunState,
    StepTiming,
    iso_utc,
)
from controlplane.engines.temporal.runtime.payload import INTERPRETER_WORKFLOW
from controlplane.errors import EngineError
from controlplane.spec.model import Workflow

MAX_STEP_RECORDS = 1000
"""Step records read from one run (the interpreter keeps no more; an engine answer is bounded)."""

RESULT_TIMEOUT = 10.0
"""Seconds to read one closed run's close event."""

_STATES: dict[WorkflowExecutionStatus, RunState] = {
    WorkflowExecutionStatus.COMPLETED: "succeeded",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
_STEP_STATES = frozenset({"succeeded", "failed", "cancelled", "running"})


def checked_steps(value: Any) -> list[StepTiming]:
    """The interpreter's step records, checked field by field (they come from the engine)."""
    steps: list[StepTiming] = []
    for item in value if isinstance(value, list) else []:
        if len(steps) >= MAX_STEP_RECORDS:
            break
        if not isinstance(item, dict):
            continue
        name, started, ended, status = (item.get(k) for k in ("name", "started", "ended", "status"))
        if not (isinstance(name, str) and isinstance(started, str) and status in _STEP_STATES):
            continue
        steps.append(
            {
                "name": name,
                "started": started,
                "ended": ended if isinstance(ended, str) else None,
                "status": status,
            }
        )
    return steps


def runs_query(workflow: Workflow, since: dt.datetime | None) -> str:
    """The visibility query of a workflow's closed runs (module doc)."""
    prefix = _prefix(workflow)
    query = (
        f'WorkflowType = "{INTERPRETER_WORKFLOW}" AND WorkflowId STARTS_WITH "{prefix}" '
        'AND ExecutionStatus != "Running"'
    )
    if since is not None:
        query += f' AND StartTime >= "{iso_utc(since)}"'
    return query


async def finished_runs(
    client: Client,
    workflow: Workflow,
    *,
    limit: int,
    since: dt.datetime | None = None,
    timings: int = 0,
) -> list[RunRecord]:
    """The workflow's closed runs, newest first (Runner.runs)."""
    limit = max(0, min(limit, MAX_LISTED_RUNS))
    own = re.compile(re.escape(_prefix(workflow)) + r"[0-9a-f]{12}")
    found: list[WorkflowExecution] = []
    scanned = 0
    try:
        async for execution in client.list_workflows(
            runs_query(workflow, since), page_size=min(max(limit, 10), 1000)
        ):
            scanned += 1
            if own.fullmatch(execution.id) and execution.status in _STATES:
                found.append(execution)
            if len(found) >= limit or scanned >= 10 * MAX_LISTED_RUNS:
                break
    except RPCError as error:
        raise EngineError(f"cannot list the runs of {workflow.key}: {error.message}") from None
    found.sort(key=lambda e: e.start_time, reverse=True)
    records: list[RunRecord] = []
    for index, execution in enumerate(found):
        steps = await _steps(client, execution) if index < timings else None
        records.append(
            {
                "runId": execution.id,
                "status": _STATES[execution.status],  # type: ignore[index]
                "started": iso_utc(execution.start_time),
                "ended": iso_utc(execution.close_time) if execution.close_time else None,
                "steps": steps,
            }
        )
    return records


async def _steps(client: Client, execution: WorkflowExecution) -> list[StepTiming] | None:
    """The step records in the run's close event; None when it holds none."""
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        result = await asyncio.wait_for(handle.result(follow_runs=False), RESULT_TIMEOUT)
    except WorkflowFailureError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.details:
            details = cause.details[0]
            if isinstance(details, dict) and "steps" in details:
                return checked_steps(details["steps"])
        return None
    except (RPCError, TimeoutError):
        return None
    except Exception:  # a result this client cannot decode (codec, offloaded payload)
        return None
    if isinstance(result, dict) and "steps" in result:
        return checked_steps(result["steps"])
    return None


def _prefix(workflow: Workflow) -> str:
    return f"{workflow.metadata.tenant}-{workflow.metadata.name}-"
