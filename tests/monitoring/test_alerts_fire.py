"""A workflow's alerts and SLOs fire in a real Prometheus, from a real `cpl worker`.

The Temporal dev server runs the interpreter in `cpl worker --metrics-port` (a subprocess);
the target's rules file is applied through the Temporal client (written into the rules
directory of the session's Prometheus, then `/-/reload`); Prometheus scrapes the worker every
second. Failing runs make the failureRate alert and the success-rate objective fire; a slow
run the duration alert and the completion-time objective. Windows are long enough (10m) for
every counted run to fall inside them, so the recorded ratios are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from controlplane.cli import run
from controlplane.engines import engine_client
from controlplane.engines.temporal.devserver import DevServer, free_port
from controlplane.engines.temporal.runner import start_run
from controlplane.monitoring.delivery import rules_file_name
from controlplane.pipeline import desired_state
from controlplane.spec.load import load_environment

from .conftest import PrometheusServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TASK_QUEUE = "cpl-monitoring-test"

FAILING = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: alerting-failures, tenant: ops, version: 1.0.0, owner: team-ops}
spec:
  timeout: 1m
  retention: 1d
  input: {schema: {type: object}}
  start: refuse
  steps:
    - {name: refuse, type: fail, error: Refused, cause: always refused}
  slo: {successRate: 0.9}
  alerts:
    - {metric: failureRate, above: 50%, window: 10m}
"""

SLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: alerting-slow, tenant: ops, version: 1.0.0, owner: team-ops}
spec:
  timeout: 1m
  retention: 1d
  input: {schema: {type: object}}
  start: linger
  steps:
    - {name: linger, type: wait, duration: 2500ms, next: done}
    - {name: done, type: succeed}
  slo: {completionTime: {p95: 2s}}
  alerts:
    - {metric: duration, above: 2s, window: 10m}
"""

ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: mon}}
spec:
  tier: development
  targets:
    - name: temporal
      engine: temporal
      address: {address}
      namespace: default
      taskQueue: {task_queue}
      prometheus:
        allowOutsideRepo: true
        rulesDir: {rules}
        reloadUrl: {prometheus}/-/reload
        workerMetrics: 127.0.0.1:{metrics}
        sloWindow: 10m
        evaluationInterval: 1s
"""


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_server: DevServer,
    prometheus_server: PrometheusServer,
) -> Path:
    root = tmp_path_factory.mktemp("monitoring-repo")
    (root / "workflows" / "ops").mkdir(parents=True)
    (root / "environments").mkdir()
    (root / "workflows" / "ops" / "alerting-failures.yaml").write_text(textwrap.dedent(FAILING))
    (root / "workflows" / "ops" / "alerting-slow.yaml").write_text(textwrap.dedent(SLOW))
    (root / "environments" / "mon.yaml").write_text(
        ENVIRONMENT.format(
            address=temporal_server.address,
            task_queue=TASK_QUEUE,
            rules=prometheus_server.rules,
            prometheus=prometheus_server.url,
            metrics=free_port(),
        )
    )
    return root


@pytest.fixture(scope="module")
def worker(repo: Path, prometheus_server: PrometheusServer) -> Iterator[str]:
    """`cpl worker` exporting metrics on the target's workerMetrics, scraped by Prometheus."""
    target = load_environment(repo, "mon").target("temporal")
    assert target.prometheus is not None and target.prometheus.worker_metrics
    address = target.prometheus.worker_metrics
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "worker", "--env", "mon", "--target", "temporal"],
        cwd=repo,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    assert f"metrics on http://{address}/metrics" in banner, banner
    prometheus_server.scrape("worker", address)
    try:
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def applied(repo: Path, prometheus_server: PrometheusServer) -> dict[str, Any]:
    """`cpl apply`: the namespace, the workflows and the target's rules file, written into
    Prometheus' rules directory and reloaded. The artifacts by workflow key."""
    assert run(["apply", "--env", "mon", "--yes", "--repo", str(repo)]) == 0
    assert (prometheus_server.rules / rules_file_name("temporal")).exists()
    groups = prometheus_server.wait_for(
        "the rules loaded",
        lambda: [g["name"] for g in prometheus_server.api("rules")["groups"]],
    )
    assert sorted(groups) == [
        "cpl/default/ops/alerting-failures",
        "cpl/default/ops/alerting-slow",
    ]
    desired = desired_state(repo, "mon")
    return {key: artifact for (key, _), artifact in desired.artifacts.items()}


