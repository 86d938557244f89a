"""The payload contract between the Temporal translator and cpl's interpreter workflow.

A spec version is published once as a `SpecPayload` (the normalized workflow document plus the
environment's Temporal bindings); every run is started with an `InterpreterPayload`, which is
that spec payload plus the run's input, as the single argument of the workflow type
`INTERPRETER_WORKFLOW`::

    {"workflow": {...normalized document...},
     "version": "2.1.0",
     "digest": "sha256:...",
     "activities": {"inventory.reserve": {"activity": "ReserveInventory",
                                          "taskQueue": "inventory"}},
     "deadLetter": {"queue": "orders-dlq"},          # or null
     "input": {"orderId": "o-1"}}

The payload is plain JSON: the interpreter reads nothing but these keys, so a run keeps the
definition it started with whatever is published later. This module is imported by the
workflow sandbox: standard library only, no side effects.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

INTERPRETER_WORKFLOW = "cpl-interpreter"
"""Workflow type name of the interpreter."""

DEAD_LETTER_ACTIVITY = "cpl.dead_letter"
"""Activity type hosted by `cpl worker` on the interpreter's own task queue."""


class ActivityBinding(TypedDict):
    """Where a logical activity runs on Temporal (`bindings.activities.<name>.temporal`).

    Without `taskQueue` the activity is scheduled on the interpreter's own task queue.
    """

    activity: str
    taskQueue: NotRequired[str]


class DeadLetterBinding(TypedDict):
    """The queue bound for `onError.deadLetter` in the target environment."""

    queue: str


class SpecPayload(TypedDict):
    """One published spec version: what the translator produces for a Temporal target."""

    workflow: dict[str, Any]
    version: str
    digest: str
    activities: dict[str, ActivityBinding]
    deadLetter: DeadLetterBinding | None


class InterpreterPayload(SpecPayload):
    """The single argument of a run: a published spec payload plus the run's input."""

    input: Any


State = Literal["running", "paused", "waiting", "completed", "failed"]


class RunStatus(TypedDict):
    """Answer of the `status` query.

    `trace` lists step names in the order they started (nested steps and compensations
    included); `refused` the approval signals whose roles did not match; `skipped` the steps
    skipped by the `skip` signal or by a false DAG `when`.
    """

    state: State
    current: list[str]
    trace: list[str]
    version: str
    digest: str
    refused: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    skipped: list[str]
    error: dict[str, str] | None


class RunResult(TypedDict):
    """Result of a successful run."""

    output: Any
    trace: list[str]
    version: str
    digest: str


class DeadLetterMessage(TypedDict):
    """What the interpreter hands to the dead-letter activity after an unhandled failure."""

    queue: str
    workflow: dict[str, str]
    version: str
    digest: str
    workflowId: str
    runId: str
    input: Any
    error: dict[str, str]
    trace: list[str]
    compensations: list[dict[str, Any]]


def make_run_payload(spec: SpecPayload, run_input: Any) -> InterpreterPayload:
    """The argument to start one run of a published spec version with `run_input`."""
    return {
        "workflow": spec["workflow"],
        "version": spec["version"],
        "digest": spec["digest"],
        "activities": spec["activities"],
        "deadLetter": spec["deadLetter"],
        "input": run_input,
    }
