"""`cpl local up|down|status` with the real engines: a Temporal dev server and moto.

Each test writes a control repo whose local environment uses free ports, so it never touches
servers of a developer's own `cpl local up`. The commands run on the real `cpl` group, so
errors map to exit codes as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from controlplane.cli import cli, run
from controlplane.cli.local import local_group
from controlplane.engines.temporal.devserver import TEMPORAL_BIN_ENV, free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

NAMESPACE = "cpl-test"
CPL = """
import sys
from controlplane.cli import cli, run
from controlplane.cli.local import local_group
cli.add_command(local_group)
sys.exit(run(sys.argv[1:]))
"""


@pytest.fixture(scope="module", autouse=True)
def command() -> Iterator[None]:
    added = "local" not in cli.commands
    if added:
        cli.add_command(local_group)
    yield
    if added:
        cli.commands.pop("local")


def write_repo(repo: Path, *, sfn_port: int | None, temporal_port: int | None) -> Path:
    targets = []
    if sfn_port is not None:
        targets.append(
            f"""
    - name: sfn-local
      engine: stepfunctions
      region: us-east-1
      endpoint: http://127.0.0.1:{sfn_port}
      roleArn: arn:aws:iam::123456789012:role/cpl-sfn"""
        )
    if temporal_port is not None:
        targets.append(
            f"""
    - name: temporal-local
      engine: temporal
      address: 127.0.0.1:{temporal_port}
      namespace: {NAMESPACE}
      taskQueue: cpl-interpreter"""
        )
    targets.append(
        """
    - name: argo-local
      engine: argo
      delivery: gitops
      path: deploy/argo
      namespace: workflows"""
    )
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    (repo / "environments" / "local.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: local}\n"
        "spec:\n  tier: development\n  targets:" + "".join(targets) + "\n",
        encoding="utf-8",
    )
    return repo


def cpl(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    code = run(["local", *args, "--repo", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


def status(
    capsys: pytest.CaptureFixture[str], repo: Path, expected_code: int = 0
) -> dict[str, dict[str, Any]]:
    code, out, _ = cpl(capsys, repo, "status", "--format", "json")
    assert code == expected_code
    return {s["engine"]: s for s in json.loads(out)["services"]}


def pid_alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[-1].split()[0] != "Z"


async def temporal_namespace(address: str) -> str:
    client = await Client.connect(address, namespace=NAMESPACE)
    assert await client.service_client.check_health()
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=NAMESPACE)
    )
    return str(described.namespace_info.name)


def run_state_machine(endpoint: str) -> str:
    sfn = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    machine = sfn.create_state_machine(
        name="hello",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/cpl-sfn",
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    deadline = time.monotonic() + 10
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return str(described["status"])
        time.sleep(0.1)


def test_up_status_idempotent_up_and_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn_port, temporal_port = free_port(), free_port()
    repo = write_repo(tmp_path, sfn_port=sfn_port, temporal_port=temporal_port)
    code, _, err = cpl(capsys, repo, "status")  # nothing started: both engines are down
    assert code == 1
    assert "local engines down: " in err
    assert "temporal (not running)" in err and "stepfunctions (not running)" in err

    try:
        # a real `cpl` process that exits once the engines are up: they must outlive it
        done = subprocess.run(
            [sys.executable, "-c", CPL, "local", "up", "--repo", str(repo)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        code, out, err = done.returncode, done.stdout, done.stderr
        assert code == 0, err
        assert "temporal: started, pid " in out
        assert "stepfunctions: started, pid " in out and ", healthy at http://127.0.0.1:" in out
        local = repo / ".cpl" / "local"
        assert {p.name for p in local.glob("*.pid")} == {"temporal.pid", "stepfunctions.pid"}
        assert (local / "temporal.db").exists() and (local / "stepfunctions.log").exists()

        services = status(capsys, repo)
        assert {e: (s["state"], s["healthy"]) for e, s in services.items()} == {
            "temporal": ("running", True),
            "stepfunctions": ("running", True),
        }
        assert services["temporal"]["address"] == f"127.0.0.1:{temporal_port}"
        assert services["stepfunctions"]["address"] == f"http://127.0.0.1:{sfn_port}"
        pids = {e: s["pid"] for e, s in services.items()}
        assert all(pid_alive(pid) for pid in pids.values())
        assert all(os.getsid(pid) == pid for pid in pids.values())  # their own session

        # the engines work: a real execution (execution enabled), the target's namespace
        assert run_state_machine(f"http://127.0.0.1:{sfn_port}") == "SUCCEEDED"
        assert asyncio.run(temporal_namespace(f"127.0.0.1:{temporal_port}")) == NAMESPACE

        code, out, err = cpl(capsys, repo, "up", "--format", "json")
        assert code == 0, err
        again = {s["engine"]: s for s in json.loads(out)["services"]}
        assert {e: s["action"] for e, s in again.items()} == {
            "temporal": "already running",
            "stepfunctions": "already running",
        }
        assert {e: s["pid"] for e, s in again.items()} == pids
    finally:
        code, out, err = cpl(capsys, repo, "down")
    assert code == 0, err
    assert f"temporal: stopped (pid {pids['temporal']}) at 127.0.0.1:{temporal_port}" in out
    assert f"stepfunctions: stopped (pid {pids['stepfunctions']})" in out
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not list((repo / ".cpl" / "local").glob("*.pid"))
    assert {s["state"] for s in status(capsys, repo, expected_code=1).values()} == {"stopped"}

    code, out, err = cpl(capsys, repo, "down")  # idempotent
    assert code == 0, err
    assert "temporal: not running at" in out


def test_a_taken_port_is_an_error_naming_port_and_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        sfn_port = free_port()
        repo = write_repo(tmp_path, sfn_port=sfn_port, temporal_port=taken)
        code, _, err = cpl(capsys, repo, "up")
        assert code == 1
        assert f"port {taken} is already in use by another process" in err
        assert f"target temporal-local (127.0.0.1:{taken})" in err
        # checked before starting anything: nothing runs, nothing to clean up
        assert not list((repo / ".cpl" / "local").glob("*.pid"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", sfn_port))


def test_a_server_dying_at_start_shows_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `temporal` binary that fails like a broken install would."""
    broken = tmp_path / "temporal"
    broken.write_text("#!/bin/sh\necho 'Error: unable to open database file' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv(TEMPORAL_BIN_ENV, str(broken))
    repo = write_repo(tmp_path / "repo", sfn_port=None, temporal_port=free_port())
    code, _, err = cpl(capsys, repo, "up", "--timeout", "10")
    assert code == 1
    assert "could not start the Temporal dev server of target temporal-local" in err
    assert "exited with code 3" in err
    assert "Error: unable to open database file" in err
    assert not list((repo / ".cpl" / "local").glob("*.pid"))
