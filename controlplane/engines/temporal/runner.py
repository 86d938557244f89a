"""Interpreter runs on a Temporal target: connect, start, and wait for how a run ended.

The calls `cpl run` and `cpl signal` (and the tests) make."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any, Literal, TypedDict

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError

from controlplane.engines.temporal.runtime.payload import (
    INTERPRETER_WORKFLOW,
    RunResult,
    SpecPayload,
    make_run_payload,
)
from controlplane.errors import EngineError


async def start_run(
    client: Client,
    spec: SpecPayload,
    run_input: Any,
    *,
    task_queue: str,
    workflow_id: str | None = None,
) -> WorkflowHandle[Any, RunResult]:
    """Start one run of a published spec version on the interpreter's `task_queue`.

    The spec's `timeout` becomes the run's execution timeout; its version and digest are kept
    in the memo (the interpreter also upserts them) so every run can be traced to its spec.
    """
    metadata = spec["workflow"].get("metadata", {})
    timeout = spec["workflow"].get("spec", {}).get("timeout")
    name = f"{metadata.get('tenant', 'cpl')}-{metadata.get('name', 'run')}"
    return await client.start_workflow(
        INTERPRETER_WORKFLOW,
        make_run_payload(spec, run_input),
        id=workflow_id or f"{name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        execution_timeout=timedelta(seconds=float(timeout)) if timeout else None,
        memo={"cpl.version": spec["version"], "cpl.digest": spec["digest"]},
        result_type=RunResult,
    )


RunState = Literal["running", "succeeded", "failed", "cancelled"]


class RunOutcome(TypedDict):
    """Where a run stands, engine-neutral (the `status/output/error/trace` of `cpl run`)."""

    status: RunState
    output: Any
    error: dict[str, str] | None
    trace: list[str]


async def connect(address: str, namespace: str) -> Client:
    """A client for `namespace` at `address`; EngineError naming the address when unreachable."""
    try:
        return await Client.connect(address, namespace=namespace)
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
        return {"status": "running", "output": None, "error": None, "trace": await _trace(handle)}
    except WorkflowFailureError as failure:
        return _failed(failure.cause)
    return {
        "status": "succeeded",
        "output": result.get("output"),
        "error": None,
        "trace": list(result.get("trace", [])),
    }


def _failed(cause: BaseException | None) -> RunOutcome:
    if isinstance(cause, CancelledError):
        return {"status": "cancelled", "output": None, "error": None, "trace": []}
    trace: list[str] = []
    if isinstance(cause, ApplicationError):
        error = {"error": cause.type or "Error", "cause": cause.message}
        details = cause.details[0] if cause.details else None
        if isinstance(details, dict):
            trace = [str(step) for step in details.get("trace", [])]
    elif isinstance(cause, TerminatedError):
        error = {"error": "Terminated", "cause": cause.message}
    elif isinstance(cause, TemporalTimeoutError):
        error = {"error": "Timeout", "cause": "the run exceeded its timeout"}
    else:
        error = {"error": type(cause).__name__, "cause": str(cause)}
    return {"status": "failed", "output": None, "error": error, "trace": trace}


async def _trace(handle: WorkflowHandle[Any, Any]) -> list[str]:
    try:
        status = await handle.query("status")
    except (RPCError, WorkflowQueryFailedError):
        return []
    return [str(step) for step in status.get("trace", [])]
