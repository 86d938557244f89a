"""Verified principals, access decisions and just-in-time grants on the real Temporal dev
server, with real OPA and a real `cpl worker` subprocess.

The control repo declares `spec.identity` with the public key of the tests' own issuer; the
workflow waits for an approval by `finance` (access.signal also lets `clerk` send one, so the
interpreter's own check of approvers.roles shows), its runs are started by `starter`, and
pause/resume/skip need `sre`, granted just in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client
from temporalio.worker import Replayer

from controlplane.cli import cli, run
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runtime.interpreter import CplInterpreter
from controlplane.engines.temporal.runtime.worker import sandbox_runner
from tests.conftest import ROOT

from .keys import AUDIENCE, ISSUER, Issuer

pytestmark = pytest.mark.integration

TASK_QUEUE = "cpl-identity-test"
IDP = Issuer("idp-1")
STRANGER = Issuer("idp-2")

WORKFLOW = {
    "apiVersion": "cpl.dev/v1",
    "kind": "Workflow",
    "metadata": {
        "name": "payout",
        "tenant": "sec",
        "version": "1.0.0",
        "owner": "team-sec",
        "description": "A payout that waits for finance's approval.",
    },
    "spec": {
        "timeout": "10m",
        "start": "approve",
        "steps": [
            {
                "name": "approve",
                "type": "approval",
                "signal": "approve-payout",
                "timeout": "5m",
                "approvers": {"roles": ["finance"]},
                "next": "done",
            },
            {"name": "done", "type": "succeed"},
        ],
        "access": {
            "start": {"roles": ["starter"]},
            "signal": {"roles": ["finance", "clerk"]},
            "admin": {"roles": ["sre"], "jit": {"maxDuration": "1h"}},
        },
    },
}


def environment(address: str) -> dict[str, Any]:
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": "secure"},
        "spec": {
            "tier": "development",
            "targets": [
                {
                    "name": "temporal-local",
                    "engine": "temporal",
                    "address": address,
                    "namespace": "default",
                    "taskQueue": TASK_QUEUE,
                }
            ],
            "deploy": {"state": ".cpl/state/secure", "approvers": {"roles": ["release"]}},
            "audit": {"sinks": [{"file": ".cpl/audit/secure.jsonl"}]},
            "identity": {"issuer": ISSUER, "audience": AUDIENCE, "jwks": "identity/jwks.json"},
        },
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, temporal_server: DevServer) -> Path:
    root = tmp_path_factory.mktemp("identity-repo")
    (root / "workflows" / "sec").mkdir(parents=True)
    (root / "workflows" / "sec" / "payout.yaml").write_text(yaml.safe_dump(WORKFLOW))
    (root / "environments").mkdir()
    env = environment(temporal_server.address)
    (root / "environments" / "secure.yaml").write_text(yaml.safe_dump(env))
    (root / "identity").mkdir()
    (root / "identity" / "jwks.json").write_text(json.dumps({"keys": [IDP.public]}))
    return root


@pytest.fixture(scope="module", autouse=True)
def commands() -> Iterator[None]:
    from controlplane.cli.access import access_group
    from controlplane.cli.runs import run_command, signal_command

    added = [c for c in (run_command, signal_command, access_group) if c.name not in cli.commands]
    for command in added:
        cli.add_command(command)
    yield
    for command in added:
        cli.commands.pop(str(command.name))


@pytest.fixture(scope="module")
def worker(repo: Path) -> Iterator[subprocess.Popen[str]]:
    """`cpl worker --env secure` in a subprocess: it records the interpreter's events."""
    script = (
        "import sys\n"
        "from controlplane.cli import cli, run\n"
        "from controlplane.cli.runs import worker_command\n"
        "cli.add_command(worker_command)\n"
        "sys.exit(run(sys.argv[1:]))\n"
    )
    args = ["worker", "--env", "secure", "--target", "temporal-local", "--repo", str(repo)]
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    assert f"task queue {TASK_QUEUE}" in banner, banner
    yield process
    process.send_signal(signal.SIGINT)
    process.wait(20)


