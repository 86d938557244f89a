"""How the interpreter calls a task's activity: idempotent activity ids, the circuit breaker,
the attempts (Temporal's RetryPolicy, or the interpreter's own loop for jitter and injected
faults) and the events a run reports.

- **Activity id.** A step with `idempotencyKey` is scheduled with activity id `<step
  name>:<resolved key>` on every attempt. Temporal refuses two running activities with one
  id in a run, so calls of a run that resolve the same key (concurrent map iterations, say)
  take turns: each waits until the previous one with that id has finished.
- **Attempts.** Without jitter and faults, one activity call with the spec's RetryPolicy.
  With `jitter: full` or a fault injected into the step, the interpreter schedules each
  attempt itself as an activity with one attempt (same activity id), and sleeps on a
  durable timer between them: uniform(0, min(maxInterval, initialInterval *
  backoffRate^(n-1))) after failed attempt n, drawn from `workflow.random()` so a replay
  draws the same delays. `nonRetryable` and non-retryable ApplicationErrors stop it;
  `Timeout` is always retried, as Temporal does.
- **Circuit breaker.** Acquired before the attempts (refused: `CircuitOpen`, no call) and
  told the outcome after them (`breaker.py`).

Imported by the workflow sandbox: standard library, temporalio and this package only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from controlplane.engines.temporal.runtime.attempts import (
    RetrySettings,
    activity_id,
    faults_for,
)
from controlplane.engines.temporal.runtime.breaker import Decision
from controlplane.engines.temporal.runtime.failures import StepFailure, failure_of
from controlplane.engines.temporal.runtime.payload import (
    BREAKER_ACQUIRE_ACTIVITY,
    BREAKER_RECORD_ACTIVITY,
    FAULT_TIMEOUT_ACTIVITY,
    ActivityBinding,
    EventKind,
    FaultSpec,
    InterpreterPayload,
    RunEvent,
)

Step = Mapping[str, Any]

DEFAULT_TASK_TIMEOUT = 3600.0
"""start-to-close timeout (seconds) of a task that sets none (Temporal requires one)."""

FAULT_TIMEOUT = 1.0
"""Seconds an injected `timeout` fault takes on a step without `timeout`."""

MAX_EVENTS = 1000
"""Events a run keeps (they travel in its status and result): later ones are dropped."""

BREAKER_CALL_TIMEOUT = 30.0
"""Schedule-to-close bound of one breaker consultation: a run never hangs on it."""


def _seconds(value: Any) -> timedelta:
    return timedelta(seconds=float(value))


def retry_policy(settings: RetrySettings) -> RetryPolicy:
    """The spec's retry as Temporal's RetryPolicy (no retry: one attempt)."""
    return RetryPolicy(
        initial_interval=_seconds(settings.initial_interval),
        backoff_coefficient=settings.backoff_rate,
        maximum_interval=(
            _seconds(settings.max_interval) if settings.max_interval is not None else None
        ),
        maximum_attempts=settings.max_attempts,
        non_retryable_error_types=list(settings.non_retryable) or None,
    )


class ActivityCaller:
    """Calls the activities of one run's task steps and keeps the run's events."""

    def __init__(self, payload: InterpreterPayload) -> None:
        self._payload = payload
        self._faults: list[FaultSpec] = list(payload.get("faults") or [])
        self._running_ids: set[str] = set()
        self.events: list[RunEvent] = []

    def event(
        self, step: str, kind: EventKind, attempt: int | None = None, error: str | None = None
    ) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append({"step": step, "kind": kind, "attempt": attempt, "error": error})

    async def call(self, step: Step, document: Any, argument: Any) -> Any:
        """The activity's result for `argument`; StepFailure with the error name otherwise."""
        binding = self._payload["activities"].get(step["activity"])
        if binding is None:
            raise StepFailure("ActivityUnbound", f"no Temporal binding for {step['activity']}")
        identity = activity_id(step, document)  # DataError: the caller's DataPathError
        if identity is None:
            return await self._guarded(step, binding, argument, None)
        while identity in self._running_ids:  # re-checked: several may wake at once
            await workflow.wait_condition(lambda: identity not in self._running_ids)
        self._running_ids.add(identity)
        try:
            return await self._guarded(step, binding, argument, identity)
        finally:
            self._running_ids.discard(identity)

    # -- circuit breaker ---------------------------------------------------------------------

    async def _guarded(
        self, step: Step, binding: ActivityBinding, argument: Any, identity: str | None
    ) -> Any:
        breaker = step.get("circuitBreaker")
        if not breaker:
            return await self._attempts(step, binding, argument, identity)
        target = self._payload.get("target") or f"queue-{workflow.info().task_queue}"
        request = {
            "id": f"cpl-breaker:{target}:{binding['activity']}",
            "failureThreshold": int(breaker["failureThreshold"]),
            "resetTimeout": float(breaker["resetTimeout"]),
            "success": None,
        }
        decision = await self._breaker(BREAKER_ACQUIRE_ACTIVITY, request, step)
        if not decision["allowed"]:
            self.event(step["name"], "circuit-open", None, "CircuitOpen")
            raise StepFailure(
                "CircuitOpen",
                f"the circuit breaker of {binding['activity']} on {target} is open",
            )
        try:
            result = await self._attempts(step, binding, argument, identity)
        except StepFailure:
            await self._breaker(BREAKER_RECORD_ACTIVITY, {**request, "success": False}, step)
            raise
        await self._breaker(BREAKER_RECORD_ACTIVITY, {**request, "success": True}, step)
        return result

    async def _breaker(self, activity: str, request: dict[str, Any], step: Step) -> Decision:
        try:
            decision: Decision = await workflow.execute_activity(
                activity,
                request,
                task_queue=workflow.info().task_queue,
                schedule_to_close_timeout=_seconds(BREAKER_CALL_TIMEOUT),
                start_to_close_timeout=_seconds(10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
                summary=f"{step['name']} circuit breaker",
            )
        except ActivityError as error:
            raise StepFailure(
                "CircuitBreakerUnavailable", f"{request['id']}: {failure_of(error).cause}"
            ) from None
        return decision

    # -- attempts ----------------------------------------------------------------------------

    async def _attempts(
        self, step: Step, binding: ActivityBinding, argument: Any, identity: str | None
    ) -> Any:
        name = step["name"]
        settings = RetrySettings.of(step)
        if not settings.jitter and not any(fault["step"] == name for fault in self._faults):
            try:
                return await self._execute(step, binding, argument, identity, settings)
            except StepFailure as failure:  # the last of Temporal's attempts
                self.event(name, "attempt-failed", None, failure.error)
                raise
        attempt = 1
        while True:
            try:
                return await self._attempt(step, binding, argument, identity, attempt)
            except StepFailure as failure:
                self.event(name, "attempt-failed", attempt, failure.error)
                if not settings.retries(failure.error, attempt, failure.retryable):
                    raise
                delay = settings.delay(attempt, workflow.random().uniform)
                attempt += 1
                self.event(name, "retry", attempt, failure.error)
                if delay > 0:
                    await workflow.sleep(delay, summary=f"{name} before attempt {attempt}")

    async def _attempt(
        self,
        step: Step,
        binding: ActivityBinding,
        argument: Any,
        identity: str | None,
        attempt: int,
    ) -> Any:
        """One attempt, with the faults injected into it (delays first, then the effect)."""
        name = step["name"]
        faults = faults_for(self._faults, name, attempt)
        for fault in faults:
            if fault.get("delay"):
                self.event(name, "fault", attempt, None)
                await workflow.sleep(float(fault["delay"] or 0), summary=f"{name} injected delay")
        for fault in faults:
            if fault.get("error"):
                self.event(name, "fault", attempt, fault["error"])
                raise StepFailure(str(fault["error"]), fault.get("cause") or "injected fault")
            if fault.get("timeout"):
                self.event(name, "fault", attempt, "Timeout")
                await self._hang(step)
        return await self._execute(step, binding, argument, identity, RetrySettings())

    async def _execute(
        self,
        step: Step,
        binding: ActivityBinding,
        argument: Any,
        identity: str | None,
        settings: RetrySettings,
    ) -> Any:
        try:
            return await workflow.execute_activity(
                binding["activity"],
                argument,
                task_queue=binding.get("taskQueue") or workflow.info().task_queue,
                start_to_close_timeout=_seconds(step.get("timeout", DEFAULT_TASK_TIMEOUT)),
                heartbeat_timeout=_seconds(step["heartbeat"]) if "heartbeat" in step else None,
                retry_policy=retry_policy(settings),
                activity_id=identity,
                summary=step["name"],
            )
        except ActivityError as error:
            raise failure_of(error) from None

    async def _hang(self, step: Step) -> None:
        """A real timeout: a cpl-hosted activity that outlives the step's timeout."""
        seconds = float(step.get("timeout", FAULT_TIMEOUT))
        try:
            await workflow.execute_activity(
                FAULT_TIMEOUT_ACTIVITY,
                seconds,
                task_queue=workflow.info().task_queue,
                start_to_close_timeout=_seconds(seconds),
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"{step['name']} injected timeout",
            )
        except ActivityError as error:
            raise failure_of(error) from None
        raise StepFailure("Timeout", "the injected timeout did not time out")
