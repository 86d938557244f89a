"""An estate of several tenants on two targets (Step Functions on moto, Temporal on the dev
server), some of it drifted, and real `cpl worker` subprocesses hosting the drift shards.

Drift runs use `--tenant` for the estate's tenants: the moto server is shared by the session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.engines.temporal.devserver import DevServer
from controlplane.spec.load import load_environment
from tests.conftest import ROOT
from tests.drift.conftest import ControlRepo, _environment, _write_workflows, unique

HOSTING = "temporal-local"


@dataclass
class Estate:
    repo: ControlRepo
    tenants: tuple[str, ...]
    spare: str  # deployed, in sync, not in `tenants`: the sync test's own tenant
    slow: Path  # the test-only slow-shard hook's folder (tests/fanout/slow_worker.py)

    def cpl(self, *args: str, tenants: tuple[str, ...] | None = None) -> tuple[int, Any]:
        """`cpl drift --format json` over the estate's tenants: (exit code, report)."""
        out = self.repo.root / f"drift-{uuid.uuid4().hex[:6]}.json"
        shard = [arg for t in (tenants or self.tenants) for arg in ("--tenant", t)]
        code = run(
            [
                "drift",
                "--env",
                self.repo.env,
                "--repo",
                str(self.repo.root),
                "--format",
                "json",
                "-o",
                str(out),
                *shard,
                *args,
            ]
        )
        return code, json.loads(out.read_text()) if out.exists() else None

    def sfn(self) -> Any:
        environment = load_environment(self.repo.root, self.repo.env)
        return aws_client(environment.target("sfn-local"), "stepfunctions")

    def machine(self, tenant: str) -> tuple[str, dict[str, Any]]:
        sfn = self.sfn()
        name = f"{tenant}-order-fulfillment"
        arn = next(
            m["stateMachineArn"]
            for page in sfn.get_paginator("list_state_machines").paginate()
            for m in page["stateMachines"]
            if m["name"] == name
        )
        return arn, sfn.describe_state_machine(stateMachineArn=arn)

    def hand_edit(self, tenant: str, comment: str) -> None:
        arn, described = self.machine(tenant)
        definition = json.loads(described["definition"])
        definition["Comment"] = comment
        self.sfn().update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))


@pytest.fixture(scope="module")
def estate(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, temporal_server: DevServer
) -> Estate:
    root = tmp_path_factory.mktemp("fanout")
    env, namespace = unique("fanout"), unique("cpl-fanout-")
    tenants = tuple(sorted(unique("t") for _ in range(3)))
    spare = unique("s")
    (root / "environments").mkdir()
    (root / "environments" / f"{env}.yaml").write_text(
        _environment(env, moto_endpoint, temporal_server.address, namespace)
    )
    for tenant in (*tenants, spare):
        _write_workflows(root, tenant)
    repo = ControlRepo(root, env, tenants[0], namespace)
    for tenant in (*tenants, spare):
        repo.deploy(tenant)
    estate = Estate(repo, tenants, spare, root / "slow")
    estate.slow.mkdir()
    # drift: a state machine edited by hand, a schedule deleted, a stray state machine
    estate.hand_edit(tenants[0], "hot-fixed in the console")
    environment = load_environment(root, env)
    from controlplane.engines.temporal.client import TemporalEngine

    with TemporalEngine(environment.target(HOSTING), environment) as engine:
        engine.delete(f"{namespace}/{tenants[1]}/month-end-close")
    _, described = estate.machine(tenants[2])
    estate.sfn().create_state_machine(
        name=f"{tenants[2]}-made-in-console",
        definition=described["definition"],
        roleArn=described["roleArn"],
        tags=[
            {"key": "cpl:managed", "value": "true"},
            {"key": "cpl:workflow", "value": f"{tenants[2]}/made-in-console"},
            {"key": "cpl:environment", "value": env},
        ],
    )
    return estate


@dataclass
class Workers:
    """`cpl worker` subprocesses (with the test-only slow-shard hook) on the hosting target."""

    env: str
    root: Path
    slow: Path
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "tests.fanout.slow_worker", "worker", "--env", self.env]
        process = subprocess.Popen(
            [*command, "--target", HOSTING, "--repo", str(self.root)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "CPL_TEST_SLOW_DIR": str(self.slow),
            },
        )
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "task queue" in banner, banner
        self.processes.append(process)
        return process

    def ensure(self, count: int) -> None:
        self.processes = [p for p in self.processes if p.poll() is None]
        while len(self.processes) < count:
            self.start()

    def kill(self, pid: int) -> None:
        process = next(p for p in self.processes if p.pid == pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def workers(estate: Estate) -> Iterator[Workers]:
    pool = Workers(estate.repo.env, estate.repo.root, estate.slow)
    try:
        pool.ensure(2)
        yield pool
    finally:
        pool.stop()


def wait_for(condition: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `condition()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
