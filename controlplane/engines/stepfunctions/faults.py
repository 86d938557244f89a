"""Fault plans on Step Functions (`cpl run --inject FILE`, development environments only).

A run with a fault plan executes a copy of the workflow's state machine made for that run, in
which the faulted steps misbehave while everything around them stays as rendered:

- `error` / `timeout`: the step's call is replaced by a one-branch Parallel state whose branch
  fails with the error (`States.Timeout` for a timeout). It keeps the call's name, `Retry` and
  `Catch`, so the spec's retry policy, catchers, compensations and circuit breaker (which
  counts the failure: the faulted call is the breaker's `<step>-call`) run for real.
- `delay`: a Wait state in front of the step; every transition to the step goes through it.

What the emulator cannot express truthfully is refused with an EngineError: a fault on some
attempts only (a retried Parallel state does not re-read `$$.State.RetryCount`, so a branch
cannot tell its attempt), a delay of a later attempt, and outages (no worker to stop).

`fault_events` reads what happened from the execution history: `fault`, `attempt-failed`,
`retry`, `caught`, `compensated` and `circuit-open` events, `{"step", "kind", "attempt",
"error"}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from controlplane.engines.faults import Fault, FaultPlan
from controlplane.errors import EngineError
from controlplane.spec.check import compensation_targets
from controlplane.spec.model import TaskStep, Workflow
from controlplane.spec.normalize import apply_defaults

State = dict[str, Any]

MARK = "cpl fault run "
"""Starts the Comment of a fault copy; JSON after it says which states belong to which step."""

_CALL_FAILED = {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut"}
_CALL_STARTED = {"TaskScheduled", "LambdaFunctionScheduled"}


def _scopes(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every {"StartAt", "States"} scope of an ASL definition, nested ones included."""
    yield definition
    for state in definition.get("States", {}).values():
        for branch in state.get("Branches", []):
            yield from _scopes(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _scopes(processor)


def _find(definition: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((scope for scope in _scopes(definition) if name in scope["States"]), None)


def _tasks(workflow: Workflow) -> dict[str, TaskStep]:
    found: dict[str, TaskStep] = {}

    def visit(steps: list[Any]) -> None:
        for step in steps:
            if isinstance(step, TaskStep):
                found[step.name] = step
            for branch in getattr(step, "branches", []):
                visit(branch.steps)
            visit(getattr(step, "steps", []) or [])

    visit(apply_defaults(workflow).spec.steps)
    return found


def _refuse(workflow: Workflow, fault: Fault, why: str) -> EngineError:
    return EngineError(
        f"fault on step '{fault.step}' of {workflow.key}: {why} on Step Functions; "
        "inject it on Temporal, or fault every attempt"
    )


def faulted_definition(
    workflow: Workflow, definition: dict[str, Any], plan: FaultPlan
) -> dict[str, Any]:
    """A copy of `definition` with the plan's faults in place; EngineError for what the
    engine cannot do truthfully."""
    if plan.outages:
        raise EngineError(
            "outages cannot be injected on Step Functions: the engine runs no worker of "
            "cpl's to stop (inject outages on Temporal)"
        )
    copy: dict[str, Any] = json.loads(json.dumps(definition))
    tasks = _tasks(workflow)
    owners: dict[str, str] = {}
    calls: dict[str, str] = {}  # faulted step -> the state that fails in its place
    for fault in plan.faults:
        step = tasks.get(fault.step)
        if step is None:
            raise EngineError(f"fault plan: {workflow.key} has no task step '{fault.step}'")
        call = f"{step.name}-call" if _find(copy, f"{step.name}-call") else step.name
        scope = _find(copy, call)
        if scope is None:
            raise EngineError(f"fault plan: step '{fault.step}' is not in the state machine")
        attempts = step.retry.max_attempts if step.retry is not None else 1
        if fault.delay is not None:
            if fault.attempts not in (None, [1]):
                raise _refuse(workflow, fault, "only the first attempt can start late")
            _delay(scope, step.name, math.ceil(fault.delay.seconds))
            owners[f"{step.name}-fault-delay"] = step.name
            continue
        if fault.attempts is not None and not set(range(1, attempts + 1)) <= set(fault.attempts):
            raise _refuse(workflow, fault, "a fault cannot hit some attempts and spare others")
        error = "States.Timeout" if fault.timeout else str(fault.error)
        failing = f"{step.name}-fault"
        original = scope["States"][call]
        scope["States"][call] = {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": failing,
                    "States": {failing: {"Type": "Fail", "Error": error, "Cause": fault.cause}},
                }
            ],
            **{key: original[key] for key in ("Retry", "Catch", "Next", "End") if key in original},
        }
        owners[failing] = step.name
        calls[step.name] = call
    compensations = {
        str(step.compensation): name for name, step in tasks.items() if step.compensation
    }
    marks = {
        "steps": sorted(tasks),
        "faults": owners,
        "calls": calls,
        "compensations": {
            c: s
            for c, s in compensations.items()
            if c in compensation_targets(apply_defaults(workflow).spec.steps)
        },
    }
    copy["Comment"] = MARK + json.dumps(marks, sort_keys=True)
    return copy


