"""`cpl local up` starts a real Prometheus next to the Temporal dev server: it scrapes the
dev server's and the worker's metrics endpoints, loads the rules `cpl apply` writes, and
`cpl local status`/`down` include it. Without the binary, `up` says so and goes on."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import cli, run
from controlplane.cli.local import local_group
from controlplane.engines.temporal.devserver import free_port
from controlplane.monitoring import local as prometheus_local

from .test_alerts_fire import FAILING

pytestmark = pytest.mark.integration

ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: local}}
spec:
  tier: development
  targets:
    - name: temporal-local
      engine: temporal
      address: 127.0.0.1:{temporal}
      namespace: default
      taskQueue: cpl-interpreter
      prometheus:
        rulesDir: monitoring/rules
        reloadUrl: http://127.0.0.1:{prometheus}/-/reload
        workerMetrics: 127.0.0.1:{worker}
"""


@pytest.fixture(scope="module", autouse=True)
def command() -> Iterator[None]:
    added = "local" not in cli.commands
    if added:
        cli.add_command(local_group)
    yield
    if added:
        cli.commands.pop("local")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "environments").mkdir()
    (tmp_path / "workflows" / "ops").mkdir(parents=True)
    (tmp_path / "workflows" / "ops" / "alerting-failures.yaml").write_text(textwrap.dedent(FAILING))
    (tmp_path / "environments" / "local.yaml").write_text(
        ENVIRONMENT.format(temporal=free_port(), prometheus=free_port(), worker=free_port())
    )
    yield tmp_path
    run(["local", "down", "--repo", str(tmp_path)])  # whatever a failed test left running


def services(
    capsys: pytest.CaptureFixture[str], repo: Path, command: str
) -> dict[str, dict[str, Any]]:
    capsys.readouterr()
    code = run(["local", command, "--repo", str(repo), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {s["name"]: s for s in json.loads(out)["services"]}


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["data"]


def wait_for(what: str, found: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:g}s")


def test_local_up_runs_prometheus_on_the_engines_metrics_and_the_applied_rules(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    if prometheus_local.find_prometheus() is None:
        pytest.skip("the prometheus binary is not installed (make tools installs it)")
    up = services(capsys, repo, "up")
    assert up["prometheus"]["action"] == "started" and up["prometheus"]["healthy"]
    url = up["prometheus"]["address"]
    assert url.startswith("http://127.0.0.1:")

    def scraped() -> dict[str, str]:
        targets = get(f"{url}/api/v1/targets")["activeTargets"]
        return {t["labels"]["source"]: t["health"] for t in targets}

    # the dev server answers; the worker is listed (it is not running: down)
    wait_for("the dev server scraped", lambda: scraped().get("temporal") == "up")
    assert "worker" in scraped()

    assert run(["apply", "--env", "local", "--yes", "--repo", str(repo)]) == 0
    assert (repo / "monitoring" / "rules" / "temporal-local.rules.yml").exists()
    groups = [g["name"] for g in get(f"{url}/api/v1/rules")["groups"]]
    assert groups == ["cpl/default/ops/alerting-failures"]  # reloaded by apply

    status = services(capsys, repo, "status")
    assert status["prometheus"]["state"] == "running" and status["prometheus"]["healthy"]
    pid = status["prometheus"]["pid"]
    down = services(capsys, repo, "down")
    assert down["prometheus"]["action"] == "stopped" and down["prometheus"]["pid"] == pid
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_without_the_binary_up_says_so_and_starts_the_engines(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus_local, "find_prometheus", lambda: None)
    up = services(capsys, repo, "up")
    assert up["temporal"]["healthy"]
    assert up["prometheus"]["action"] == "not installed" and up["prometheus"]["pid"] is None
    assert "prometheus binary is not installed" in up["prometheus"]["detail"]
    capsys.readouterr()
    assert run(["local", "status", "--repo", str(repo)]) == 0
    assert "not installed" in capsys.readouterr().out
