"""The schedule of an environment's drift run (`spec.drift.schedule`), kept by `cpl apply`.

One schedule per environment, `cpl-drift-<environment>`, in the namespace of the target that
runs the drift workflow, starting it at the cron (UTC) with overlapping runs skipped. It carries
the memo `cpl.drift` so a drift run does not call it unmanaged: it belongs to cpl, not to a
workflow spec.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from controlplane.engines.temporal.drift import DRIFT_WORKFLOW
from controlplane.engines.temporal.runner import connect
from controlplane.engines.timeouts import Timeouts
from controlplane.errors import EngineError
from controlplane.spec.environment import Target

DRIFT_MEMO = "cpl.drift"
"""Memo key of the drift schedule (value: the environment's name)."""
STAMP = "cpl:drift="
"""The cron's comment: a digest of what the schedule does (Temporal keeps a cron as calendar
specs, so the comment is how apply recognises an unchanged schedule)."""


def schedule_id(environment: str) -> str:
    return f"cpl-drift-{environment}"


def keep_schedule(
    target: Target, environment: str, cron: str | None, request: dict[str, Any]
) -> Literal["created", "updated", "unchanged", "removed", "absent"]:
    """Create or update the drift schedule at `cron`, or remove it when `cron` is None."""
    assert target.address and target.namespace and target.task_queue
    address, namespace, queue = target.address, target.namespace, target.task_queue
    name = schedule_id(environment)

    async def go() -> Literal["created", "updated", "unchanged", "removed", "absent"]:
        client = await connect(address, namespace, Timeouts.of(target).connect)
        handle = client.get_schedule_handle(name)
        try:
            if cron is None:
                return await _remove(client, name)
            stamp = hashlib.sha256(
                json.dumps([cron, queue, request], sort_keys=True).encode()
            ).hexdigest()[:16]
            wanted = Schedule(
                action=ScheduleActionStartWorkflow(
                    DRIFT_WORKFLOW,
                    request,
                    id=name,
                    task_queue=queue,
                    memo={DRIFT_MEMO: environment},
                ),
                spec=ScheduleSpec(
                    cron_expressions=[f"{cron} # {STAMP}{stamp}"], time_zone_name="UTC"
                ),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            )
            try:
                await client.create_schedule(name, wanted, memo={DRIFT_MEMO: environment})
                return "created"
            except ScheduleAlreadyRunningError:
                pass
            calendars = list((await handle.describe()).schedule.spec.calendars)
            if [c.comment for c in calendars] == [f"{STAMP}{stamp}"]:
                return "unchanged"

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=wanted)

            await handle.update(replace)
            return "updated"
        except RPCError as error:
            raise EngineError(
                f"the drift schedule {name} in namespace {namespace} at {address}: {error.message}"
            ) from None

    return asyncio.run(go())


async def _remove(client: Client, name: str) -> Literal["removed", "absent"]:
    try:
        await client.get_schedule_handle(name).delete()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return "absent"
        raise
    return "removed"
