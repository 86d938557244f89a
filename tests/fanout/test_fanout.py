"""`cpl drift --on temporal` on the real Temporal dev server and moto, with `cpl worker`
subprocesses hosting the shards: the same report as a local `cpl drift`."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from controlplane import drift_runs
from controlplane.audit import log_paths
from controlplane.cli import run
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.drift import client
from controlplane.engines.temporal.drift.client import run_drift
from controlplane.engines.temporal.runner import connect
from controlplane.spec.load import load_environment
from tests.fanout.conftest import HOSTING, Estate, Workers, wait_for

pytestmark = pytest.mark.integration

COMPARED = ("items", "summary", "drifted", "partial", "unreachable", "failures", "tenants")


@pytest.fixture(autouse=True)
def small_shards_quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard per tenant and target (the estate is small), and a dead worker's shard goes to
    another worker after 5 s without a heartbeat."""
    monkeypatch.setattr(drift_runs, "SHARD_SIZE", 1)
    monkeypatch.setattr(drift_runs, "HEARTBEAT", 5.0)


def _same(fanned: Any, local: Any) -> None:
    for key in COMPARED:
        assert fanned[key] == local[key], key
    assert [t["target"] for t in fanned["targets"]] == [t["target"] for t in local["targets"]]
    assert [t["reads"] for t in fanned["targets"]] == [t["reads"] for t in local["targets"]]


def test_fanned_out_report_is_the_local_report(estate: Estate, workers: Workers) -> None:
    workers.ensure(2)
    code, fanned = estate.cpl("--on", "temporal")
    local_code, local = estate.cpl()

    assert (code, local_code) == (5, 5)
    _same(fanned, local)
    statuses = {(i["resource"], i["status"]) for i in fanned["items"]}
    a, b, c = estate.tenants
    assert (f"{a}-order-fulfillment", "modified") in statuses
    assert (f"{b}-month-end-close", "missing") in statuses
    assert (f"{c}-made-in-console", "unmanaged") in statuses
    assert len(fanned["items"]) == len({(i["target"], i["resource"]) for i in fanned["items"]})


def test_one_target_only(estate: Estate, workers: Workers) -> None:
    workers.ensure(2)
    code, fanned = estate.cpl("--on", "temporal", "--target", "sfn-local")
    local_code, local = estate.cpl("--target", "sfn-local")

    assert (code, local_code) == (5, 5)
    _same(fanned, local)
    assert {i["target"] for i in fanned["items"]} == {"sfn-local"}


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The drift workflow's results (report, shards, sync) of the runs `cpl drift` made."""
    results: list[dict[str, Any]] = []

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        announce = kwargs["started"]

        def started(run_id: str) -> None:
            results.append({"runId": run_id})
            announce(run_id)

        result = run_drift(*args, **{**kwargs, "started": started})
        results[-1] = result
        return result

    monkeypatch.setattr(client, "run_drift", recording)
    return results


def test_a_worker_killed_mid_shard_loses_and_duplicates_nothing(
    estate: Estate, workers: Workers, runs: list[dict[str, Any]]
) -> None:
    workers.ensure(2)
    slow = f"sfn-local/{estate.tenants[1]}"
    (estate.slow / "shard").write_text(slow)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(run=estate.cpl("--on", "temporal")))
    thread.start()
    try:
        taken = wait_for(lambda: (estate.slow / "taken").is_file(), what="the slow shard")
        assert taken
        pid = int((estate.slow / "taken").read_text())
        workers.kill(pid)
        thread.join(timeout=120)
        assert not thread.is_alive(), "the drift run did not finish after a worker died"
    finally:
        (estate.slow / "shard").unlink()
        (estate.slow / "taken").unlink(missing_ok=True)

    code, fanned = outcome["run"]
    local_code, local = estate.cpl()
    assert (code, local_code) == (5, 5)
    _same(fanned, local)
    shards = runs[-1]["shards"]
    ids = [s["id"] for s in shards]
    assert len(ids) == len(set(ids)) and slow in ids
    retried = next(s for s in shards if s["id"] == slow)
    assert retried["attempt"] == 2 and not retried["worker"].startswith(f"{pid}@")


def _events(estate: Estate) -> list[dict[str, Any]]:
    environment = load_environment(estate.repo.root, estate.repo.env)
    return [
        json.loads(line)
        for path in log_paths(estate.repo.root, environment)
        if path.exists()
        for line in path.read_text().splitlines()
    ]


def _metrics(path: Any) -> list[str]:
    """The samples that do not depend on when and how fast the run was."""
    return [
        line
        for line in path.read_text().splitlines()
        if "duration_seconds" not in line and "last_run_timestamp" not in line
    ]


