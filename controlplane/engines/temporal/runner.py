"""Interpreter runs on a Temporal target: connect, start, wait for how a run ended, signal it,
and host the interpreter (`TemporalRunner` and `serve_worker`, the bundle's runner and worker).

The calls `cpl run`, `cpl signal`, `cpl worker` (and the tests) make."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal as signals
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from controlplane.engines.faults import FaultPlan
from controlplane.engines.runs import RunEvent, RunOutcome, RunRecord, RunState, StepTiming
from controlplane.engines.temporal.codec import ClaimCheckError
from controlplane.engines.temporal.encryption import EncryptionError, target_converter
from controlplane.engines.temporal.history import checked_steps, finished_runs
from controlplane.engines.temporal.runtime.payload import (
    INTERPRETER_WORKFLOW,
    FaultSpec,
    RunResult,
    SpecPayload,
    make_run_payload,
)
from controlplane.engines.temporal.telemetry import tracing_interceptors
from controlplane.engines.temporal.translate import TemporalTranslator, spec_payload
from controlplane.engines.timeouts import Timeouts
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

if TYPE_CHECKING:
    from controlplane.deadletters.outbox import Outbox
    from controlplane.engines.fanout import DriftHost
    from controlplane.engines.temporal.runtime.activities import AuditRecord

__all__ = [
    "RunOutcome",
    "RunState",
    "TemporalRunner",
    "connect",
    "run_outcome",
    "serve_worker",
    "start_run",
]


async def start_run(
    client: Client,
    spec: SpecPayload,
    run_input: Any,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    faults: list[FaultSpec] | None = None,
    tracing: bool = False,
    **start_options: Any,
) -> WorkflowHandle[Any, RunResult]:
    """Start one run of a published spec version on the interpreter's `task_queue`.

    The spec's `timeout` becomes the run's execution timeout; its version and digest are kept
    in the memo (the interpreter also upserts them) so every run can be traced to its spec.
    `tracing` asks the interpreter for a span per step (the artifact's `tracing.enabled`).
    `start_options` go to `Client.start_workflow` (`cpl serve events`: a start signal and an
    id reuse policy).
    """
    metadata = spec["workflow"].get("metadata", {})
    timeout = spec["workflow"].get("spec", {}).get("timeout")
    name = f"{metadata.get('tenant', 'cpl')}-{metadata.get('name', 'run')}"
    return await client.start_workflow(
        INTERPRETER_WORKFLOW,
        make_run_payload(spec, run_input, faults, tracing=tracing),
        id=workflow_id or f"{name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        execution_timeout=timedelta(seconds=float(timeout)) if timeout else None,
        memo={"cpl.version": spec["version"], "cpl.digest": spec["digest"]},
        result_type=RunResult,
        **start_options,
    )


async def connect(
    address: str,
    namespace: str,
    timeout: float | None = None,
    data_converter: DataConverter | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client for `namespace` at `address`; EngineError naming the address when unreachable
    or, with a `timeout` (seconds), when it does not answer in time (a frozen server accepts
    the connection and never replies). `data_converter`: e.g. the payload-offload codec's.
    While a command is traced (controlplane/tracing.py) the client, and a worker made with
    it, carry the OpenTelemetry interceptor."""
    options: dict[str, Any] = {"namespace": namespace, "interceptors": tracing_interceptors()}
    if data_converter is not None:
        options["data_converter"] = data_converter
    if runtime is not None:  # e.g. the worker's, exporting metrics
        options["runtime"] = runtime
    try:
        return await asyncio.wait_for(Client.connect(address, **options), timeout)
    except TimeoutError:
        raise EngineError(
            f"the Temporal server at {address} (namespace {namespace}) did not answer within "
            f"{timeout:g}s"
        ) from None
    except Exception as error:  # the SDK raises RuntimeError for any connect failure
        raise EngineError(
            f"cannot reach the Temporal server at {address} (namespace {namespace}): {error}"
        ) from None


async def run_outcome(handle: WorkflowHandle[Any, Any], timeout: float | None) -> RunOutcome:
    """Wait up to `timeout` seconds for a run to close and say how it ended.

    A run still open after `timeout` is reported `running` with its trace so far (from the
    `status` query). Failures carry the error name and cause, and the trace the interpreter
    attached to its ApplicationError.
    """
    try:
        result = await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        trace, steps = await _progress(handle)
        return {"status": "running", "output": None, "error": None, "trace": trace, "steps": steps}
    except WorkflowFailureError as failure:
        outcome = _failed(failure.cause)
        if not outcome["trace"] and outcome["status"] == "failed":
            # Timed out or terminated: the engine, not the interpreter, ended the run, so no
            # error carries the trace; a query replays the closed run's history on a worker.
            outcome["trace"], outcome["steps"] = await _progress(handle, CLOSED_QUERY_TIMEOUT)
        return outcome
    return {
        "status": "succeeded",
        "output": result.get("output"),
        "error": None,
        "trace": list(result.get("trace", [])),
        "events": _events(result.get("events")),
        "steps": checked_steps(result.get("steps")),
    }


MAX_EVENTS = 1000
"""Events read from a run (the interpreter keeps no more; an engine answer is bounded)."""


def _events(value: Any) -> list[RunEvent]:
    """The interpreter's events, checked field by field (they come from the engine)."""
    events: list[RunEvent] = []
    for item in value if isinstance(value, list) else []:
        if len(events) >= MAX_EVENTS:
            break
        if not isinstance(item, dict) or not isinstance(item.get("step"), str):
            continue
        attempt, error = item.get("attempt"), item.get("error")
        events.append(
            {
                "step": item["step"],
                "kind": item.get("kind"),  # type: ignore[typeddict-item]
                "attempt": attempt if isinstance(attempt, int) else None,
                "error": str(error) if error is not None else None,
            }
        )
    return events


def _failed(cause: BaseException | None) -> RunOutcome:
    if isinstance(cause, CancelledError):
        return {"status": "cancelled", "output": None, "error": None, "trace": []}
    trace: list[str] = []
    events: list[RunEvent] = []
    steps: list[StepTiming] = []
    if isinstance(cause, ApplicationError):
        error = {"error": cause.type or "Error", "cause": cause.message}
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict):
            trace = [str(step) for step in details.get("trace", [])]
            events = _events(details.get("events"))
            steps = checked_steps(details.get("steps"))
    elif isinstance(cause, TerminatedError):
        error = {"error": "Terminated", "cause": cause.message}
    elif isinstance(cause, TemporalTimeoutError):
        error = {"error": "Timeout", "cause": "the run exceeded its timeout"}
    else:
        error = {"error": type(cause).__name__, "cause": str(cause)}
    return {
        "status": "failed",
        "output": None,
        "error": error,
        "trace": trace,
        "events": events,
        "steps": steps,
    }