def _delay(scope: dict[str, Any], name: str, seconds: int) -> None:
    """A Wait state in front of state `name`: transitions to it go through the wait."""
    wait = f"{name}-fault-delay"

    def redirect(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (wait if key in ("Next", "Default") and item == name else redirect(item))
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [redirect(item) for item in value]
        return value

    scope["States"] = {key: redirect(state) for key, state in scope["States"].items()}
    if scope["StartAt"] == name:
        scope["StartAt"] = wait
    scope["States"][wait] = {"Type": "Wait", "Seconds": seconds, "Next": name}


def fault_events(definition: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the faults did, from the execution history of a fault copy (empty otherwise)."""
    comment = str(definition.get("Comment", ""))
    if not comment.startswith(MARK):
        return []
    marks = json.loads(comment[len(MARK) :])
    steps: set[str] = set(marks["steps"])
    faults: dict[str, str] = marks["faults"]
    compensations: dict[str, str] = marks["compensations"]
    calls: dict[str, str] = marks["calls"]
    catch_targets = {
        name: {c["Next"] for c in state.get("Catch", []) if c.get("ResultPath") != "$.cplError"}
        for scope in _scopes(definition)
        for name, state in scope["States"].items()
    }

    def owner(state: str) -> str | None:
        if state in steps:
            return state
        if state in faults:
            return faults[state]
        return next((s for s in steps if state.startswith(f"{s}-")), None)

    events: list[dict[str, Any]] = []
    attempts: dict[str, int] = {}
    current: str | None = None
    entered = ""
    failed: dict[str, str] = {}  # step -> the state whose failure may be caught

    def add(step: str, kind: str, error: str | None = None) -> None:
        events.append(
            {"step": step, "kind": kind, "attempt": attempts.get(step, 1), "error": error}
        )

    def started(step: str) -> None:
        attempts[step] = attempts.get(step, 0) + 1
        if attempts[step] > 1:
            add(step, "retry")

    for event in history:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = str(event["stateEnteredEventDetails"]["name"])
            if name not in faults:
                entered = name
            for failing_step, state in list(failed.items()):
                if name in catch_targets.get(state, set()):
                    add(failing_step, "caught", None)
                    del failed[failing_step]
            step = owner(name)
            if name in compensations:
                events.append(
                    {
                        "step": compensations[name],
                        "kind": "compensated",
                        "attempt": 1,
                        "error": None,
                    }
                )
            if step is None:
                continue
            if name == step and step != current:
                attempts.pop(step, None)
            current = step
            if name.endswith("-circuit-open"):
                add(step, "circuit-open", "CircuitOpen")
            elif name in faults and not name.endswith("-fault-delay"):
                add(step, "fault", _fault_error(definition, name))
                add(step, "attempt-failed", _fault_error(definition, name))
                failed[step] = step
        elif current is not None and (
            kind in _CALL_STARTED
            or (kind == "ParallelStateStarted" and entered == calls.get(current))
        ):
            started(current)
        elif current is not None and kind in _CALL_FAILED:
            details: dict[str, Any] = next(
                (v for k, v in event.items() if k.endswith("EventDetails")), {}
            )
            add(current, "attempt-failed", str(details.get("error", "")) or None)
            failed[current] = current
    return events


def _fault_error(definition: dict[str, Any], fault_state: str) -> str:
    for scope in _scopes(definition):
        state = scope["States"].get(fault_state)
        if state is not None:
            return str(state.get("Error", ""))
    return ""