def test_the_rules_file_is_planned_applied_recorded_and_drifted(
    repo: Path, prometheus_server: PrometheusServer, applied: dict[str, Any]
) -> None:
    rules = applied["shared:rules/temporal"]
    assert rules.shared_by == ("ops/alerting-failures", "ops/alerting-slow")
    plan_file = repo / "plan.json"
    options = ["--repo", str(repo), "--format", "json", "--output", str(plan_file)]
    assert run(["plan", "--env", "mon", *options]) == 0
    changes = json.loads(plan_file.read_text())["changes"]
    assert {c["workflow"]: c["action"] for c in changes}["shared:rules/temporal"] == "noop"
    assert all(c["action"] == "noop" for c in changes)
    assert run(["drift", "--env", "mon", "--repo", str(repo)]) == 0
    path = prometheus_server.rules / rules_file_name("temporal")
    text = path.read_text()
    try:
        path.write_text(text.replace("> 0.5", "> 0.9"))  # someone raised the threshold
        environment = load_environment(repo, "mon")
        client = engine_client(environment.target("temporal"), environment, repo=repo)
        live = client.read(rules)
        assert live is not None
        (change,) = client.diff(rules, live)
        assert change["path"].endswith("/expr") and "> 0.5" in change["expected"]
        assert run(["drift", "--env", "mon", "--repo", str(repo)]) != 0
    finally:
        path.write_text(text)


def _run(temporal_server: DevServer, artifacts: dict[str, Any], workflow: str, runs: int) -> None:
    artifact = artifacts[workflow]

    async def go() -> None:
        client = await temporal_server.connect()
        spec = artifact.document["spec"]
        handles = [await start_run(client, spec, {}, task_queue=TASK_QUEUE) for _ in range(runs)]
        for handle in handles:
            with contextlib.suppress(WorkflowFailureError):  # the failing one fails
                await handle.result()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_failing_runs_fire_the_failure_rate_alert_and_the_success_objective(
    temporal_server: DevServer,
    prometheus_server: PrometheusServer,
    worker: str,
    applied: dict[str, Any],
) -> None:
    labels = {"tenant": "ops", "workflow": "alerting-failures"}
    assert not prometheus_server.firing("CplFailureRate", **labels)
    _run(temporal_server, applied, "ops/alerting-failures", 3)

    (alert,) = prometheus_server.wait_for(
        "CplFailureRate firing", lambda: prometheus_server.firing("CplFailureRate", **labels)
    )
    assert alert["labels"]["window"] == "10m" and alert["labels"]["metric"] == "failureRate"
    assert float(alert["value"]) == 1.0  # 3 failed of 3 runs
    prometheus_server.wait_for(
        "CplSuccessRateObjective firing",
        lambda: prometheus_server.firing("CplSuccessRateObjective", **labels),
    )
    (ratio,) = prometheus_server.api("query", query="cpl:run_success_ratio")["result"]
    assert ratio["metric"]["workflow"] == "alerting-failures"
    assert float(ratio["value"][1]) == 0.0
    # the slow workflow has no failure: nothing fires for it
    assert not prometheus_server.firing("CplFailureRate", workflow="alerting-slow")


def test_a_slow_run_fires_the_duration_alert_and_the_completion_objective(
    temporal_server: DevServer,
    prometheus_server: PrometheusServer,
    worker: str,
    applied: dict[str, Any],
) -> None:
    labels = {"tenant": "ops", "workflow": "alerting-slow"}
    assert not prometheus_server.firing("CplRunDuration", **labels)
    _run(temporal_server, applied, "ops/alerting-slow", 1)

    (alert,) = prometheus_server.wait_for(
        "CplRunDuration firing", lambda: prometheus_server.firing("CplRunDuration", **labels)
    )
    assert float(alert["value"]) == 1.0  # one run above 2s
    (objective,) = prometheus_server.wait_for(
        "CplCompletionTimeObjective firing",
        lambda: prometheus_server.firing("CplCompletionTimeObjective", **labels),
    )
    assert objective["labels"]["objective"] == "completionTime.p95"
    assert float(objective["value"]) == 0.0  # none of the completed runs took 2s or less