CLOSED_QUERY_TIMEOUT = 5.0
"""Seconds to wait for a worker to answer the status query of a closed run."""


async def _progress(
    handle: WorkflowHandle[Any, Any], timeout: float | None = None
) -> tuple[list[str], list[StepTiming]]:
    """The trace and step timings of the `status` query (empty when no worker answers)."""
    try:
        status = await asyncio.wait_for(handle.query("status"), timeout)
    except (RPCError, WorkflowQueryFailedError, TimeoutError):
        return [], []
    return [str(step) for step in status.get("trace", [])], checked_steps(status.get("steps"))


class TemporalRunner:
    """The bundle's runner: interpreter runs of a target's published spec versions.

    Each call connects anew (`cpl run` makes one or two calls per process). With the
    `environment`, its clients resolve offloaded payloads (docs/runtime.md, "Payload
    offload"); a start offloads by the started workflow's `payload.offload`. Payloads of
    workflows with `security.encryption.key` are encrypted ("Payload encryption"); `repo`
    holds the local key rings and the workflows whose signals are encrypted.
    """

    signals = True

    def __init__(self, environment: Environment | None = None, repo: Path | None = None) -> None:
        self.environment = environment
        self.repo = repo

    def _converter(
        self, target: Target, workflows: tuple[Workflow, ...] = ()
    ) -> DataConverter | None:
        if self.environment is None:
            return None
        return target_converter(self.environment, target, workflows, repo=self.repo)

    def _repo_workflows(self) -> tuple[Workflow, ...]:
        """The control repo's workflows (a signal is encrypted when its run's is)."""
        if self.repo is None:
            return ()
        from controlplane.spec.load import load_workflows

        return tuple(loaded.model for loaded in load_workflows(self.repo).workflows)

    def start(
        self,
        workflow: Workflow,
        target: Target,
        environment: Environment,
        run_input: Any,
        *,
        faults: FaultPlan | None = None,
    ) -> str:
        """Render → spec payload → start the interpreter run on the target's task queue
        (with the fault plan in its payload)."""
        address, namespace, task_queue = _settings(target)
        artifact = TemporalTranslator().render(workflow, target, environment)
        payload = _with_fetched_keys(spec_payload(artifact))
        tracing = bool((artifact.document.get("tracing") or {}).get("enabled"))
        self.environment = environment
        converter = self._converter(target, (workflow,))
        injected = fault_specs(faults) if faults is not None else None

        async def go() -> str:
            client = await connect(address, namespace, Timeouts.of(target).connect, converter)
            try:
                handle = await start_run(
                    client,
                    payload,
                    run_input,
                    task_queue=task_queue,
                    faults=injected,
                    tracing=tracing,
                )
            except RPCError as error:
                raise EngineError(
                    f"Temporal at {address} refused to start {workflow.key} in namespace "
                    f"{namespace}: {error.message}"
                ) from None
            except (ClaimCheckError, EncryptionError) as error:
                raise EngineError(f"cannot start {workflow.key}: {error}") from None
            return handle.id

        return asyncio.run(go())

    def outcome(self, target: Target, run_id: str, timeout: float) -> RunOutcome:
        address, namespace, _ = _settings(target)

        converter = self._converter(target)

        async def go() -> RunOutcome:
            client = await connect(address, namespace, Timeouts.of(target).connect, converter)
            handle = client.get_workflow_handle(run_id, result_type=RunResult)
            try:
                return await run_outcome(handle, timeout)
            except (ClaimCheckError, EncryptionError) as error:
                raise EngineError(f"cannot read the result of run '{run_id}': {error}") from None

        return asyncio.run(go())

    def signal(self, target: Target, run_id: str, name: str, args: list[Any]) -> None:
        address, namespace, _ = _settings(target)

        converter = self._converter(target, self._repo_workflows())

        async def go() -> None:
            client = await connect(address, namespace, Timeouts.of(target).connect, converter)
            try:
                await client.get_workflow_handle(run_id).signal(name, *args)
            except EncryptionError as error:
                raise EngineError(f"signal {name} to run '{run_id}': {error}") from None
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    raise EngineError(
                        f"no running run '{run_id}' in namespace {namespace} at {address}: the "
                        f"run id is unknown or the run has finished ({error.message})"
                    ) from None
                raise EngineError(
                    f"signal {name} to run '{run_id}' failed: {error.message}"
                ) from None

        asyncio.run(go())

    def runs(
        self,
        workflow: Workflow,
        target: Target,
        *,
        limit: int,
        since: dt.datetime | None = None,
        timings: int = 0,
    ) -> list[RunRecord]:
        """The workflow's closed runs on the target (`history.finished_runs`)."""
        address, namespace, _ = _settings(target)
        converter = self._converter(target, (workflow,))

        async def go() -> list[RunRecord]:
            client = await connect(address, namespace, Timeouts.of(target).connect, converter)
            return await finished_runs(client, workflow, limit=limit, since=since, timings=timings)

        return asyncio.run(go())


