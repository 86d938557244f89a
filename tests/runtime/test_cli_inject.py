"""`cpl run --inject FILE` against the session's real Temporal dev server: the fault plan's
faults make the spec's retry paths run for real and the run report lists its events; plans
are refused outside development environments and checked against the workflow."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controlplane.engines.temporal.devserver import free_port
from controlplane.local import local_down, local_up
from controlplane.spec.load import load_environment

from .test_cli_runs import commands, cpl, repo, start_worker, worker  # noqa: F401

pytestmark = pytest.mark.integration

FX = ["run", "finance/fx-rates-refresh", "--input", '{"asOf": "2026-05-04T11:00:00Z"}']


def _plan(directory: Path, name: str, plan: dict[str, object]) -> str:
    path = directory / name
    path.write_text(yaml.safe_dump(plan))
    return str(path)


def test_injected_error_is_retried_and_reported_as_events(
    repo: Path,  # noqa: F811
    worker: subprocess.Popen[str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _plan(
        repo,
        "provider-down.yaml",
        {"faults": [{"step": "fetch-rates", "attempts": [1], "error": "ProviderDown"}]},
    )
    args = [*FX, "--env", "test", "--repo", str(repo), "--inject", plan, "--wait"]
    code, out, err = cpl(capsys, *args, "--timeout", "30s", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "succeeded"  # fx-rates-refresh retries fetch-rates (jitter)
    assert report["trace"] == ["fetch-rates", "rates-plausible", "store-rates"]
    assert report["events"] == [
        {"step": "fetch-rates", "kind": "fault", "attempt": 1, "error": "ProviderDown"},
        {"step": "fetch-rates", "kind": "attempt-failed", "attempt": 1, "error": "ProviderDown"},
        {"step": "fetch-rates", "kind": "retry", "attempt": 2, "error": "ProviderDown"},
    ]
    code, out, err = cpl(capsys, *args, "--timeout", "30s", "--format", "text")
    assert code == 0, err
    assert "event: fetch-rates fault attempt 1 (ProviderDown)" in out
    assert "event: fetch-rates retry attempt 2 (ProviderDown)" in out


def test_inject_is_refused_outside_development(
    repo: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = yaml.safe_load((repo / "environments" / "test.yaml").read_text())
    data["metadata"]["name"] = "stage"
    data["spec"]["tier"] = "staging"
    (repo / "environments" / "stage.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    plan = _plan(repo, "any.yaml", {"faults": [{"step": "fetch-rates", "error": "X"}]})
    code, _, err = cpl(capsys, *FX, "--env", "stage", "--repo", str(repo), "--inject", plan)
    assert code == 1
    assert "environment 'stage' is a staging environment" in err
    assert "only into runs on development environments" in err


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (
            {"faults": [{"step": "no-such-step", "error": "X"}]},
            "faults/0/step: 'no-such-step' is not a step of workflow 'finance/fx-rates-refresh'",
        ),
        (
            {"faults": [{"step": "rates-plausible", "error": "X"}]},
            "faults/0/step: 'rates-plausible' is a choice step, not a task",
        ),
        (
            {"faults": [{"step": "fetch-rates", "error": "X", "timeout": True}]},
            "faults/0: a fault sets exactly one of `error`, `timeout` and `delay`",
        ),
        (
            {"outages": [{"after": "fetch-rates", "stop": "worker", "for": "5s"}]},
            "outages/0/stop: `worker` cannot be injected",
        ),
        (
            {"outages": [{"after": "fetch-rates", "stop": "engine", "for": "5s"}]},
            "is not running under cpl local: start it with `cpl local up --env test`",
        ),
    ],
)
def test_bad_fault_plans_are_clear_errors(
    repo: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    plan: dict[str, object],
    message: str,
) -> None:
    path = _plan(repo, "bad.yaml", plan)
    args = [*FX, "--env", "test", "--repo", str(repo), "--inject", path, "--wait"]
    code, out, err = cpl(capsys, *args)
    assert code == 1, out
    assert message in err
    assert "Traceback" not in err


def test_outages_need_wait(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    plan = {"outages": [{"after": "fetch-rates", "stop": "engine", "for": "1s"}]}
    path = _plan(repo, "outage.yaml", plan)
    code, _, err = cpl(capsys, *FX, "--env", "test", "--repo", str(repo), "--inject", path)
    assert code == 1
    assert "outages happen while cpl run waits for the run: add --wait" in err


# --- an engine outage: the target's `cpl local` dev server stopped and started again ---------

OUTAGE_ENV = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: outage}
spec:
  tier: development
  targets:
    - name: temporal-outage
      engine: temporal
      address: 127.0.0.1:PORT
      namespace: cpl-outage
      taskQueue: cpl-outage
"""

OUTAGE_WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: outage
  tenant: retail
  version: 1.0.0
  owner: team-cpl
  description: A timer that outlives an engine outage.
spec:
  start: pause
  steps:
    - {name: pause, type: wait, duration: 4s, next: done}
    - {name: done, type: succeed}
"""


@pytest.fixture(scope="module")
def outage_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repo whose environment's Temporal dev server runs under `cpl local`, and `cpl
    worker` serving its target."""
    root = tmp_path_factory.mktemp("outage-repo")
    (root / "environments").mkdir()
    (root / "workflows" / "retail").mkdir(parents=True)
    (root / "environments" / "outage.yaml").write_text(OUTAGE_ENV.replace("PORT", str(free_port())))
    (root / "workflows" / "retail" / "outage.yaml").write_text(OUTAGE_WORKFLOW)
    environment = load_environment(root, "outage")
    local_up(root, environment)
    process = None
    try:
        process = start_worker(root, "outage", "temporal-outage", "cpl-outage", "cpl-outage")
        # drained: the worker logs its reconnects while the server is down (a full pipe blocks)
        threading.Thread(target=process.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        yield root
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(20)
        local_down(root, environment)


def test_engine_outage_stops_the_local_server_and_the_run_resumes(
    outage_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pid_file = outage_repo / ".cpl" / "local" / "temporal.pid"
    before = json.loads(pid_file.read_text())["pid"]
    plan = {"outages": [{"after": "pause", "stop": "engine", "for": "2s"}]}
    path = _plan(outage_repo, "engine-down.yaml", plan)
    args = ["run", "retail/outage", "--env", "outage", "--repo", str(outage_repo)]
    args += ["--inject", path, "--wait", "--timeout", "90s", "--format", "json"]
    code, out, err = cpl(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "succeeded"
    assert report["trace"] == ["pause", "done"]  # the timer fired after the server came back
    assert "outage: stopped the Temporal dev server of target temporal-outage" in err
    assert "is running again" in err
    after = json.loads(pid_file.read_text())["pid"]
    assert after != before  # really stopped and started again
