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
     "target": "temporal-local",                      # optional (older payloads lack it)
     "input": {"orderId": "o-1"},
     "faults": [{"step": "charge", "attempts": [1], "error": "Declined",
                 "cause": "injected fault", "timeout": false, "delay": null}],   # optional
     "tracing": true}                                 # optional

`target` names the environment's target the version was published to: circuit breakers are
shared per target and activity type. `identity` (where the environment declares
`spec.identity`) holds the issuer, audience and public keys the interpreter verifies the
tokens of approval and admin signals with (`signals.py`). `faults` is the fault plan of
`cpl run --inject` (only on development environments). `tracing` is the artifact's
`tracing.enabled`: the run's steps get OpenTelemetry spans (runtime/tracing.py).

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

BREAKER_WORKFLOW = "cpl-circuit-breaker"
"""Workflow type of a circuit breaker's state (one workflow per target and activity type)."""

BREAKER_ACQUIRE_ACTIVITY = "cpl.breaker.acquire"
BREAKER_RECORD_ACTIVITY = "cpl.breaker.record"
"""Activities hosted by `cpl worker` that consult and update a breaker for the interpreter."""

FAULT_TIMEOUT_ACTIVITY = "cpl.fault.hang"
"""Activity hosted by `cpl worker` that outlives its timeout: an injected `timeout` fault."""


class ActivityBinding(TypedDict):
    """Where a logical activity runs on Temporal (`bindings.activities.<name>.temporal`).

    Without `taskQueue` the activity is scheduled on the interpreter's own task queue.
    """

    activity: str
    taskQueue: NotRequired[str]


class DeadLetterBinding(TypedDict):
    """The queue bound for `onError.deadLetter` in the target environment."""

    queue: str


class RuntimeIdentity(TypedDict):
    """The environment's `spec.identity` as the interpreter verifies signals with it: the
    issuer, audience and roles claim of its tokens and their public keys (JWKs). `jwks` is
    the https URL the keys are fetched from when they are not in the repo (`cpl run` adds
    the fetched keys to the run's payload)."""

    issuer: str
    audience: str
    rolesClaim: str
    keys: list[dict[str, Any]]
    jwks: NotRequired[str]


class SpecPayload(TypedDict):
    """One published spec version: what the translator produces for a Temporal target."""

    workflow: dict[str, Any]
    version: str
    digest: str
    activities: dict[str, ActivityBinding]
    deadLetter: DeadLetterBinding | None
    target: NotRequired[str]
    identity: NotRequired[RuntimeIdentity]


class FaultSpec(TypedDict):
    """One injected fault (a `Fault` of the plan, durations in seconds)."""

    step: str
    attempts: list[int] | None
    error: str | None
    cause: str
    timeout: bool
    delay: float | None


class InterpreterPayload(SpecPayload):
    """The single argument of a run: a published spec payload plus the run's input."""

    input: Any
    faults: NotRequired[list[FaultSpec]]
    tracing: NotRequired[bool]


EventKind = Literal["fault", "attempt-failed", "retry", "caught", "compensated", "circuit-open"]


class RunEvent(TypedDict):
    """A path the run took that its trace does not show (the `events` of `cpl run`).

    `attempt` is the 1-based attempt it concerns (for `retry`: the attempt about to start),
    null where none applies; `error` the error name, null where none applies.
    """

    step: str
    kind: EventKind
    attempt: int | None
    error: str | None


State = Literal["running", "paused", "waiting", "completed", "failed"]

StepStatus = Literal["succeeded", "failed", "cancelled", "running"]


class StepRecord(TypedDict):
    """One start of a step (the `steps` of `cpl run`): when it started and ended (ISO 8601
    UTC, workflow time; `ended` null while it runs) and how it ended."""

    name: str
    started: str
    ended: str | None
    status: StepStatus


class RunStatus(TypedDict):
    """Answer of the `status` query.

        `trace` lists step names in the order they started (nested steps and compensations
        included); `refused` the approval signals whose roles did not match and the signals whose
    token failed (with `reason`; never the token); `skipped` the steps
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
    events: NotRequired[list[RunEvent]]
    steps: NotRequired[list[StepRecord]]


class RunResult(TypedDict):
    """Result of a successful run."""

    output: Any
    trace: list[str]
    version: str
    digest: str
    events: NotRequired[list[RunEvent]]
    steps: NotRequired[list[StepRecord]]


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


def make_run_payload(
    spec: SpecPayload,
    run_input: Any,
    faults: list[FaultSpec] | None = None,
    *,
    tracing: bool = False,
) -> InterpreterPayload:
    """The argument to start one run of a published spec version with `run_input` (and the
    faults to inject, if any; `tracing`: the artifact asks for step spans)."""
    payload: InterpreterPayload = {
        "workflow": spec["workflow"],
        "version": spec["version"],
        "digest": spec["digest"],
        "activities": spec["activities"],
        "deadLetter": spec["deadLetter"],
        "input": run_input,
    }
    if "target" in spec:
        payload["target"] = spec["target"]
    if "identity" in spec:
        payload["identity"] = spec["identity"]
    if faults:
        payload["faults"] = faults
    if tracing:
        payload["tracing"] = True
    return payload