def _with_fetched_keys(payload: SpecPayload) -> SpecPayload:
    """The payload with the keys of an https JWKS added to its identity (the artifact holds
    only the keys known without the network)."""
    identity = payload.get("identity")
    if identity is None or "jwks" not in identity:
        return payload
    from controlplane.identity.jwks import fetch_jwks

    keys = [*identity["keys"], *fetch_jwks(identity["jwks"])]
    return {**payload, "identity": {**identity, "keys": keys}}


def serve_worker(
    target: Target,
    *,
    dead_letters: Outbox | None,
    announce: Callable[[str], None],
    environment: Environment | None = None,
    workflows: tuple[Workflow, ...] = (),
    drift: DriftHost | None = None,
    repo: Path | None = None,
    metrics: str | None = None,
    audit: AuditRecord | None = None,
) -> None:
    """The bundle's worker: cpl's interpreter on the target's task queue until SIGINT/SIGTERM,
    then running workflow tasks finish. Dead letters go through `dead_letters` (whose spool
    is re-sent at start and periodically), else to the log only. With the `environment`,
    payloads above the smallest offload threshold of the target's `workflows` go to their
    store (`codec.target_converter`), and those of workflows with `security.encryption.key`
    are encrypted (`encryption.target_converter`, local key rings in `repo`). `drift` hosts
    the shards of `cpl drift --on temporal`. `metrics` (`host:port`) serves the interpreter's
    metrics for Prometheus there (`runtime/metrics.py`), with duration buckets at the
    thresholds of `workflows`; `audit` records the interpreter's signal events (accepted,
    refused) in the audit trail.
    """
    converter = target_converter(environment, target, workflows, repo=repo) if environment else None
    runtime = metrics_runtime(metrics, workflows) if metrics else None
    asyncio.run(_serve(target, dead_letters, announce, converter, drift, runtime, metrics, audit))


