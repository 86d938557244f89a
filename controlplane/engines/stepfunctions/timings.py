"""Step timings and finished executions on Step Functions, from the engine's own records
(the `steps` of `cpl run`, `StepFunctionsRunner.runs`).

An execution history links every event to the one before it in its own thread
(`previousEventId`): a state's `*StateExited` leads back to its `*StateEntered` even while
parallel branches or map iterations interleave their events. So each exit is paired with
the entry of the same name it leads back to, and the event the exit follows says how the
state ended (a `*Failed`, `*TimedOut` or `*Aborted` event: failed, e.g. a failure a `Catch`
handled). A state never exited (a `Fail` state, a failure nothing caught) ends with the
first failure that follows it, or with the execution. Every state is reported; the caller
keeps the spec's steps (`runs.spec_steps`), as for the trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.engines.runs import (
    MAX_LISTED_RUNS,
    RunRecord,
    RunState,
    StepStatus,
    StepTiming,
    iso_utc,
)
from controlplane.errors import EngineError

MAX_HISTORY_PAGES = 25
"""History pages (1000 events each) read per execution: an engine answer is bounded."""

_FAILURES = ("Failed", "TimedOut", "Aborted")
_EXECUTION_END: dict[str, StepStatus] = {
    "ExecutionFailed": "failed",
    "ExecutionTimedOut": "failed",
    "ExecutionAborted": "cancelled",
    "ExecutionSucceeded": "succeeded",
}
_STATUS: dict[str, RunState] = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "cancelled",
    "PENDING_REDRIVE": "failed",
}


def history_events(client: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's history events, oldest first (at most MAX_HISTORY_PAGES pages)."""
    events: list[dict[str, Any]] = []
    paginator = client.get_paginator("get_execution_history")
    pages = paginator.paginate(
        executionArn=execution_arn,
        reverseOrder=False,
        PaginationConfig={"MaxItems": MAX_HISTORY_PAGES * 1000, "PageSize": 1000},
    )
    for page in pages:
        events.extend(page.get("events", []))
    return events


def state_timings(events: Sequence[Mapping[str, Any]]) -> list[StepTiming]:
    """One record per state entry, in the order the states were entered (module doc)."""
    by_id = {int(event["id"]): event for event in events if "id" in event}
    entered = [event for event in events if str(event.get("type", "")).endswith("StateEntered")]
    exits: dict[int, Mapping[str, Any]] = {}  # entry id → its exit
    for event in events:
        if str(event.get("type", "")).endswith("StateExited"):
            entry_id = _entry_of(event, by_id, exits)
            if entry_id is not None:
                exits[entry_id] = event
    end = next((e for e in reversed(events) if str(e.get("type")) in _EXECUTION_END), None)
    timings: list[StepTiming] = []
    for entry in entered:
        name = str(entry["stateEnteredEventDetails"]["name"])
        exit_event = exits.get(int(entry["id"]))
        if exit_event is not None:
            before = by_id.get(int(exit_event.get("previousEventId") or 0), {})
            failed = str(before.get("type", "")).endswith(_FAILURES)
            status: StepStatus = "failed" if failed else "succeeded"
            ended: str | None = iso_utc(exit_event["timestamp"])
        else:
            ended_by = _first_failure_after(entry, events) or end
            if ended_by is None:
                status, ended = "running", None
            else:
                kind = str(ended_by.get("type"))
                status = "cancelled" if kind.endswith("Aborted") else "failed"
                ended = iso_utc(ended_by["timestamp"])
        timings.append(
            {"name": name, "started": iso_utc(entry["timestamp"]), "ended": ended, "status": status}
        )
    return timings


def _entry_of(
    exit_event: Mapping[str, Any],
    by_id: Mapping[int, Mapping[str, Any]],
    paired: Mapping[int, Any],
) -> int | None:
    """The id of the entry an exit leads back to: the nearest earlier entry of the same name
    on its thread, skipping nested entries of that name that have their own exit."""
    name = exit_event.get("stateExitedEventDetails", {}).get("name")
    depth = 0
    current = by_id.get(int(exit_event.get("previousEventId") or 0))
    for _ in range(len(by_id)):
        if current is None:
            return None
        kind = str(current.get("type", ""))
        if kind.endswith("StateExited") and current["stateExitedEventDetails"]["name"] == name:
            depth += 1
        elif kind.endswith("StateEntered") and current["stateEnteredEventDetails"]["name"] == name:
            if depth == 0 and int(current["id"]) not in paired:
                return int(current["id"])
            depth = max(depth - 1, 0)
        current = by_id.get(int(current.get("previousEventId") or 0))
    return None


def _first_failure_after(
    entry: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first failure on the entry's thread after it (the events that follow from it)."""
    reached = {int(entry["id"])}
    for event in events:
        if int(event.get("id", 0)) <= int(entry["id"]):
            continue
        if int(event.get("previousEventId") or 0) in reached:
            reached.add(int(event["id"]))
            if str(event.get("type", "")).endswith(_FAILURES):
                return event
    return None


def finished_executions(
    client: Any,
    state_machine_arn: str,
    *,
    limit: int,
    since: dt.datetime | None = None,
    timings: int = 0,
) -> list[RunRecord]:
    """The state machine's closed executions, newest first (Runner.runs): ListExecutions
    (newest first, read until `since` or `limit`), then the histories of the newest
    `timings`."""
    limit = max(0, min(limit, MAX_LISTED_RUNS))
    records: list[RunRecord] = []
    try:
        paginator = client.get_paginator("list_executions")
        pages = paginator.paginate(
            stateMachineArn=state_machine_arn,
            PaginationConfig={"MaxItems": 10 * MAX_LISTED_RUNS, "PageSize": 100},
        )
        for page in pages:
            for execution in page.get("executions", []):
                started: dt.datetime = execution["startDate"]
                if since is not None and started < since:
                    break
                status = _STATUS.get(str(execution.get("status")))
                if status is None:  # still running
                    continue
                stopped = execution.get("stopDate")
                records.append(
                    {
                        "runId": str(execution["executionArn"]),
                        "status": status,
                        "started": iso_utc(started),
                        "ended": iso_utc(stopped) if stopped else None,
                        "steps": None,
                    }
                )
                if len(records) >= limit:
                    break
            else:
                continue
            break
        records.sort(key=lambda r: r["started"], reverse=True)
        for record in records[:timings]:
            record["steps"] = state_timings(history_events(client, record["runId"]))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            return []
        raise EngineError(f"cannot list the executions of {state_machine_arn}: {error}") from None
    except BotoCoreError as error:
        raise EngineError(f"cannot list the executions of {state_machine_arn}: {error}") from None
    return records
