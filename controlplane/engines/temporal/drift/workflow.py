"""The drift workflow: plan the shards, run them as activities on any `cpl worker`, aggregate
one report, and with `sync` wait for an approval before re-applying what drifted.

Deterministic: everything that reads the repo or an engine is an activity. Shard results are
kept by shard id, so a shard retried on another worker (its worker died: no heartbeat within
`heartbeat` seconds) has exactly one result.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from controlplane.engines.temporal.drift import APPROVE_SIGNAL, DRIFT_WORKFLOW

SHARD_ATTEMPTS = 5
FATAL = ("VersionMismatch", "ConfigError")
"""Failures no other shard attempt would change: the run fails, naming them."""


@workflow.defn(name=DRIFT_WORKFLOW)
class CplDriftWorkflow:
    def __init__(self) -> None:
        self._stage = "planning"
        self._approval: dict[str, Any] | None = None
        self._done: dict[str, dict[str, Any]] = {}
        self._drifted: list[list[str]] = []

    @workflow.signal(name=APPROVE_SIGNAL)
    def approve(self, decision: Any) -> None:
        self._approval = decision if isinstance(decision, dict) else {"approved": False}

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {"stage": self._stage, "shards": sorted(self._done), "drifted": self._drifted}

    @workflow.run
    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        quick = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["ConfigError"])
        # every activity heartbeats: a worker that dies hands its work on within `heartbeat`
        beat = timedelta(seconds=request["heartbeat"])
        plan = await workflow.execute_activity(
            "cpl.drift.plan",
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=beat,
            retry_policy=quick,
        )
        request = {**request, "version": plan["version"]}
        self._stage = "reading"
        gate = asyncio.Semaphore(max(1, int(request.get("parallel", 8))))
        reports: dict[str, Any] = {}
        failed: dict[str, str] = {}

        async def one(shard: dict[str, Any]) -> None:
            async with gate:
                try:
                    done = await workflow.execute_activity(
                        "cpl.drift.shard",
                        {"request": request, "shard": shard},
                        start_to_close_timeout=timedelta(seconds=request["shard_timeout"]),
                        heartbeat_timeout=beat,
                        retry_policy=RetryPolicy(
                            maximum_attempts=SHARD_ATTEMPTS,
                            maximum_interval=timedelta(seconds=30),
                            non_retryable_error_types=["ConfigError"],
                        ),
                    )
                except ActivityError as error:
                    cause = error.cause
                    if isinstance(cause, ApplicationError) and cause.type in FATAL:
                        raise cause from None
                    message = cause.message if isinstance(cause, ApplicationError) else None
                    failed[shard["id"]] = message or str(cause or error)
                    return
            reports[shard["id"]] = done["report"]
            self._done[shard["id"]] = {k: v for k, v in done.items() if k != "report"}

        await asyncio.gather(*(one(shard) for shard in plan["shards"]))
        self._stage = "aggregating"
        finished = await workflow.execute_activity(
            "cpl.drift.finish",
            {"request": request, "reports": reports, "failed": failed, "shards": plan["shards"]},
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=beat,
            retry_policy=quick,
        )
        result = {
            "report": finished["report"],
            "shards": [self._done.get(s["id"], {"id": s["id"]}) for s in plan["shards"]],
            "version": plan["version"],
            "sync": None,
        }
        if request.get("sync") and finished["drifted"] and not finished["partial"]:
            result["sync"] = await self._sync(request, finished["drifted"])
        self._stage = "done"
        return result

    async def _sync(self, request: dict[str, Any], drifted: list[list[str]]) -> dict[str, Any]:
        if request.get("approval", True):
            self._drifted = drifted  # what the approver approves (the `status` query)
            self._stage = "waiting for approval"
            try:
                await workflow.wait_condition(
                    lambda: self._approval is not None,
                    timeout=timedelta(seconds=request["approval_timeout"]),
                )
            except TimeoutError:
                return {"status": "expired", "drifted": drifted}
            approval = self._approval or {}
            if approval.get("approved") is not True:
                return {"status": "rejected", "by": approval.get("by"), "drifted": drifted}
        self._stage = "syncing"
        by = (self._approval or {}).get("by")
        try:
            synced = await workflow.execute_activity(
                "cpl.drift.sync",
                {"request": request, "drifted": drifted},
                start_to_close_timeout=timedelta(seconds=request["shard_timeout"]),
                heartbeat_timeout=timedelta(seconds=request["heartbeat"]),
                # apply records the state after every resource: run again, it converges
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=list(FATAL)),
            )
        except ActivityError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
            return {"status": "failed", "error": message, "by": by, "drifted": drifted}
        return {"status": "synced", "exit": synced["exit"], "by": by, "drifted": drifted}
