"""Start the drift workflow on a Temporal target and wait for its result (`cpl drift --on
temporal`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowFailureError
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
) -> dict[str, Any]:
    """Start the drift workflow on the target's task queue, call `started(run id)`, wait for
    its result. EngineError when the server refuses or the run fails."""
    assert target.address and target.namespace and target.task_queue
    address, namespace, queue = target.address, target.namespace, target.task_queue

    async def go() -> dict[str, Any]:
        client = await connect(address, namespace, Timeouts.of(target).connect)
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
        return {**result, "runId": run_id}

    return asyncio.run(go())