def test_metrics_and_audit_events_are_written_once_as_by_a_local_run(
    estate: Estate, workers: Workers
) -> None:
    workers.ensure(2)
    before = len(_events(estate))
    code, fanned = estate.cpl("--on", "temporal", "--metrics", str(estate.repo.root / "f.prom"))
    events = _events(estate)[before:]
    local_code, _ = estate.cpl("--metrics", str(estate.repo.root / "l.prom"))
    local_events = _events(estate)[before + len(events) :]

    assert (code, local_code) == (5, 5)
    assert _metrics(estate.repo.root / "f.prom") == _metrics(estate.repo.root / "l.prom")
    kinds = [e["type"] for e in events]
    assert kinds == [e["type"] for e in local_events]
    assert kinds.count("dev.cpl.drift.completed") == 1
    drifted = [i for i in fanned["items"] if i["status"] != "in-sync"]
    assert kinds.count("dev.cpl.drift.detected") == len(drifted) > 0


def _stage(server: DevServer, estate: Estate, run_id: str) -> str:
    async def go() -> str:
        client = await connect(server.address, estate.repo.namespace)
        status = await client.get_workflow_handle(run_id).query("status")
        return str(status["stage"])

    return asyncio.run(go())


def test_sync_waits_for_approval_then_reapplies_what_drifted(
    estate: Estate,
    workers: Workers,
    runs: list[dict[str, Any]],
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workers.ensure(2)
    spare = (estate.spare,)
    estate.hand_edit(estate.spare, "hot-fixed again")
    outcome: dict[str, Any] = {}

    def drift_and_sync() -> None:
        outcome["run"] = estate.cpl("--on", "temporal", "--sync", tenants=spare)

    thread = threading.Thread(target=drift_and_sync)
    thread.start()
    run_id = wait_for(lambda: runs and runs[-1]["runId"], what="the drift run")
    wait_for(
        lambda: _stage(temporal_server, estate, run_id) == "waiting for approval",
        what="the approval step",
    )
    said: list[str] = []
    wait_for(
        lambda: said.append(capsys.readouterr().err) or "approve: cpl signal" in "".join(said),
        what="cpl drift to show what waits for approval",
    )
    shown = "".join(said)
    assert "1 drifted resource(s) wait for approval to be re-applied:" in shown
    assert f"  {estate.spare}/order-fulfillment on sfn-local" in shown
    assert f"approve: cpl signal {run_id} approve-sync" in shown
    code, report = estate.cpl(tenants=spare)  # nothing re-applied before the approval
    assert code == 5 and report["summary"]["modified"] == 1

    approval = json.dumps({"approved": True, "by": "alice"})
    repo = estate.repo
    signal = ["signal", run_id, "approve-sync", approval, "--env", repo.env]
    assert run([*signal, "--target", HOSTING, "--repo", str(repo.root)]) == 0
    thread.join(timeout=120)
    assert not thread.is_alive()

    code, report = outcome["run"]
    assert code == 0  # apply's exit code, as a local --sync
    assert report["summary"]["modified"] == 1  # the report is what was found before syncing
    assert runs[-1]["sync"]["status"] == "synced" and runs[-1]["sync"]["by"] == "alice"
    code, report = estate.cpl(tenants=spare)
    assert (code, report["summary"]["modified"]) == (0, 0)


def test_a_worker_on_another_commit_refuses_the_run(
    estate: Estate, workers: Workers, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    workers.ensure(1)
    elsewhere = {"commit": "0123456789abcdef" * 2 + "01234567", "digest": "0" * 64}
    monkeypatch.setattr(drift_runs, "repo_version", lambda repo, env=None: elsewhere)

    code, report = estate.cpl("--on", "temporal")

    assert (code, report) == (1, None)
    err = capsys.readouterr().err
    assert "the drift run reads commit 0123456789ab" in err
    assert "(none: not a git checkout)" in err  # what the workers read


def test_a_refused_approval_syncs_nothing(
    estate: Estate, workers: Workers, runs: list[dict[str, Any]], temporal_server: DevServer
) -> None:
    workers.ensure(2)
    spare = (estate.spare,)
    estate.hand_edit(estate.spare, "hot-fixed once more")
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(run=estate.cpl("--on", "temporal", "--sync", tenants=spare))
    )
    thread.start()
    run_id = wait_for(lambda: runs and runs[-1]["runId"], what="the drift run")
    wait_for(
        lambda: _stage(temporal_server, estate, run_id) == "waiting for approval",
        what="the approval step",
    )
    refusal = json.dumps({"approved": False, "by": "bob"})
    repo = estate.repo
    signal = ["signal", run_id, "approve-sync", refusal, "--env", repo.env]
    assert run([*signal, "--target", HOSTING, "--repo", str(repo.root)]) == 0
    thread.join(timeout=120)
    assert not thread.is_alive()

    assert outcome["run"][0] == 5  # the report's exit code: drift, not synced
    assert runs[-1]["sync"] == {
        "status": "rejected",
        "by": "bob",
        "drifted": [[f"{estate.spare}/order-fulfillment", "sfn-local"]],
    }
    code, report = estate.cpl(tenants=spare)
    assert (code, report["summary"]["modified"]) == (5, 1)
