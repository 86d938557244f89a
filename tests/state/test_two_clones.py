"""Two clones of one control repo (two CI runners, two laptops) with the state in S3 and the
lock in DynamoDB, on the real engines: concurrent applies serialize on the lock, nothing is
lost or applied twice, and either clone then sees an empty plan and no drift."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import git

from controlplane.deploy.locks.dynamodb import DynamoLock
from controlplane.deploy.state import State
from controlplane.deploy.stores.s3 import S3Store
from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ROOT, ControlRepo, write_repo
from tests.state.conftest import make_remote, use_remote_state

_EMPTY = State.new("local")

# Step Functions and Temporal: their objects live in the engines both clones reach (an Argo
# GitOps target writes manifests into each clone's own working tree).
EXAMPLES = (
    "retail/inventory-sync",
    "health/appointment-reminders",
    "finance/month-end-close",
)


def _clone(origin: ControlRepo, path: Path) -> ControlRepo:
    git.Repo.clone_from(str(origin.root), str(path))
    return ControlRepo(path, origin.moto, origin.temporal, origin.namespace, origin.tenants)


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the applies never waited for the lock"
        time.sleep(0.1)


def test_concurrent_applies_from_two_clones_serialize_and_converge(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    remote = make_remote(moto_endpoint)
    origin = write_repo(tmp_path / "origin", moto_endpoint, temporal_server.address, EXAMPLES)
    use_remote_state(origin, remote)
    origin.commit("keep the deploy state in S3")
    clones = [_clone(origin, tmp_path / name) for name in ("runner-a", "runner-b")]

    # Hold the lock until both applies wait for it: they must then take it one after the other.
    state = S3Store(remote.state_url, "local", remote.aws)
    gate = DynamoLock(remote.table, state.lock_key, remote.aws, timeout=0, command="gate")
    gate.acquire()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    runs = []
    try:
        for clone in clones:
            err = (clone.root / "apply.err").open("w")
            command = [
                *clone.command("apply", "--env", "local", "--yes", "--lock-timeout", "180"),
                "--format", "json", "--output", str(clone.root / "apply.json"),
            ]  # fmt: skip
            runs.append(
                subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=environment,
                    cwd=clone.root,
                )
            )
        _wait_for(
            lambda: all(
                "waiting up to 180s for the state lock" in (c.root / "apply.err").read_text()
                for c in clones
            ),
            120,
        )
    finally:
        gate.release()
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    errors = [(c.root / "apply.err").read_text() for c in clones]
    assert [run.returncode for run in runs] == [0, 0], errors

    # One apply made every change; the other, planning after it under the lock, found none.
    reports = [c.root / "apply.json" for c in clones if (c.root / "apply.json").exists()]
    assert len(reports) == 1, (outputs, errors)
    results = json.loads(reports[0].read_text())["results"]
    applied = [(r["workflow"], r["target"]) for r in results if r["status"] == "applied"]
    assert results and len(applied) == len(results) == len(set(applied))
    assert sum(f"no changes: {len(applied)} resource(s) up to date" in o for o in outputs) == 1

    recorded = state.load("local")
    assert sorted((r.workflow, r.target) for r in recorded.resources) == sorted(applied)
    assert all(r.status == "applied" for r in recorded.resources)
    assert state.specs(), "the applied specs are kept next to the state"
    assert remote.dynamodb.scan(TableName=remote.table)["Items"] == []  # both released it

    first, second = clones
    plan = first.cpl("plan", "--env", "local", "--format", "json")
    assert plan.code == 0, plan.out + plan.err
    drift = second.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 0 and not drift.json()["drifted"], drift.out + drift.err


def test_a_runner_killed_mid_apply_leaves_a_state_the_other_clone_converges(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    remote = make_remote(moto_endpoint)
    origin = write_repo(tmp_path / "origin", moto_endpoint, temporal_server.address, EXAMPLES)
    use_remote_state(origin, remote)
    origin.commit("keep the deploy state in S3")
    killed, survivor = (_clone(origin, tmp_path / name) for name in ("runner-a", "runner-b"))
    state = S3Store(remote.state_url, "local", remote.aws)

    process = subprocess.Popen(
        killed.command("apply", "--env", "local", "--yes"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for(
            lambda: (
                process.poll() is not None
                or any(r.status == "applied" for r in (state.read() or _EMPTY).resources)
            ),
            60,
        )
    finally:
        process.kill()
        process.wait()
    statuses = [r.status for r in state.load("local").resources]
    assert statuses.count("applied") < len(EXAMPLES) + 1, "the apply finished before the kill"

    # The dead runner's lock is still there (its lease has not ended): wait, or break it.
    held = survivor.cpl("apply", "--env", "local", "--yes", "--lock-timeout", "0")
    assert held.code == 1 and "cpl apply --env local --yes" in held.err
    unlocked = survivor.cpl("state", "unlock", "--env", "local", "--force")
    assert unlocked.code == 0 and "removed the lock" in unlocked.out

    rerun = survivor.cpl("apply", "--env", "local", "--yes")
    assert rerun.code == 0, rerun.out + rerun.err
    assert survivor.cpl("plan", "--env", "local").code == 0
    assert killed.cpl("plan", "--env", "local").code == 0
    resources = state.load("local").resources
    assert {r.status for r in resources} == {"applied"}
    assert len(resources) == len(EXAMPLES) + 1  # the workflows and their Temporal namespace
    drift = killed.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 0 and not drift.json()["drifted"], drift.out
