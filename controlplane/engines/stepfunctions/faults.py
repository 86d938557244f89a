"""Fault plans on Step Functions (`cpl run --inject FILE`, development environments only).

A run with a fault plan executes a copy of the workflow's state machine made for that run, in
which the faulted steps misbehave while everything around them stays as rendered. The call
of a faulted step (`<step>-call` behind a circuit breaker) becomes a one-item Map state with
the call's name, `Retry`, `Catch` and transitions. A Map state reads `$$.State.RetryCount`
afresh on every retry, so its iteration knows the attempt and, per the plan, fails with the
fault's error, times out (`States.Timeout`), waits before the call, or just makes the call.
The spec's retry policy, catchers, compensations and circuit breaker therefore run for real.

Outages are refused with an EngineError: there is no worker of cpl's to stop.

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
from controlplane.engines.stepfunctions import reraise
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


def _nested(base: str, path: str | None) -> str | None:
    """`path` (relative to `$`) re-rooted under `base`; null stays null."""
    return None if path is None else base + path[1:]


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
    by_step: dict[str, list[Fault]] = {}
    for fault in plan.faults:
        if fault.step not in tasks:
            raise EngineError(f"fault plan: {workflow.key} has no task step '{fault.step}'")
        by_step.setdefault(fault.step, []).append(fault)
    calls = {name: _call(copy, name) for name in tasks}
    for step, faults in by_step.items():
        scope = _find(copy, calls[step])
        if scope is None:
            raise EngineError(f"fault plan: step '{step}' is not in the state machine")
        _inject(scope, calls[step], faults)
    targets = compensation_targets(apply_defaults(workflow).spec.steps)
    marks = {
        "steps": sorted(tasks),
        "faulted": sorted(by_step),
        "calls": calls,
        "compensations": {
            str(task.compensation): name
            for name, task in tasks.items()
            if task.compensation in targets
        },
    }
    copy["Comment"] = MARK + json.dumps(marks, sort_keys=True)
    return copy


def _call(definition: dict[str, Any], step: str) -> str:
    """The state that calls the activity of task `step` (`<step>-call` behind a breaker)."""
    return f"{step}-call" if _find(definition, f"{step}-call") is not None else step


def _inject(scope: dict[str, Any], call: str, faults: list[Fault]) -> None:
    """Replace state `call` of `scope` by a one-item Map state that decides, per attempt
    (`$$.State.RetryCount`, read again on every retry of the Map), whether the attempt fails,
    times out, starts late or just runs the original call. The Map keeps the call's name,
    Retry, Catch and transitions; a Pass state before it keeps the document beside the
    single item, and Pass states after its catchers put the document back."""
    taken = set(scope["States"])
    names = {part: f"{call}-fault-{part}" for part in ("input", "choose", "document", "attempt")}
    if taken & set(names.values()):
        raise EngineError(f"fault plan: the state machine already has a state named {call}-fault-*")
    original = scope["States"][call]
    _redirect(scope, call, names["input"])
    rules: list[State] = []
    processor: dict[str, State] = {}
    for index, fault in enumerate(faults, start=1):
        effect = f"{call}-fault-{index}"
        attempt: State = {"Variable": "$.attempt", "IsNumeric": True}
        if fault.attempts is not None:
            equals = [{"Variable": "$.attempt", "NumericEquals": n - 1} for n in fault.attempts]
            attempt = equals[0] if len(equals) == 1 else {"Or": equals}
        rules.append({**attempt, "Next": effect})
        if fault.delay is not None:
            seconds = math.ceil(fault.delay.seconds)
            processor[effect] = {"Type": "Wait", "Seconds": seconds, "Next": names["document"]}
        elif fault.timeout:
            # a Map iteration cannot raise States.Timeout: it leaves as cpl.Timeout (reraise.py)
            processor[effect] = {"Type": "Fail", "Error": reraise.ALIAS, "Cause": fault.cause}
        else:
            processor[effect] = {"Type": "Fail", "Error": str(fault.error), "Cause": fault.cause}
    processor[names["choose"]] = {
        "Type": "Choice",
        "Choices": rules,
        "Default": names["document"],
    }
    processor[names["document"]] = {
        "Type": "Pass",
        "InputPath": "$.document",
        "Next": names["attempt"],
    }
    kept = ("Retry", "Catch", "Next", "End")
    processor[names["attempt"]] = {
        **{key: value for key, value in original.items() if key not in kept},
        "End": True,
    }
    mapped: State = {
        "Type": "Map",
        "ItemsPath": "$.attempts",
        "ItemSelector": {"document.$": "$.document", "attempt.$": "$$.State.RetryCount"},
        "MaxConcurrency": 1,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": names["choose"],
            "States": processor,
        },
        "ResultPath": "$.document",
        "OutputPath": "$.document[0]",
        **{key: original[key] for key in ("Next", "End") if key in original},
    }
    if "Retry" in original:
        mapped["Retry"] = reraise.with_alias(original["Retry"])
    catchers = []
    if any(fault.timeout for fault in faults):
        # the timeout is raised again outside the Map, where the call's catchers meet it
        unwrap, again = f"{call}-fault-timed-out", f"{call}-fault-timeout"
        scope["States"][unwrap] = {"Type": "Pass", "InputPath": "$.document", "Next": again}
        scope["States"][again] = reraise.timing_out(list(original.get("Catch", [])))
        catchers.append({"ErrorEquals": [reraise.ALIAS], "ResultPath": None, "Next": unwrap})
    for index, catcher in enumerate(original.get("Catch", []), start=1):
        caught = f"{call}-fault-caught-{index}"
        scope["States"][caught] = {
            "Type": "Pass",
            "InputPath": "$.document",
            "Next": catcher["Next"],
        }
        catchers.append(
            {
                **catcher,
                "ResultPath": _nested("$.document", catcher.get("ResultPath")),
                "Next": caught,
            }
        )
    if catchers:
        mapped["Catch"] = catchers
    scope["States"][call] = mapped
    scope["States"][names["input"]] = {
        "Type": "Pass",
        "Parameters": {"document.$": "$", "attempts.$": "States.Array(0)"},
        "Next": call,
    }


def _redirect(scope: dict[str, Any], name: str, to: str) -> None:
    """Every transition of `scope` (and its start) to state `name` goes to state `to`."""

    def redirect(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (to if key in ("Next", "Default") and item == name else redirect(item))
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [redirect(item) for item in value]
        return value

    scope["States"] = {key: redirect(state) for key, state in scope["States"].items()}
    if scope["StartAt"] == name:
        scope["StartAt"] = to


def fault_events(definition: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the faults did, from the execution history of a fault copy (empty otherwise)."""
    comment = str(definition.get("Comment", ""))
    if not comment.startswith(MARK):
        return []
    marks = json.loads(comment[len(MARK) :])
    steps: list[str] = sorted(marks["steps"], key=len, reverse=True)  # longest prefix first
    faulted: set[str] = set(marks["faulted"])
    calls: dict[str, str] = marks["calls"]
    compensations: dict[str, str] = marks["compensations"]
    every = {
        name: state for scope in _scopes(definition) for name, state in scope["States"].items()
    }
    catch_targets = {name: _catch_targets(every, name) for name in every}

    def owner(state: str) -> str | None:
        return next((s for s in steps if state == s or state.startswith(f"{s}-")), None)

    events: list[dict[str, Any]] = []
    attempts: dict[str, int] = {}
    current: str | None = None
    entered = ""
    failed: set[str] = set()  # steps whose failure a catcher may take

    def add(step: str, kind: str, error: str | None = None) -> None:
        events.append(
            {"step": step, "kind": kind, "attempt": attempts.get(step, 1), "error": error}
        )

    for event in history:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            entered = str(event["stateEnteredEventDetails"]["name"])
            for failing in sorted(failed):
                if entered in catch_targets.get(failing, set()):
                    add(failing, "caught")
                    failed.discard(failing)
            if entered in compensations:
                events.append(
                    {
                        "step": compensations[entered],
                        "kind": "compensated",
                        "attempt": 1,
                        "error": None,
                    }
                )
            step = owner(entered)
            if step is not None and step != current:
                attempts.pop(step, None)
                failed.discard(step)
            current = step
            if step is None:
                continue
            fault = _fault_state(definition, calls[step], entered)
            if entered == f"{step}-circuit-open":
                add(step, "circuit-open", "CircuitOpen")
                failed.add(step)
            elif fault is not None and fault["Type"] == "Fail":
                add(step, "fault", _spec_error(str(fault["Error"])))
                add(step, "attempt-failed", _spec_error(str(fault["Error"])))
                failed.add(step)
            elif fault is not None:
                add(step, "fault", None)  # a delay
            continue
        if current is None:
            continue
        call = calls[current]
        in_call = entered in (call, f"{call}-fault-attempt") or (
            _fault_state(definition, call, entered) is not None
        )
        if (kind == "MapStateStarted" and current in faulted) or (
            kind in _CALL_STARTED and entered == call and current not in faulted
        ):
            attempts[current] = attempts.get(current, 0) + 1
            if attempts[current] > 1:
                add(current, "retry")
        elif kind in _CALL_FAILED and in_call:
            details: dict[str, Any] = next(
                (v for k, v in event.items() if k.endswith("EventDetails")), {}
            )
            add(current, "attempt-failed", _spec_error(str(details.get("error", ""))) or None)
            failed.add(current)
    return events


