"""Apply under failure: a process killed mid-apply, an engine that goes away mid-apply, and two
applies at once. Real engines throughout: the crash kills a real `cpl apply` process, the
outage stops a real moto_server of its own."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.cli.deploy import make_plan
from controlplane.deploy.apply import Outcome, apply
from controlplane.deploy.direct import DirectBackend
from controlplane.deploy.lock import StateLock
from controlplane.deploy.stores import StateStore
from controlplane.engines.stepfunctions.emulator import MotoServer, start_moto_server
from controlplane.engines.temporal.devserver import DevServer, free_port
from tests.deploy.conftest import ControlRepo, write_repo
from tests.deploy.test_cli_deploy import _machines


def _wait_for_applied(repo: ControlRepo, process: subprocess.Popen[bytes]) -> list[str]:
    path = repo.root / ".cpl/state/local/state.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            resources = json.loads(path.read_text())["resources"]
        except (OSError, ValueError, KeyError):
            resources = []
        statuses = [r["status"] for r in resources]
        if "applied" in statuses:
            return statuses
        time.sleep(0.005)
    raise AssertionError(f"no resource recorded as applied (exit {process.poll()})")


def test_killed_mid_apply_the_next_apply_converges_without_duplicates(
    control_repo: ControlRepo,
) -> None:
    repo = control_repo
    process = subprocess.Popen(
        repo.command("apply", "--env", "local", "--yes"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        statuses = _wait_for_applied(repo, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert statuses.count("applied") < 7, "the apply finished before it could be killed"

    after_crash = repo.cpl("plan", "--env", "local", "--format", "json")
    actions = [c["action"] for c in after_crash.json()["changes"]]
    assert after_crash.code == 4 and "noop" in actions, actions

    rerun = repo.cpl("apply", "--env", "local", "--yes")
    assert rerun.code == 0, rerun.out + rerun.err
    assert repo.cpl("plan", "--env", "local").code == 0
    state = repo.state()["resources"]
    assert {r["status"] for r in state} == {"applied"}
    shared = [r["workflow"] for r in state if r["workflow"].startswith("shared:")]
    # four workflows, their namespace once, a rules file per Temporal and Argo target
    assert len(state) == 4 + 1 + 2 and len(shared) == 3
    for tenant in ("retail", "health"):
        assert len(_machines(repo, repo.tenants[tenant])) == 1
    # one workflow file and its identity file
    assert len(list((repo.root / "deploy/argo").rglob("*.yaml"))) == 2


@pytest.fixture
def own_moto() -> Iterator[tuple[int, list[MotoServer]]]:
    """A moto_server of this test's own (stopped and restarted by it), on a fixed port."""
    port = free_port()
    servers = [start_moto_server(port=port)]
    try:
        yield port, servers
    finally:
        for server in servers:
            server.stop(grace=2.0)


def test_engine_going_away_mid_apply_is_a_partial_result_then_converges(
    tmp_path: Path,
    temporal_server: DevServer,
    own_moto: tuple[int, list[MotoServer]],
) -> None:
    port, processes = own_moto
    endpoint = f"http://127.0.0.1:{port}"
    repo = write_repo(tmp_path / "repo", endpoint, temporal_server.address)
    planning = make_plan(repo.root, "local")
    stopped: list[str] = []

    def stop_moto_after_first(outcome: Outcome) -> None:
        if outcome.change.engine == "stepfunctions" and not stopped:
            processes[0].process.kill()
            processes[0].process.wait()
            stopped.append(outcome.change.workflow)

    state_dir = repo.root / ".cpl/state/local"
    with StateLock(state_dir) as lock:
        store = StateStore(state_dir, "local", lock)
        backend = DirectBackend(planning.environment, repo=repo.root, clients=planning.clients)
        result = apply(
            planning.plan,
            planning.decision,
            backend,
            store=store,
            progress=stop_moto_after_first,
        )
    assert not result.ok and int(result.exit_code) == 1
    (failed,) = result.failed
    assert failed.change.target == "sfn-local" and failed.transient
    assert "sfn-local" in failed.message and endpoint in failed.message
    # three workflows, the Temporal namespace and two rules files applied, the Step
    # Functions one failed
    assert result.summary == {"applied": 6, "deleted": 0, "failed": 1, "skipped": 0}
    recorded = {r["workflow"]: r["status"] for r in repo.state()["resources"]}
    assert recorded[failed.change.workflow] == "failed"
    assert sorted(recorded.values()) == ["applied"] * 6 + ["failed"]

    processes.append(start_moto_server(port=port))  # the engine is back (empty: moto keeps no data)
    rerun = repo.cpl("apply", "--env", "local", "--yes")
    assert rerun.code == 0, rerun.out + rerun.err
    assert repo.cpl("plan", "--env", "local").code == 0
    assert {r["status"] for r in repo.state()["resources"]} == {"applied"}


def test_a_second_apply_waits_for_the_lock_or_times_out_naming_the_holder(
    control_repo: ControlRepo,
) -> None:
    repo = control_repo
    state_dir = repo.root / ".cpl/state/local"
    with StateLock(state_dir, command="cpl apply --env local (test holder)"):
        refused = repo.cpl("apply", "--env", "local", "--yes", "--lock-timeout", "0.5")
    assert refused.code == 1
    assert "is locked: held by pid" in refused.err and "(test holder)" in refused.err

    holder = StateLock(state_dir, command="cpl apply (first)")
    holder.acquire()
    releaser = threading.Timer(2.0, holder.release)
    releaser.start()
    started = time.monotonic()
    waited = repo.cpl("apply", "--env", "local", "--yes", "--lock-timeout", "30")
    releaser.join()
    assert waited.code == 0, waited.out + waited.err
    assert "waiting up to 30s for the state lock" in waited.err
    assert time.monotonic() - started >= 2.0

    # two real processes at once: one applies, the other waits and finds nothing to do
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 2.0.1")
    processes = [
        subprocess.Popen(
            repo.command("apply", "--env", "local", "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    texts = [out.decode() + err.decode() for out, err in outputs]
    assert sum("1 applied" in t for t in texts) == 1, texts
    assert sum("no changes" in t for t in texts) == 1, texts
    assert len(_machines(repo, repo.tenants["retail"])) == 1