def metrics_runtime(address: str, workflows: tuple[Workflow, ...] = ()) -> Runtime:
    """The worker's temporalio Runtime, serving Prometheus metrics on `address`."""
    from controlplane.engines.temporal.runtime.metrics import telemetry_runtime
    from controlplane.monitoring.rules import Monitored, duration_buckets
    from controlplane.spec.normalize import to_document

    monitored = [Monitored.of(to_document(workflow), "") for workflow in workflows]
    try:
        return telemetry_runtime(address, duration_buckets(monitored))
    except Exception as error:  # the SDK raises RuntimeError when it cannot bind
        raise EngineError(f"cannot serve worker metrics on {address}: {error}") from None


async def _serve(
    target: Target,
    outbox: Outbox | None,
    announce: Callable[[str], None],
    converter: DataConverter | None = None,
    drift: DriftHost | None = None,
    runtime: Runtime | None = None,
    metrics: str | None = None,
    audit: AuditRecord | None = None,
) -> None:
    # imported here: the worker loads the workflow sandbox, which clients and runs never need
    from controlplane.engines.temporal.runtime.activities import AuditRecorder, DeadLetterHandOff
    from controlplane.engines.temporal.runtime.worker import build_worker

    address, namespace, task_queue = _settings(target)
    client = await connect(address, namespace, Timeouts.of(target).connect, converter, runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signals.SIGINT, signals.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    hand_off = DeadLetterHandOff(outbox, target)
    worker = build_worker(client, task_queue, hand_off, drift=drift, audit=AuditRecorder(audit))
    resend = asyncio.create_task(hand_off.resend_periodically())
    try:
        async with worker:
            announce(
                f"cpl worker: interpreter on task queue {task_queue} of namespace "
                f"{namespace} at {address}"
                + (f", metrics on http://{metrics}/metrics" if metrics else "")
                + " (Ctrl-C to stop)"
            )
            await stop.wait()
            announce("stopping: waiting for running workflow tasks…")
    except RuntimeError as error:  # the worker failed to poll (namespace missing, server gone)
        raise EngineError(f"the worker for {namespace} at {address} failed: {error}") from None
    finally:
        resend.cancel()
        for number in (signals.SIGINT, signals.SIGTERM):
            loop.remove_signal_handler(number)


def fault_specs(plan: FaultPlan) -> list[FaultSpec]:
    """The plan's faults as the interpreter reads them (its outages are carried out around
    the run by `cpl run`, see controlplane/outages.py)."""
    return [
        {
            "step": fault.step,
            "attempts": list(fault.attempts) if fault.attempts is not None else None,
            "error": fault.error,
            "cause": fault.cause,
            "timeout": fault.timeout,
            "delay": fault.delay.seconds if fault.delay is not None else None,
        }
        for fault in plan.faults
    ]


def _settings(target: Target) -> tuple[str, str, str]:
    """address, namespace, task queue (the environment loader made sure they are set)."""
    assert target.address and target.namespace and target.task_queue
    return target.address, target.namespace, target.task_queue
