"""The last part of rendering a task step: how the call is made and guarded.

`finish` takes the Task state the translator built (resource, parameters, result path,
timeouts, retriers) and adds what the spec's runtime controls need: the idempotency key on
the Lambda invocation (`invocation.py`), the circuit breaker around the call (`breaker.py`),
then the step's catchers and transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from controlplane.engines.stepfunctions import invocation, reraise
from controlplane.engines.stepfunctions.breaker import circuit_key, circuit_table, guarded
from controlplane.spec.environment import Target
from controlplane.spec.model import TaskStep
from controlplane.spec.types import Duration

State = dict[str, Any]


class _Scope(Protocol):
    states: dict[str, State]


class Rendering(Protocol):
    """What `finish` needs of the translator's render context."""

    target: Target

    def record(self, feature: str, path: str, reason: str | None = None) -> Any: ...

    def invent(self, base: str) -> str: ...

    @property
    def frame(self) -> _Scope: ...


def finish(
    state: State,
    step: TaskStep,
    path: str,
    ctx: Rendering,
    *,
    lambda_task: bool,
    seconds: Callable[[Duration, str], int],
    with_catch: Callable[[State], State],
) -> State:
    """The step's state with key passing, circuit breaker, catchers and Next/End; helper
    states it needs go into the current frame. `seconds` turns a duration at a path into
    the engine's whole seconds; `with_catch` adds the step's catchers and transitions."""
    if step.idempotency_key is not None:
        if lambda_task:
            ctx.record("task.idempotencyKey", f"{path}/idempotencyKey")
            state = invocation.keyed_invocation(state, step.idempotency_key.text)
        else:
            ctx.record("task.idempotencyKey.service", f"{path}/idempotencyKey")
    unwrap = invocation.unwrap(state)
    if step.circuit_breaker is not None:
        ctx.record("task.circuitBreaker", f"{path}/circuitBreaker")
        breaker = step.circuit_breaker
        after = [(ctx.invent(f"{step.name}-result"), unwrap)] if unwrap else []
        wrapper = guarded(
            step.name,
            state,
            after,
            table=circuit_table(ctx.target),
            key=circuit_key(ctx.target, step.activity),
            threshold=breaker.failure_threshold,
            reset_seconds=seconds(breaker.reset_timeout, f"{path}/circuitBreaker/resetTimeout"),
            invent=ctx.invent,
        )
        wrapper = with_catch(wrapper)
        # a timeout leaves the branch as cpl.Timeout: raise it again here, before the catchers
        timeout = ctx.invent(f"{step.name}-timeout")
        ctx.frame.states[timeout] = reraise.timing_out(list(wrapper.get("Catch", [])))
        again = {"ErrorEquals": [reraise.ALIAS], "ResultPath": None, "Next": timeout}
        wrapper["Catch"] = [again, *wrapper.get("Catch", [])]
        return wrapper
    state = with_catch(state)
    if unwrap is None:
        return state
    # the result is lifted into place by a Pass state between the task and its successor
    name = ctx.invent(f"{step.name}-result")
    follow: State = {key: state.pop(key) for key in ("Next", "End") if key in state}
    ctx.frame.states[name] = {**unwrap, **follow}
    state["Next"] = name
    return state
