"""`cpl drift --on temporal`: the run fanned out on Temporal, and the host behind the
workflow's activities in `cpl worker` — the same functions as a local `cpl drift`
(`drift_runs.py`: prepare, run_drift; `drift/fanout.py`: shards, aggregation; `cli/deploy.py`:
sync).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.cli.deploy import sync as sync_drifted
from controlplane.cli.output import console_for, echo
from controlplane.drift import DriftReport, ReadFailure
from controlplane.drift.audit import record_drift
from controlplane.drift.fanout import (
    SHARD_SIZE,
    Shard,
    aggregate,
    pack,
    plan_shards,
    repo_version,
    report_from_wire,
    report_to_wire,
    unpack,
    version_mismatch,
)
from controlplane.drift_runs import (
    Prepared,
    classifications,
    drift_request,
    hosting_target,
    prepare,
    run_drift,
)
from controlplane.engines.fanout import VersionMismatch
from controlplane.errors import CplError, EngineError
from controlplane.spec.load import load_environment


@dataclass(frozen=True)
class FannedOut:
    """What a drift run on Temporal returned: the report, the run, its shards, its sync."""

    report: DriftReport
    run_id: str
    target: str
    shards: list[dict[str, Any]]
    sync: dict[str, Any] | None

    def sync_exit(self, count: int, report_exit: int) -> int:
        """What `cpl drift --sync` exits with (and says) after the workflow's sync step."""
        outcome = self.sync or {}
        console = console_for(err=True)
        status, by = outcome.get("status"), outcome.get("by")
        if status == "synced":
            who = f", approved by {by}" if by else ""
            if outcome.get("error"):  # apply refused (policy, lock): its exit code
                console.print(f"error: {outcome['error']}", style="red", markup=False)
                return int(outcome["exit"])
            console.print(
                f"synced {count} drifted resource(s) in run {self.run_id}{who}", markup=False
            )
            return int(outcome["exit"])
        if status == "failed":
            console.print(
                f"the sync failed in run {self.run_id}: {outcome.get('error')}", markup=False
            )
            return 1
        reason = {"rejected": "the approval was refused", "expired": "no approval came in time"}
        console.print(
            f"not syncing: {reason.get(str(status), 'the run did not sync')} (run {self.run_id})",
            markup=False,
        )
        return report_exit


def drift_on_temporal(
    repo: Path,
    env_name: str,
    *,
    tenants: tuple[str, ...],
    targets: tuple[str, ...],
    concurrency: int,
    on_target: str | None,
    sync: bool,
    yes: bool,
) -> FannedOut:
    """Start the drift workflow, tell how to approve a sync, wait for the report."""
    from controlplane.engines.temporal.codec import target_converter
    from controlplane.engines.temporal.drift.client import run_drift as run_on_temporal

    environment = load_environment(repo, env_name)
    target = hosting_target(environment, on_target)
    request = drift_request(
        repo,
        environment,
        tenants=tenants,
        targets=targets,
        concurrency=concurrency,
        sync=sync,
        yes=yes,
    )
    request["started"] = dt.datetime.now(dt.UTC).isoformat()

    run: dict[str, str] = {}

    def started(run_id: str) -> None:
        run["id"] = run_id
        echo(f"drift run {run_id} on {target.name} (task queue {target.task_queue})", err=True)

    def awaiting(drifted: list[tuple[str, str]]) -> None:
        echo(f"{len(drifted)} drifted resource(s) wait for approval to be re-applied:", err=True)
        for workflow, on in drifted:
            echo(f"  {workflow} on {on}", err=True)
        approval = json.dumps({"approved": True, "by": "NAME"})
        echo(
            f"approve: cpl signal {run['id']} approve-sync '{approval}' --env "
            f'{environment.name} --target {target.name} (or "approved": false to refuse)',
            err=True,
        )

    def unattended() -> None:
        echo(
            f"warning: no cpl worker polls task queue {target.task_queue} of namespace "
            f"{target.namespace}: the run waits for one (cpl worker --env {environment.name} "
            f"--target {target.name})",
            err=True,
        )

    converter = target_converter(environment, target)  # reads reports workers offloaded
    result = run_on_temporal(
        target,
        request,
        started=started,
        unattended=unattended,
        converter=converter,
        awaiting=awaiting if sync and request["approval"] else None,
    )
    try:
        report = report_from_wire(unpack(result["report"]))
    except (ValueError, KeyError, TypeError) as error:  # the engine's answer is checked
        raise EngineError(f"drift run {result.get('runId')}: unreadable report ({error})") from None
    return FannedOut(
        report=report,
        run_id=str(result.get("runId", "")),
        target=target.name,
        shards=list(result.get("shards") or []),
        sync=result.get("sync"),
    )


