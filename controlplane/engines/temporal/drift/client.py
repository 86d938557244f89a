"""Start the drift workflow on a Temporal target and wait for its result (`cpl drift --on
temporal`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from controlplane.engines.temporal.drift import DRIFT_WORKFLOW
from controlplane.engines.temporal.runner import connect
from controlplane.engines.timeouts import Timeouts
from controlplane.errors import ConfigError, EngineError
from controlplane.spec.environment import Target


def run_id_for(environment: str) -> str:
    return f"cpl-drift-{environment}-{uuid.uuid4().hex[:12]}"


def run_drift(
    target: Target,
    request: dict[str, Any],
    *,
    started: Callable[[str], None] = lambda run_id: None,
    unattended: Callable[[], None] = lambda: None,
    converter: DataConverter | None = None,
    awaiting: Callable[[list[tuple[str, str]]], None] | None = None,
) -> dict[str, Any]:
    """Start the drift workflow on the target's task queue, call `started(run id)` (and
    `unattended()` when no worker polls the queue: the run waits for one), wait for its
    result. EngineError when the server refuses or the run fails. `converter`: the target's
    (`codec.target_converter`), which reads a report the workers offloaded. `awaiting` is
    called once with the drifted (workflow, target) pairs when the run waits for approval."""
    assert target.address and target.namespace and target.task_queue
    address, namespace, queue = target.address, target.namespace, target.task_queue

    async def go() -> dict[str, Any]:
        client = await connect(address, namespace, Timeouts.of(target).connect, converter)
        run_id = run_id_for(request["environment"])
        try:
            handle = await client.start_workflow(
                DRIFT_WORKFLOW, request, id=run_id, task_queue=queue, result_type=dict
            )
        except RPCError as error:
            raise EngineError(
                f"Temporal at {address} refused to start the drift run in namespace "
                f"{namespace}: {error.message}"
            ) from None
        started(run_id)
        if not await _polled(client, namespace, queue):
            unattended()
        watcher = asyncio.ensure_future(_watch(handle, awaiting)) if awaiting else None
        try:
            result: dict[str, Any] = await handle.result()
        except WorkflowFailureError as failure:
            cause: BaseException | None = failure.cause
            while cause is not None and not isinstance(cause, ApplicationError):
                cause = cause.__cause__
            if isinstance(cause, ApplicationError) and cause.type in ("ConfigError",):
                raise ConfigError(f"drift run {run_id}: {cause.message}") from None
            message = cause.message if isinstance(cause, ApplicationError) else str(failure)
            raise EngineError(f"drift run {run_id} failed: {message}") from None
        finally:
            if watcher is not None:
                watcher.cancel()
        return {**result, "runId": run_id}

    return asyncio.run(go())


async def _polled(client: Client, namespace: str, queue: str) -> bool:
    """Whether a worker polled the queue's activities lately (unknown counts as yes)."""
    request = DescribeTaskQueueRequest(
        namespace=namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    try:
        described = await client.workflow_service.describe_task_queue(request)
    except RPCError:
        return True
    return bool(described.pollers)


WATCH_SECONDS = 2.0
MAX_LISTED = 1000
"""Drifted pairs read from the `status` query at most (an engine answer is bounded)."""


async def _watch(
    handle: WorkflowHandle[Any, Any], awaiting: Callable[[list[tuple[str, str]]], None]
) -> None:
    """Poll the run's `status` until it waits for approval, then call `awaiting` once."""
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            status = await handle.query("status")
        except (RPCError, WorkflowQueryFailedError):
            continue  # no worker answered yet: the next poll asks again
        if isinstance(status, dict) and status.get("stage") == "waiting for approval":
            drifted = status.get("drifted")
            pairs = [
                (str(pair[0]), str(pair[1]))
                for pair in (drifted if isinstance(drifted, list) else [])[:MAX_LISTED]
                if isinstance(pair, list) and len(pair) == 2
            ]
            awaiting(pairs)
            return
