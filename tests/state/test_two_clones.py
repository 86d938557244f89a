"""Two clones of one control repo (two CI runners, two laptops) with the state in S3 and the
lock in DynamoDB, on the real engines: concurrent applies serialize on the lock, nothing is
lost or applied twice, and either clone then sees an empty plan and no drift."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import git

from controlplane.deploy.locks.dynamodb import DynamoLock
from controlplane.deploy.state import State
from controlplane.deploy.stores.s3 import S3Store
from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ROOT, ControlRepo, write_repo
from tests.state.conftest import Remote, make_remote, use_remote_state

# Step Functions and Temporal: their objects live in the engines both clones reach (an Argo
# GitOps target writes manifests into each clone's own working tree).
EXAMPLES = (
    "retail/inventory-sync",
    "health/appointment-reminders",
    "finance/month-end-close",
)


def _origin(root: Path, moto: str, temporal: str, remote: Remote) -> tuple[ControlRepo, str]:
    """A control repo whose environment, named for this test alone (drift reports what other
    tests left in the shared engines under their environment's name), keeps its state in S3."""
    origin = write_repo(root, moto, temporal, EXAMPLES)
    use_remote_state(origin, remote)
    name = f"ci{uuid.uuid4().hex[:6]}"
    environments = origin.root / "environments"
    text = (environments / "local.yaml").read_text()
    # no Prometheus rules files either: like Argo manifests, they go into each clone's tree
    text = re.sub(r"      prometheus:\n(        .*\n)+", "", text)
    (environments / f"{name}.yaml").write_text(
        text.replace("metadata: {name: local}", f"metadata: {{name: {name}}}", 1)
    )
    (environments / "local.yaml").unlink()
    origin.commit("keep the deploy state in S3")
    return origin, name


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
    origin, env = _origin(tmp_path / "origin", moto_endpoint, temporal_server.address, remote)
    clones = [_clone(origin, tmp_path / name) for name in ("runner-a", "runner-b")]

    # Hold the lock until both applies wait for it: they must then take it one after the other.
    state = S3Store(remote.state_url, env, remote.aws)
    gate = DynamoLock(remote.table, state.lock_key, remote.aws, timeout=0, command="gate")
    gate.acquire()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    runs = []
    try:
        for clone in clones:
            err = (clone.root / "apply.err").open("w")
            command = [
                *clone.command("apply", "--env", env, "--yes", "--lock-timeout", "180"),
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

    recorded = state.load(env)
    assert sorted((r.workflow, r.target) for r in recorded.resources) == sorted(applied)
    assert all(r.status == "applied" for r in recorded.resources)
    assert state.specs(), "the applied specs are kept next to the state"
    assert remote.dynamodb.scan(TableName=remote.table)["Items"] == []  # both released it

    first, second = clones
    plan = first.cpl("plan", "--env", env, "--format", "json")
    assert plan.code == 0, plan.out + plan.err
    drift = second.cpl("drift", "--env", env, "--format", "json")
    assert drift.code == 0 and not drift.json()["drifted"], drift.out + drift.err


def test_a_runner_killed_mid_apply_leaves_a_state_the_other_clone_converges(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    remote = make_remote(moto_endpoint)
    origin, env = _origin(tmp_path / "origin", moto_endpoint, temporal_server.address, remote)
    killed, survivor = (_clone(origin, tmp_path / name) for name in ("runner-a", "runner-b"))
    state = S3Store(remote.state_url, env, remote.aws)

    process = subprocess.Popen(
        killed.command("apply", "--env", env, "--yes"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for(
            lambda: (
                process.poll() is not None
                or any(r.status == "applied" for r in (state.read() or State.new(env)).resources)
            ),
            60,
        )
    finally:
        process.kill()
        process.wait()
    statuses = [r.status for r in state.load(env).resources]
    assert statuses.count("applied") < len(EXAMPLES) + 1, "the apply finished before the kill"

    # The dead runner's lock is still there (its lease has not ended): wait, or break it.
    held = survivor.cpl("apply", "--env", env, "--yes", "--lock-timeout", "0")
    assert held.code == 1 and f"cpl apply --env {env} --yes" in held.err
    unlocked = survivor.cpl("state", "unlock", "--env", env, "--force")
    assert unlocked.code == 0 and "removed the lock" in unlocked.out

    rerun = survivor.cpl("apply", "--env", env, "--yes")
    assert rerun.code == 0, rerun.out + rerun.err
    assert survivor.cpl("plan", "--env", env).code == 0
    assert killed.cpl("plan", "--env", env).code == 0
    resources = state.load(env).resources
    assert {r.status for r in resources} == {"applied"}
    assert len(resources) == len(EXAMPLES) + 1  # the workflows and their Temporal namespace
    drift = killed.cpl("drift", "--env", env, "--format", "json")
    assert drift.code == 0 and not drift.json()["drifted"], drift.out