class FanoutHost:
    """The `DriftHost` of `cpl worker`: shards computed from the worker's own repo, which
    must be at the version of the run."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._prepared: dict[tuple[str, str], Prepared] = {}

    # -- the activities --------------------------------------------------------------------

    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        ready, version = self._ready(request)
        shards = plan_shards(
            ready.environment,
            ready.desired,
            tenants=request["tenants"],
            targets=request["targets"],
            size=int(request.get("shard_size") or SHARD_SIZE),
        )
        return {"version": version, "shards": [shard.to_json() for shard in shards]}

    def shard(self, request: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
        ready, _ = self._ready(request)
        report = run_drift(
            self.repo,
            request["environment"],
            tenants=tuple(request["tenants"]),
            concurrency=int(request["concurrency"]),
            scope=Shard.from_json(shard).scope(),
            prepared=ready,
            record=False,
        )
        return pack(report_to_wire(report))

    def finish(self, request: dict[str, Any], reports: dict[str, Any]) -> dict[str, Any]:
        ready, _ = self._ready(request)
        environment = ready.environment
        shards = {key: report_from_wire(unpack(doc)) for key, doc in reports["reports"].items()}
        for key, message in sorted(reports["failed"].items()):
            target = environment.target(key.split("/", 1)[0])
            failure = ReadFailure(target.name, target.engine, f"shard {key} failed: {message}")
            shards[key] = DriftReport(environment.name, (), (failure,))
        began = request.get("started")
        started = dt.datetime.fromisoformat(began) if began else None
        report = aggregate(
            environment,
            shards,
            tenants=request["tenants"],
            targets=request["targets"],
            started=started,
            duration=(dt.datetime.now(dt.UTC) - started).total_seconds() if started else None,
        )
        record_drift(self.repo, environment, report, classifications(ready.loaded))
        drifted = sorted(
            {
                (item.workflow, item.target)
                for item in report.items
                if item.status in ("modified", "missing") and item.workflow
            }
        )
        return {
            "report": pack(report_to_wire(report)),
            "drifted": [list(pair) for pair in drifted],
            "partial": report.partial,
        }

    def sync(self, request: dict[str, Any], drifted: list[list[str]]) -> dict[str, Any]:
        self._ready(request)
        keys = {(workflow, target) for workflow, target in drifted}
        try:
            return {"exit": sync_drifted(self.repo, request["environment"], keys, yes=True)}
        except CplError as error:  # refused by policy, a lock held: apply's answer, not retried
            return {"exit": int(error.exit_code), "error": error.message}

    # -- the repo at the run's version -----------------------------------------------------

    def _ready(self, request: dict[str, Any]) -> tuple[Prepared, dict[str, Any]]:
        """The prepared desired state at this worker's version, which must be the run's."""
        environment = load_environment(self.repo, request["environment"])
        have = repo_version(self.repo, environment)
        wanted = request.get("version")
        if wanted:
            problem = version_mismatch(wanted, have, "cpl worker")
            if problem is not None:
                raise VersionMismatch(problem)
        key = (environment.name, str(have["digest"]))
        with self._lock:  # shards of one run on one worker render the specs once
            ready = self._prepared.get(key)
            if ready is None:
                ready = prepare(self.repo, environment.name)
                if len(self._prepared) >= 4:
                    self._prepared.pop(next(iter(self._prepared)))
                self._prepared[key] = ready
        return ready, have
