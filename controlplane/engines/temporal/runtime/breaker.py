"""Circuit breakers as durable state on the engine: one `cpl-circuit-breaker` workflow per
target and activity type, hosted by `cpl worker` next to the interpreter.

Every run on a target that calls the same bound activity shares the breaker. The
interpreter consults it through `cpl.breaker.acquire` before a call and reports the call's
outcome (after retries) through `cpl.breaker.record`; both are activities hosted by `cpl
worker` that send Temporal Updates here (`hosted.py`). Transitions use workflow time, so
they replay deterministically:

- closed: calls pass; `failureThreshold` consecutive failed calls open the circuit.
- open: calls are refused (the interpreter fails the step with `CircuitOpen` without calling
  the activity) until `resetTimeout` has passed since it opened; the next call is then the
  trial (half-open).
- half-open: only the trial passes; its success closes the circuit, its failure opens it
  again. A trial that never reports (its run was terminated) is replaced by another after
  `resetTimeout`.

The settings are those of the latest call (steps sharing a breaker should agree). The
workflow continues as new with its state when Temporal suggests it or after
`UPDATES_PER_RUN` updates, so its history stays small.

Imported by the workflow sandbox: standard library, temporalio and this package only.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from temporalio import workflow

from controlplane.engines.temporal.runtime.payload import BREAKER_WORKFLOW

UPDATES_PER_RUN = 500

BreakerStateName = Literal["closed", "open", "half-open"]


class BreakerState(TypedDict):
    """A breaker's state (the argument it continues as new with); times are epoch seconds.

    `updatesPerRun` overrides UPDATES_PER_RUN (tests use a small one)."""

    state: BreakerStateName
    failures: int
    openedAt: float | None
    trialAt: float | None
    failureThreshold: int
    resetTimeout: float
    updatesPerRun: NotRequired[int]


class BreakerSettings(TypedDict):
    failureThreshold: int
    resetTimeout: float


class Decision(TypedDict):
    """The answer to `acquire` and `record`: whether the call may go ahead and the state."""

    allowed: bool
    state: BreakerStateName
    trial: bool


def new_state(settings: BreakerSettings) -> BreakerState:
    return {
        "state": "closed",
        "failures": 0,
        "openedAt": None,
        "trialAt": None,
        "failureThreshold": int(settings["failureThreshold"]),
        "resetTimeout": float(settings["resetTimeout"]),
    }


def acquire(state: BreakerState, settings: BreakerSettings, now: float) -> Decision:
    """May a call go ahead at `now`? (mutates `state`)"""
    state["failureThreshold"] = int(settings["failureThreshold"])
    state["resetTimeout"] = float(settings["resetTimeout"])
    reset = state["resetTimeout"]
    if state["state"] == "open" and now - (state["openedAt"] or 0.0) >= reset:
        state["state"] = "half-open"
        state["trialAt"] = None
    if state["state"] == "half-open":
        if state["trialAt"] is None or now - state["trialAt"] >= reset:
            state["trialAt"] = now
            return {"allowed": True, "state": "half-open", "trial": True}
        return {"allowed": False, "state": "half-open", "trial": False}
    return {"allowed": state["state"] == "closed", "state": state["state"], "trial": False}


def record(state: BreakerState, success: bool, now: float) -> Decision:
    """Count the outcome of a call (after its retries) at `now` (mutates `state`)."""
    if success:
        state["state"], state["failures"], state["openedAt"] = "closed", 0, None
    elif state["state"] == "half-open":
        _open(state, now)
    elif state["state"] == "closed":
        state["failures"] += 1
        if state["failures"] >= state["failureThreshold"]:
            _open(state, now)
    state["trialAt"] = None
    return {"allowed": state["state"] == "closed", "state": state["state"], "trial": False}


def _open(state: BreakerState, now: float) -> None:
    state["state"], state["openedAt"] = "open", now


@workflow.defn(name=BREAKER_WORKFLOW)
class CircuitBreakerWorkflow:
    """One breaker's state; Updates `acquire(settings)` and `record(success)`, query `state`."""

    @workflow.init
    def __init__(self, state: BreakerState) -> None:
        self._state: BreakerState = dict(state)  # type: ignore[assignment]
        self._updates = 0

    @workflow.run
    async def run(self, state: BreakerState) -> None:
        limit = int(self._state.get("updatesPerRun") or UPDATES_PER_RUN)
        await workflow.wait_condition(
            lambda: self._updates >= limit or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.update(name="acquire")
    def acquire(self, settings: BreakerSettings) -> Decision:
        self._updates += 1
        return acquire(self._state, settings, workflow.now().timestamp())

    @workflow.update(name="record")
    def record(self, success: bool) -> Decision:
        self._updates += 1
        return record(self._state, bool(success), workflow.now().timestamp())

    @workflow.query(name="state")
    def state(self) -> BreakerState:
        return self._state
