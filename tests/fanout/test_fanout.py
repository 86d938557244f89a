"""`cpl drift --on temporal` on the real Temporal dev server and moto, with `cpl worker`
subprocesses hosting the shards: the same report as a local `cpl drift`."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controlplane.cli import drift_fanout
from controlplane.engines.temporal.drift import client
from controlplane.engines.temporal.drift.client import run_drift
from tests.fanout.conftest import Estate, Workers, wait_for

pytestmark = pytest.mark.integration

COMPARED = ("items", "summary", "drifted", "partial", "unreachable", "failures", "tenants")


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead worker's shard goes to another worker after 5 s without a heartbeat."""
    monkeypatch.setattr(drift_fanout, "HEARTBEAT", 5.0)


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
        result = run_drift(*args, **kwargs)
        results.append(result)
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