def cpl(capsys: pytest.CaptureFixture[str], repo: Path, *argv: str) -> tuple[int, str, str]:
    code = run([*argv, "--repo", str(repo)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def events(repo: Path, kind: str) -> list[dict[str, Any]]:
    path = repo / ".cpl" / "audit" / "secure.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["data"] for line in lines if line["type"] == f"dev.cpl.{kind}"]


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def start(capsys: pytest.CaptureFixture[str], repo: Path) -> str:
    token = IDP.token("sam", ["starter"])
    code, out, err = cpl(
        capsys, repo, "run", "sec/payout", "--env", "secure", "--token", token,
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    run_id: str = json.loads(out)["runId"]
    return run_id


def status(server: DevServer, run_id: str) -> dict[str, Any]:
    async def query() -> dict[str, Any]:
        client = await server.connect()
        result: dict[str, Any] = await client.get_workflow_handle(run_id).query("status")
        return result

    return asyncio.run(query())


def test_run_refuses_unknown_key_expired_token_and_missing_role(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "sec/payout", "--env", "secure"]
    code, _, err = cpl(capsys, repo, *base, "--token", STRANGER.token("sam", ["starter"]))
    assert code == 3
    assert "signed by an unknown key" in err
    expired = IDP.token("sam", ["starter"], ttl=-300)
    code, _, err = cpl(capsys, repo, *base, "--token", expired)
    assert code == 3
    assert "expired" in err
    assert expired not in err
    code, _, err = cpl(capsys, repo, *base, "--token", IDP.token("bob", ["viewer"]))
    assert code == 3
    assert "access.start" in err and "starter" in err
    denied = events(repo, "access.denied")
    assert [e["rule"] for e in denied[-3:]] == ["identity", "identity", "access.start"]
    assert denied[-1]["actor"] == "bob"
    assert denied[-1]["missing"] == ["starter"]
    assert denied[-1]["operation"] == "start"
    log = (repo / ".cpl" / "audit" / "secure.jsonl").read_text()
    assert expired not in log


def test_a_verified_approval_continues_the_run(
    repo: Path,
    worker: subprocess.Popen[str],
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = start(capsys, repo)
    assert events(repo, "run.started")[-1]["actor"] == "sam"
    token = IDP.token("fay", ["finance"])
    code, _, err = cpl(
        capsys, repo, "signal", run_id, "approve-payout", '{"approved": true}', "--env",
        "secure", "--target", "temporal-local", "--token", token,
    )  # fmt: skip
    assert code == 0, err
    final = wait_for(lambda: status(temporal_server, run_id)["state"] == "completed")
    assert final
    accepted = wait_for(
        lambda: [e for e in events(repo, "signal.accepted") if e["runId"] == run_id]
    )
    assert accepted[0]["actor"] == "fay"
    assert accepted[0]["verified"] is True
    assert accepted[0]["approved"] is True
    assert accepted[0]["step"] == "approve"


def test_forged_and_unauthorised_approvals_leave_the_run_waiting(
    repo: Path,
    worker: subprocess.Popen[str],
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = start(capsys, repo)
    wait_for(lambda: status(temporal_server, run_id)["state"] == "waiting")

    async def send(*answers: Any) -> None:
        client = await Client.connect(temporal_server.address, namespace="default")
        handle = client.get_workflow_handle(run_id)
        for answer in answers:
            await handle.signal("approve-payout", answer)

    # straight to the workflow, past cpl: a self-declared answer, a forged token, and a
    # valid token of a clerk (allowed to signal by access.signal, not an approver)
    asyncio.run(
        send(
            {"approved": True, "by": "mallory", "roles": ["finance"]},
            {"approved": True, "token": STRANGER.token("mallory", ["finance"])},
            {"approved": True, "token": IDP.token("cid", ["clerk"])},
        )
    )
    current = wait_for(lambda: len((s := status(temporal_server, run_id))["refused"]) == 3 and s)
    assert current["state"] == "waiting"
    assert current["approvals"] == []
    refused = wait_for(
        lambda: (
            len(r := [e for e in events(repo, "signal.refused") if e["runId"] == run_id]) == 3 and r
        )
    )
    reasons = sorted(str(e.get("reason", e.get("rule"))) for e in refused)
    assert "no token: this environment declares spec.identity" in reasons
    assert "signed by an unknown key" in reasons
    clerk = next(e for e in refused if e.get("actor") == "cid")
    assert clerk["rule"] == "approvers.roles"
    assert clerk["missing"] == ["finance"]
    assert "token" not in json.dumps(refused).replace('"no token', "")

    # the verdicts replay the same: expiry is judged at workflow time, not the clock
    async def replay() -> None:
        client = await Client.connect(temporal_server.address, namespace="default")
        history = await client.get_workflow_handle(run_id).fetch_history()
        replayer = Replayer(workflows=[CplInterpreter], workflow_runner=sandbox_runner())
        await replayer.replay_workflow(history)

    asyncio.run(replay())


def test_a_grant_approved_by_a_second_principal_allows_admin_until_revoked(
    repo: Path,
    worker: subprocess.Popen[str],
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = start(capsys, repo)
    bob = IDP.token("bob", ["viewer"])
    pause = ["signal", run_id, "pause", "--env", "secure", "--target", "temporal-local"]
    code, _, err = cpl(capsys, repo, *pause, "--token", bob)
    assert code == 3
    assert "access.admin" in err and "sre" in err

    code, out, err = cpl(
        capsys, repo, "access", "request", "sre", "--workflow", "sec/payout", "--for", "30m",
        "--reason", "stuck payout", "--env", "secure", "--token", bob, "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    grant = json.loads(out)["id"]
    code, _, err = cpl(capsys, repo, "access", "approve", grant, "--env", "secure", "--token", bob)
    assert code == 3
    assert "cannot approve" in err
    carol = IDP.token("carol", ["release"])
    code, _, err = cpl(
        capsys, repo, "access", "approve", grant, "--env", "secure", "--token", carol
    )
    assert code == 0, err

    code, _, err = cpl(capsys, repo, *pause, "--token", bob)
    assert code == 0, err
    wait_for(lambda: status(temporal_server, run_id)["state"] == "paused")
    accepted = wait_for(
        lambda: [e for e in events(repo, "signal.accepted") if e["runId"] == run_id]
    )
    assert accepted[0]["actor"] == "bob" and accepted[0]["grant"] == grant
    assert accepted[0]["operation"] == "admin"

    code, _, err = cpl(capsys, repo, "access", "revoke", grant, "--env", "secure", "--token", carol)
    assert code == 0, err
    resume = ["signal", run_id, "resume", "--env", "secure", "--target", "temporal-local"]
    code, _, err = cpl(capsys, repo, *resume, "--token", bob)
    assert code == 3
    code, out, _ = cpl(capsys, repo, "access", "list", "--env", "secure", "--format", "json")
    states = {g["id"]: g["state"] for g in json.loads(out)["grants"]}
    assert states[grant] == "revoked"
    kinds = [e["grant"] for e in events(repo, "grant.requested") + events(repo, "grant.approved")]
    assert kinds.count(grant) == 2
    assert events(repo, "grant.revoked")[-1]["grant"] == grant


def test_an_expired_grant_allows_nothing(
    repo: Path, worker: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = start(capsys, repo)
    dan = IDP.token("dan", ["viewer"])
    code, out, err = cpl(
        capsys, repo, "access", "request", "sre", "--workflow", "sec/payout", "--for", "1s",
        "--reason", "short", "--env", "secure", "--token", dan, "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    grant = json.loads(out)["id"]
    carol = IDP.token("carol", ["release"])
    assert (
        cpl(capsys, repo, "access", "approve", grant, "--env", "secure", "--token", carol)[0] == 0
    )

    def expired() -> bool:
        _, out, _ = cpl(capsys, repo, "access", "list", "--env", "secure", "--format", "json")
        return {g["id"]: g["state"] for g in json.loads(out)["grants"]}[grant] == "expired"

    wait_for(expired)
    pause = ["signal", run_id, "pause", "--env", "secure", "--target", "temporal-local"]
    code, _, err = cpl(capsys, repo, *pause, "--token", dan)
    assert code == 3
    assert "sre" in err


def test_a_forged_admin_signal_is_refused_by_the_interpreter(
    repo: Path,
    worker: subprocess.Popen[str],
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = start(capsys, repo)

    async def send() -> None:
        client = await Client.connect(temporal_server.address, namespace="default")
        handle = client.get_workflow_handle(run_id)
        await handle.signal("pause")  # no token at all
        await handle.signal("pause", {"token": IDP.token("eve", ["viewer"])})  # no sre role

    asyncio.run(send())
    current = wait_for(lambda: len((s := status(temporal_server, run_id))["refused"]) == 2 and s)
    assert current["state"] == "waiting"  # not paused
    refused = wait_for(
        lambda: (
            len(r := [e for e in events(repo, "signal.refused") if e["runId"] == run_id]) == 2 and r
        )
    )
    assert {e["rule"] for e in refused} == {"identity", "access.admin"}


def test_apply_and_sync_need_a_deploy_approver(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    viewer = IDP.token("vic", ["viewer"])
    code, _, err = cpl(capsys, repo, "apply", "--env", "secure", "--yes", "--token", viewer)
    assert code == 3
    assert "deploy.approvers" in err and "release" in err
    code, _, err = cpl(
        capsys, repo, "drift", "--env", "secure", "--sync", "--yes", "--token", viewer
    )
    assert code == 3
    denied = events(repo, "access.denied")[-2:]
    assert [(e["operation"], e["rule"], e["missing"]) for e in denied] == [
        ("apply", "deploy.approvers", ["release"]),
        ("sync", "deploy.approvers", ["release"]),
    ]


def test_production_without_identity_refuses_self_declared_approvals(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment("127.0.0.1:1")
    env["metadata"]["name"] = "prod"
    env["spec"]["tier"] = "production"
    del env["spec"]["identity"]
    env["spec"]["audit"] = {"sinks": [{"file": ".cpl/audit/prod.jsonl"}]}
    (repo / "environments" / "prod.yaml").write_text(yaml.safe_dump(env))
    answer = '{"approved": true, "by": "mallory", "roles": ["finance"]}'
    code, _, err = cpl(
        capsys, repo, "signal", "sec-payout-0123456789ab", "approve-payout", answer,
        "--env", "prod", "--target", "temporal-local",
    )  # fmt: skip
    assert code == 3
    assert "without spec.identity" in err
    lines = (repo / ".cpl" / "audit" / "prod.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["data"]["rule"] == "spec.identity"