def _catch_targets(states: dict[str, State], name: str, depth: int = 0) -> set[str]:
    """Where the catchers of state `name` lead a failure the step's spec catches: the saga's
    catch-all (it keeps the error at $.cplError) hands it on unhandled, and a timeout carried
    as cpl.Timeout meets the catchers of the task that raises it again."""
    targets: set[str] = set()
    for catcher in states.get(name, {}).get("Catch", []):
        if str(catcher.get("ResultPath")).endswith(".cplError"):
            continue
        if catcher["ErrorEquals"] == [reraise.ALIAS] and depth < 3:
            following = catcher["Next"]
            while states.get(following, {}).get("Type") == "Pass":
                following = states[following]["Next"]
            targets |= _catch_targets(states, following, depth + 1)
            continue
        targets.add(catcher["Next"])
    return targets


def _spec_error(name: str) -> str:
    """An error as the spec names it (a timeout is `Timeout`)."""
    return "Timeout" if name in (reraise.TIMEOUT, reraise.ALIAS) else name


def _fault_state(definition: dict[str, Any], call: str, name: str) -> State | None:
    """The injected state `name` of the faulted `call` (`<call>-fault-<n>`), if it is one."""
    prefix = f"{call}-fault-"
    if not (name.startswith(prefix) and name[len(prefix) :].isdigit()):
        return None
    for scope in _scopes(definition):
        state = scope["States"].get(name)
        if state is not None:
            return dict(state)
    return None
