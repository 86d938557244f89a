"""The drift workflow's activities, hosted by every `cpl worker`: thin async wrappers around a
`DriftHost` (the same code as a local `cpl drift`) that heartbeat while it works.

A shard runs on a thread while the activity heartbeats every third of its heartbeat timeout:
a worker that dies stops heartbeating, and Temporal gives the shard to another worker. A
worker whose repo is at another version refuses the shard (another worker may take it); after
a few refusals the run fails, naming both versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from controlplane.engines.fanout import DriftHost, VersionMismatch
from controlplane.errors import ConfigError, CplError

Result = TypeVar("Result")

REFUSALS = 3
"""Attempts a shard may be refused for a version mismatch before the run fails."""


class DriftActivities:
    def __init__(self, host: DriftHost) -> None:
        self.host = host

    def all(self) -> list[Callable[..., Any]]:
        return [self.plan, self.shard, self.finish, self.sync]

    @activity.defn(name="cpl.drift.plan")
    async def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        return await _working(lambda: self.host.plan(request))

    @activity.defn(name="cpl.drift.shard")
    async def shard(self, task: dict[str, Any]) -> dict[str, Any]:
        info = activity.info()
        report = await _working(lambda: self.host.shard(task["request"], task["shard"]))
        return {
            "id": task["shard"]["id"],
            "report": report,
            "worker": _identity(),
            "attempt": info.attempt,
        }

    @activity.defn(name="cpl.drift.finish")
    async def finish(self, task: dict[str, Any]) -> dict[str, Any]:
        return await _working(
            lambda: self.host.finish(
                task["request"], {"reports": task["reports"], "failed": task["failed"]}
            )
        )

    @activity.defn(name="cpl.drift.sync")
    async def sync(self, task: dict[str, Any]) -> dict[str, Any]:
        return await _working(lambda: self.host.sync(task["request"], task["drifted"]))


def _identity() -> str:
    """This worker process: `<pid>@<host>` (which worker computed a shard)."""
    import os
    import socket

    return f"{os.getpid()}@{socket.gethostname()}"


async def _working(work: Callable[[], Result]) -> Result:
    """Run `work` on a thread, heartbeating until it returns; its errors as Temporal sees them."""
    timeout = activity.info().heartbeat_timeout
    every = timeout.total_seconds() / 3 if timeout else 10.0
    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    except VersionMismatch as error:
        final = activity.info().attempt >= REFUSALS
        raise ApplicationError(str(error), type="VersionMismatch", non_retryable=final) from None
    except ConfigError as error:  # invalid specs or environment: no attempt changes that
        raise ApplicationError(error.message, type="ConfigError", non_retryable=True) from None
    except CplError as error:  # an engine: maybe better on the next attempt
        raise ApplicationError(error.message, type=type(error).__name__) from None
