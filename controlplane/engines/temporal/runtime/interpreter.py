"""The interpreter workflow: runs any normalized cpl workflow document on Temporal
(docs/runtime.md).

One workflow type, `cpl-interpreter`, takes an `InterpreterPayload` and executes the spec's
steps with Temporal primitives: activities with a RetryPolicy for tasks, timers for waits,
signals for approvals, asyncio tasks for parallel branches, map iterations and DAG steps, and
a compensation stack for sagas.

Choices docs/runtime.md leaves open, made here:

- A map iteration's document is its item (with `batchSize`, its list of items), as on Step
  Functions; parallel branches start from a copy of the whole document.
- A `catch` without `resultPath` leaves the document as it was before the failed step.
- A step skipped by the `skip` signal or a false DAG `when` is not in the trace (it never
  started); it is listed in the status's `skipped`. A skipped task/parallel/map writes `null`
  at its resultPath; a skipped choice takes its `default`.
- A task without `retry` makes one attempt (Temporal's default would retry forever); without
  `timeout` it gets `DEFAULT_TASK_TIMEOUT`. Idempotency keys, jittered retries, circuit
  breakers and injected faults are carried out by `calls.ActivityCaller`.
- Compensations run on the document as it was when the compensated step completed; a failing
  compensation is logged and reported in the dead letter, and the others still run.
- A path that does not fit the document fails the step with the catchable `DataPathError`;
  a malformed document fails the run with `SpecInvalid` instead of retrying the workflow task.
- Signals sent before their approval step is reached are kept and read when it is.

Temporal's sandbox re-imports this module for every run: it has no side effects, imports only
the standard library and cpl's pure runtime modules, and passes `jsonschema` through.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from controlplane.engines.temporal.runtime.calls import DEFAULT_TASK_TIMEOUT, ActivityCaller
from controlplane.engines.temporal.runtime.data import (
    DataError,
    chunks,
    evaluate,
    get_path,
    set_path,
    task_input,
)
from controlplane.engines.temporal.runtime.failures import StepFailure
from controlplane.engines.temporal.runtime.metrics import record_run
from controlplane.engines.temporal.runtime.payload import (
    DEAD_LETTER_ACTIVITY,
    INTERPRETER_WORKFLOW,
    DeadLetterMessage,
    InterpreterPayload,
    RunResult,
    RunStatus,
    State,
)
from controlplane.engines.temporal.runtime.signals import (
    AUDIT_ACTIVITY,
    SIGNAL_ACCEPTED,
    SIGNAL_REFUSED,
    Sender,
    sender,
)
from controlplane.engines.temporal.runtime.timings import StepClock
from controlplane.engines.temporal.runtime.tracing import StepSpans

with workflow.unsafe.imports_passed_through():
    import jsonschema

Step = Mapping[str, Any]

__all__ = ["DEFAULT_TASK_TIMEOUT", "CplInterpreter", "StepFailure"]

DEAD_LETTER_TIMEOUT = 60.0
"""Schedule-to-close bound of the dead-letter hand-off: a run never hangs on it."""
AUDIT_TIMEOUT = 60.0
"""Schedule-to-close bound of recording one audit event."""

_RESULT_TYPES = frozenset({"task", "parallel", "map"})


@dataclass(frozen=True)
class _Outcome:
    """What a step produced: the next step (None ends its state machine) and its result."""

    next: str | None
    result: Any = None
    writes: bool = False


def _next_of(step: Step) -> str | None:
    return None if step.get("end") else step.get("next")


def _seconds(value: Any) -> timedelta:
    return timedelta(seconds=float(value))


def _catcher(step: Step, failure: StepFailure) -> Mapping[str, Any] | None:
    for handler in step.get("catch", []):
        errors = handler.get("errors", [])
        if "*" in errors or failure.error in errors:
            return dict(handler)
    return None


def _input_errors(schema: Mapping[str, Any], value: Any) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as error:
        raise StepFailure("SpecInvalid", f"input.schema is invalid: {error.message}") from None
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


async def _all(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    """Results of concurrent awaitables in order; the first failure cancels the others."""
    tasks = [asyncio.ensure_future(item) for item in awaitables]  # scheduled in order
    if not tasks:
        return []
    try:
        done, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        raise
    failed = [task for task in tasks if task in done and task.exception() is not None]
    if failed:
        for task in pending:
            task.cancel()
        if pending:
            await workflow.wait(pending)
        error = failed[0].exception()
        assert error is not None
        raise error
    return [task.result() for task in tasks]


@workflow.defn(name=INTERPRETER_WORKFLOW)
class CplInterpreter:
    """Executes one run of a published spec version; see `payload.InterpreterPayload`.

    Signals: `pause`, `resume`, `skip(step)` and one per approval `signal`; query: `status`.
    """

    @workflow.init
    def __init__(self, payload: InterpreterPayload) -> None:
        self._payload = payload
        self._state: State = "running"
        self._paused = False
        self._skip_requests: list[str] = []
        self._current: list[str] = []
        self._trace: list[str] = []
        self._refused: list[dict[str, Any]] = []
        self._approvals: list[dict[str, Any]] = []
        self._skipped: list[str] = []
        self._answers: dict[str, list[Any]] = {}
        self._waiting = 0
        self._error: dict[str, str] | None = None
        self._compensations: list[tuple[str, Any]] = []
        self._calls = ActivityCaller(payload)
        self._spans = StepSpans(payload)
        self._clock = StepClock()
        self._index = self._index_steps(payload["workflow"].get("spec", {}).get("steps", []))
        self._identity = payload.get("identity")

    # -- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, payload: InterpreterPayload) -> RunResult:
        """Run the spec on the payload's input; fail with the unhandled error's name."""
        spec = payload["workflow"].get("spec", {})
        workflow.upsert_memo({"cpl.version": payload["version"], "cpl.digest": payload["digest"]})
        try:
            document = self._validated_input(spec, payload.get("input"))
            if "start" in spec:
                document = await self._run_machine(spec["steps"], spec["start"], document)
            else:
                document = await self._run_dag(spec["steps"], document)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            # A malformed document must fail the run, not retry the workflow task forever.
            failure = StepFailure("SpecInvalid", f"{type(error).__name__}: {error}")
            await self._fail_run(spec, failure)
            record_run(payload, "failed", self._calls.events)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._run_error(failure) from None
        except StepFailure as failure:
            await self._fail_run(spec, failure)
            record_run(payload, "failed", self._calls.events)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._run_error(failure) from None
        self._state = "completed"
        record_run(payload, "completed", self._calls.events)
        # a signal's audit event is recorded before the run ends
        await workflow.wait_condition(workflow.all_handlers_finished)
        result: RunResult = {
            "output": document,
            "trace": list(self._trace),
            "version": payload["version"],
            "digest": payload["digest"],
            "steps": self._clock.records(),
        }
        if self._calls.events:
            result["events"] = list(self._calls.events)
        return result

    def _run_error(self, failure: StepFailure) -> ApplicationError:
        details = {
            "trace": list(self._trace),
            "version": self._payload["version"],
            "events": list(self._calls.events),
            "steps": self._clock.records(),
        }
        return ApplicationError(failure.cause, details, type=failure.error, non_retryable=True)

    def _validated_input(self, spec: Mapping[str, Any], value: Any) -> Any:
        document = {} if value is None else value
        schema = spec.get("input", {}).get("schema")
        if schema is not None:
            errors = _input_errors(schema, document)
            if errors:
                raise StepFailure("InputInvalid", "; ".join(errors))
        return document

    # -- state machines and DAGs -------------------------------------------------------------

    async def _run_machine(self, steps: Sequence[Step], start: str, document: Any) -> Any:
        """Run a state machine (the workflow, a parallel branch or a map iteration)."""
        by_name = {step["name"]: step for step in steps}
        name: str | None = start
        while name is not None:
            step = by_name.get(name)
            if step is None:
                raise StepFailure("SpecInvalid", f"step {name!r} does not exist")
            try:
                outcome = await self._execute(step, document)
            except StepFailure as failure:
                handler = _catcher(step, failure)
                if handler is None:
                    raise
                self._calls.event(name, "caught", None, failure.error)
                if "resultPath" in handler:
                    document = self._write(document, handler["resultPath"], failure.as_json())
                name = handler["next"]
                continue
            if outcome.writes:
                document = self._write(document, step.get("resultPath", "$"), outcome.result)
                self._record_compensation(step, document)
            name = outcome.next
        return document

    async def _run_dag(self, steps: Sequence[Step], document: Any) -> Any:
        """Run DAG steps as soon as their dependencies are done; a false `when` skips one."""
        names = {step["name"] for step in steps}
        done: set[str] = set()
        state = {"document": document}

        async def run_one(step: Step) -> None:
            needs = list(step.get("dependsOn", []))
            unknown = [need for need in needs if need not in names]
            if unknown:
                raise StepFailure("SpecInvalid", f"{step['name']} depends on unknown {unknown}")
            await workflow.wait_condition(lambda: all(need in done for need in needs))
            try:
                if "when" in step and not self._holds(step["when"], state["document"]):
                    # skipped: never started (not in the trace), its result is null
                    self._skipped.append(step["name"])
                    if step["type"] in _RESULT_TYPES:
                        path = step.get("resultPath", "$")
                        state["document"] = self._write(state["document"], path, None)
                    return
                if step["type"] == "choice":
                    raise StepFailure("SpecInvalid", "a DAG cannot contain choice steps")
                outcome = await self._execute(step, state["document"])
                if outcome.writes:
                    path = step.get("resultPath", "$")
                    state["document"] = self._write(state["document"], path, outcome.result)
                    self._record_compensation(step, state["document"])
            finally:
                done.add(step["name"])

        await _all([run_one(step) for step in steps])
        return state["document"]

    # -- one step ----------------------------------------------------------------------------

    async def _execute(self, step: Step, document: Any) -> _Outcome:
        """Start one step: honour pause and skip, keep trace and current, run its type."""
        name = step["name"]
        if self._paused:
            await workflow.wait_condition(lambda: not self._paused)
        if name in self._skip_requests:
            self._skip_requests.remove(name)
            self._skipped.append(name)
            workflow.logger.info("step %s skipped by signal", name)
            return self._skipped_outcome(step)
        handler = self._handlers().get(step["type"])
        if handler is None:
            raise StepFailure("SpecInvalid", f"step {name} has unknown type {step['type']!r}")
        self._trace.append(name)
        self._current.append(name)
        try:
            with self._spans.step(step), self._clock.timing(name):
                try:
                    return await handler(step, document)
                except DataError as error:
                    raise StepFailure("DataPathError", str(error)) from None
        finally:
            self._current.remove(name)

    def _handlers(self) -> dict[str, Callable[[Step, Any], Awaitable[_Outcome]]]:
        return {
            "task": self._task,
            "choice": self._choice,
            "parallel": self._parallel,
            "map": self._map,
            "wait": self._wait,
            "approval": self._approval,
            "succeed": self._succeed,
            "fail": self._fail,
        }

    def _skipped_outcome(self, step: Step) -> _Outcome:
        if step["type"] in _RESULT_TYPES:
            return _Outcome(_next_of(step), None, writes=True)
        if step["type"] == "choice":
            return _Outcome(step.get("default"))
        if step["type"] in ("succeed", "fail"):
            return _Outcome(None)
        return _Outcome(_next_of(step))

    async def _task(self, step: Step, document: Any) -> _Outcome:
        result = await self._calls.call(step, document, task_input(step, document))
        return _Outcome(_next_of(step), result, writes=True)

    async def _choice(self, step: Step, document: Any) -> _Outcome:
        for rule in step.get("rules", []):
            if self._holds(rule["when"], document):
                return _Outcome(rule["next"])
        if "default" not in step:
            raise StepFailure("NoChoiceMatched", f"no rule of {step['name']} matched")
        return _Outcome(step["default"])

    async def _parallel(self, step: Step, document: Any) -> _Outcome:
        results = await _all(
            [
                self._run_machine(branch["steps"], branch["start"], copy.deepcopy(document))
                for branch in step.get("branches", [])
            ]
        )
        return _Outcome(_next_of(step), results, writes=True)

    async def _map(self, step: Step, document: Any) -> _Outcome:
        items = get_path(document, step["items"])
        if not isinstance(items, list):
            raise DataError(f"{step['items']} is not a list")
        iterations = chunks(items, step.get("batchSize"))
        slots = asyncio.Semaphore(int(step.get("maxConcurrency") or max(len(iterations), 1)))

        async def iteration(item: Any) -> Any:
            async with slots:
                return await self._run_machine(step["steps"], step["start"], item)

        results = await _all([iteration(copy.deepcopy(item)) for item in iterations])
        return _Outcome(_next_of(step), results, writes=True)

    async def _wait(self, step: Step, document: Any) -> _Outcome:
        if "duration" in step:
            seconds = float(step["duration"])
        else:
            text = get_path(document, step["until"])
            try:
                until = datetime.fromisoformat(str(text))
            except ValueError:
                raise DataError(f"{step['until']} is not an RFC 3339 timestamp: {text!r}") from None
            seconds = (until - workflow.now()).total_seconds()
        self._waiting += 1
        try:
            if seconds > 0:
                await workflow.sleep(seconds, summary=step["name"])
        finally:
            self._waiting -= 1
        return _Outcome(_next_of(step))

    async def _approval(self, step: Step, document: Any) -> _Outcome:
        name, signal = step["name"], step["signal"]
        roles = set(step.get("approvers", {}).get("roles", []))
        answers = self._answers.setdefault(signal, [])
        deadline = workflow.now() + _seconds(step["timeout"]) if "timeout" in step else None
        self._waiting += 1
        try:
            while True:
                remaining = (
                    None if deadline is None else (deadline - workflow.now()).total_seconds()
                )
                try:
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError()
                    await workflow.wait_condition(lambda: bool(answers), timeout=remaining)
                except TimeoutError:
                    if "onTimeout" in step:
                        self._clock.handled_failure(name)
                        return _Outcome(step["onTimeout"])
                    raise StepFailure("Timeout", f"approval {name} timed out") from None
                answer = answers.pop(0)
                record = self._approval_record(name, signal, answer)
                audit = {
                    **answer.get("sender", {}),
                    "operation": "signal",
                    "signal": signal,
                    "step": name,
                    "approved": record["approved"],
                }
                if roles and not roles & set(record["roles"]):
                    workflow.logger.warning("approval %s refused: %s", name, record)
                    self._refused.append(record)
                    missing = sorted(roles)
                    refused = {**audit, "rule": "approvers.roles", "missing": missing}
                    await self._audit(SIGNAL_REFUSED, refused)
                    continue
                self._approvals.append(record)
                await self._audit(SIGNAL_ACCEPTED, audit)
                if record["approved"]:
                    return _Outcome(_next_of(step))
                raise StepFailure("ApprovalRejected", f"{name} rejected by {record['by']}")
        finally:
            self._waiting -= 1

    @staticmethod
    def _approval_record(name: str, signal: str, answer: Any) -> dict[str, Any]:
        """What the status shows of an answer: who (never a token), roles, verdict."""
        answer = answer if isinstance(answer, Mapping) else {}
        roles = answer.get("roles")
        record = {
            "step": name,
            "signal": signal,
            "approved": answer.get("approved") is True,
            "by": str(answer.get("by", "")),
            "roles": [str(role) for role in roles] if isinstance(roles, list) else [],
            "at": workflow.now().isoformat(),
        }
        if answer.get("verified"):
            record["verified"] = True
        return record

    # -- who sent a signal, and the audit trail of signals ---------------------------------

    def _sender(self, argument: Any) -> Sender:
        return sender(self._identity, argument, workflow.now())

    async def _refuse(self, signal: str, who: Sender, operation: str, **extra: Any) -> None:
        """Record a signal whose token failed: shown in the status, audited, ignored."""
        workflow.logger.warning("signal %s refused: %s", signal, who.refusal)
        record: dict[str, Any] = {"signal": signal, "by": who.actor, "reason": who.refusal}
        self._refused.append({**record, "at": workflow.now().isoformat(), **extra})
        data = {**who.audit(), **who.extra, "operation": operation, "signal": signal}
        await self._audit(SIGNAL_REFUSED, {**data, "rule": "identity", "reason": who.refusal})

    async def _audit(self, type: str, data: dict[str, Any]) -> None:
        """Record an access audit event through `cpl worker` (activity `cpl.audit`)."""
        info = workflow.info()
        metadata = self._payload["workflow"].get("metadata", {})
        subject = f"{metadata.get('tenant', '')}/{metadata.get('name', '')}"
        event = {
            "type": type,
            "subject": subject,
            "classification": metadata.get("classification"),
            "data": {
                **data,
                "runId": info.workflow_id,
                "workflow": subject,
                "target": self._payload.get("target"),
            },
        }
        try:
            await workflow.execute_activity(
                AUDIT_ACTIVITY,
                event,
                task_queue=info.task_queue,
                schedule_to_close_timeout=_seconds(AUDIT_TIMEOUT),
                start_to_close_timeout=_seconds(10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary="audit",
            )
        except ActivityError as error:
            workflow.logger.error("audit event %s not recorded: %s", type, error)

    async def _succeed(self, step: Step, document: Any) -> _Outcome:
        return _Outcome(None)

    async def _fail(self, step: Step, document: Any) -> _Outcome:
        raise StepFailure(step.get("error", "Failed"), step.get("cause", ""))

    # -- activities, saga and dead letters ---------------------------------------------------

    def _record_compensation(self, step: Step, document: Any) -> None:
        if step["type"] == "task" and "compensation" in step:
            self._compensations.append((step["compensation"], copy.deepcopy(document)))

    async def _fail_run(self, spec: Mapping[str, Any], failure: StepFailure) -> None:
        """Unhandled failure: compensate in reverse order, then hand over to the dead letter."""
        on_error = spec.get("onError", {})
        self._error = failure.as_json()
        workflow.logger.warning("run failed: %s", failure)
        report: list[dict[str, Any]] = []
        if on_error.get("compensate"):
            report = await self._compensate()
        if on_error.get("deadLetter"):
            await self._dead_letter(on_error["deadLetter"], failure, report)
        self._state = "failed"

    async def _compensate(self) -> list[dict[str, Any]]:
        report: list[dict[str, Any]] = []
        while self._compensations:
            name, document = self._compensations.pop()
            step = self._index.get(name)
            if step is None or step.get("type") != "task":
                report.append({"step": name, "status": "failed", "error": "SpecInvalid"})
                continue
            try:
                await self._execute(step, document)
                report.append({"step": name, "status": "completed"})
                self._calls.event(name, "compensated")
            except (StepFailure, DataError) as failure:
                workflow.logger.error("compensation %s failed: %s", name, failure)
                report.append({"step": name, "status": "failed", "error": str(failure)})
        return report

    async def _dead_letter(
        self, logical_queue: str, failure: StepFailure, compensations: list[dict[str, Any]]
    ) -> None:
        payload = self._payload
        metadata = payload["workflow"].get("metadata", {})
        info = workflow.info()
        message: DeadLetterMessage = {
            "queue": (payload.get("deadLetter") or {"queue": logical_queue})["queue"],
            "workflow": {
                "tenant": str(metadata.get("tenant", "")),
                "name": str(metadata.get("name", "")),
            },
            "version": payload["version"],
            "digest": payload["digest"],
            "workflowId": info.workflow_id,
            "runId": info.run_id,
            "input": payload.get("input"),
            "error": failure.as_json(),
            "trace": list(self._trace),
            "compensations": compensations,
        }
        try:
            await workflow.execute_activity(
                DEAD_LETTER_ACTIVITY,
                message,
                task_queue=info.task_queue,
                schedule_to_close_timeout=_seconds(DEAD_LETTER_TIMEOUT),
                start_to_close_timeout=_seconds(10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary="dead-letter",
            )
        except ActivityError as error:
            workflow.logger.error("dead letter to %s failed: %s", message["queue"], error)

    # -- helpers -----------------------------------------------------------------------------

    def _holds(self, condition: Mapping[str, Any], document: Any) -> bool:
        try:
            return evaluate(condition, document)
        except DataError as error:
            raise StepFailure("DataPathError", str(error)) from None

    @staticmethod
    def _write(document: Any, path: str, value: Any) -> Any:
        try:
            return set_path(document, path, value)
        except DataError as error:
            raise StepFailure("DataPathError", str(error)) from None

    @classmethod
    def _index_steps(cls, steps: Sequence[Step]) -> dict[str, Step]:
        """Every step by name, nested ones included (compensations are looked up here)."""
        index: dict[str, Step] = {}
        for step in steps:
            for branch in step.get("branches", []):
                index.update(cls._index_steps(branch.get("steps", [])))
            if step.get("type") == "map":
                index.update(cls._index_steps(step.get("steps", [])))
        for step in steps:  # top-level names win over nested ones
            index[step["name"]] = step
        return index

    # -- signals and queries -----------------------------------------------------------------

    @workflow.signal
    async def pause(self, auth: Any = None) -> None:
        """Stop starting new steps; running ones finish."""
        admitted, event = self._admit("pause", auth)
        if admitted:
            self._paused = True
        await self._audit(*event)

    @workflow.signal
    async def resume(self, auth: Any = None) -> None:
        """Start steps again after `pause`."""
        admitted, event = self._admit("resume", auth)
        if admitted:
            self._paused = False
        await self._audit(*event)

    @workflow.signal
    async def skip(self, step: Any) -> None:
        """Skip `step` the next time it is reached: its result is null. With an identity,
        the argument is `{"step": S, "token": JWT}`."""
        name = str(step.get("step") if isinstance(step, Mapping) else step)
        admitted, event = self._admit("skip", step, name)
        if admitted:
            self._skip_requests.append(name)
        await self._audit(*event)

    def _admit(
        self, signal: str, auth: Any, step: str | None = None
    ) -> tuple[bool, tuple[str, dict[str, Any]]]:
        """Whether an admin signal is admitted, and its audit event: its token verifies and,
        where the workflow declares `access.admin` roles, it holds one of them or names a
        just-in-time grant (grants are checked by `cpl signal`, see docs/security.md).

        The effect is applied by the caller before the event is recorded: a signal's order
        relative to the steps must not wait on the audit."""
        who = self._sender(auth)
        target = {"step": step} if step is not None else {}
        data = {**who.audit(), **who.extra, "operation": "admin", "signal": signal, **target}
        if who.refusal is not None:
            workflow.logger.warning("signal %s refused: %s", signal, who.refusal)
            self._refused.append(
                {"signal": signal, "by": "", "roles": [], "reason": who.refusal, **target}
            )
            return False, (SIGNAL_REFUSED, {**data, "rule": "identity", "reason": who.refusal})
        admin = self._payload["workflow"].get("spec", {}).get("access", {}).get("admin", {})
        roles = set(admin.get("roles", [])) if self._identity is not None else set()
        if roles and not roles & set(who.roles) and "grant" not in who.extra:
            self._refused.append({"signal": signal, "by": who.actor, "roles": list(who.roles)})
            refusal = {"rule": "access.admin", "missing": sorted(roles)}
            return False, (SIGNAL_REFUSED, {**data, **refusal})
        workflow.logger.info("%s by %s", signal, who.actor or "(self-declared)")
        return True, (SIGNAL_ACCEPTED, data)

    @workflow.signal(dynamic=True)
    async def answer(self, name: str, args: Sequence[RawValue]) -> None:
        """Approval answers, kept per signal name until an approval step reads them; with an
        identity, only answers whose token verifies (the others are refused and audited)."""
        value = workflow.payload_converter().from_payload(args[0].payload) if args else None
        who = self._sender(value)
        if who.refusal is not None:
            await self._refuse(name, who, "signal")
            return
        approved = isinstance(value, Mapping) and value.get("approved") is True
        answer = {
            "approved": approved,
            "by": who.actor,
            "roles": list(who.roles),
            "verified": who.verified,
            "sender": {**who.audit(), **who.extra},
        }
        self._answers.setdefault(name, []).append(answer)

    @workflow.query
    def status(self) -> RunStatus:
        """State, running steps, trace and spec version of this run."""
        state = self._state
        if state == "running" and self._paused:
            state = "paused"
        elif state == "running" and self._waiting:
            state = "waiting"
        status: RunStatus = {
            "state": state,
            "current": list(self._current),
            "trace": list(self._trace),
            "version": self._payload["version"],
            "digest": self._payload["digest"],
            "refused": list(self._refused),
            "approvals": list(self._approvals),
            "skipped": list(self._skipped),
            "error": self._error,
            "steps": self._clock.records(),
        }
        if self._calls.events:
            status["events"] = list(self._calls.events)
        return status
