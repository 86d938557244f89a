"""OpenTelemetry tracing on Temporal (docs/runtime.md, "Tracing"), on the real dev server:
`cpl worker` runs as a subprocess with an environment whose `observability.tracing` writes
spans to a file in the repo, `cpl run` starts runs in this process. A run whose artifact asks
for tracing (a staging environment) gets one span per executed step, with its attributes,
parented under the span of the client that started the run, itself under `cpl run`'s span;
a run whose artifact does not (a development environment) gets no step span.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import cli, run
from controlplane.cli.runs import run_command, signal_command, worker_command
from tests.conftest import ROOT

from .conftest import SCRIPTS, Harness
from .test_cli_runs import environment, start_worker

pytestmark = pytest.mark.integration

TASK_QUEUE = "cpl-tracing-test"
SPANS = ".cpl/traces/spans.jsonl"


@pytest.fixture(scope="module", autouse=True)
def commands() -> Iterator[None]:
    added = [c for c in (worker_command, run_command, signal_command) if c.name not in cli.commands]
    for command in added:
        cli.add_command(command)
    yield
    for command in added:
        cli.commands.pop(str(command.name))


def _traced_environment(address: str, name: str, tier: str) -> str:
    data = yaml.safe_load(environment(address, env=name))
    for target in data["spec"]["targets"]:
        if target["engine"] == "temporal":
            target["taskQueue"] = TASK_QUEUE  # a worker of its own
    data["spec"]["tier"] = tier
    data["spec"]["observability"] = {"tracing": {"file": SPANS}}
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, harness: Harness) -> Path:
    root = tmp_path_factory.mktemp("tracing-repo")
    shutil.copytree(ROOT / "workflows", root / "workflows")
    (root / "environments").mkdir()
    address = harness.client.service_client.config.target_host
    for name, tier in (("traced", "staging"), ("traced-dev", "development")):
        text = _traced_environment(address, name, tier)
        (root / "environments" / f"{name}.yaml").write_text(text)
    SCRIPTS["finance-fx-rates-refresh-"] = {
        "FxFetchRates": lambda argument: {
            "maxMovePercent": 9.0 if argument["asOf"] == "bad-hour" else 0.4,
            "values": {"USD": 1.09},
        }
    }
    return root


@pytest.fixture(scope="module")
def worker(repo: Path, activity_workers: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = start_worker(repo, "traced", "temporal-local", TASK_QUEUE, "default")
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def _run(repo: Path, env: str, as_of: str) -> dict[str, Any]:
    args = ["run", "finance/fx-rates-refresh", "--env", env, "--repo", str(repo)]
    args += ["--input", json.dumps({"asOf": as_of}), "--wait", "--timeout", "30s"]
    code = run([*args, "--format", "json", "-o", str(repo / "report.json")])
    report: dict[str, Any] = json.loads((repo / "report.json").read_text())
    assert code in (0, 1), report
    return report


def _spans(repo: Path, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    path = repo / SPANS
    lines = path.read_text().splitlines() if path.exists() else []
    return [span for span in map(json.loads, lines) if keep(span)]


def _wait_for_spans(
    repo: Path, harness: Harness, keep: Callable[[dict[str, Any]], bool], count: int
) -> list[dict[str, Any]]:
    """The spans `keep` selects once `count` of them are written (the worker writes each
    as it ends; a run's result is reported before its last workflow task's spans)."""

    async def poll() -> list[dict[str, Any]]:
        while len(found := _spans(repo, keep)) < count:
            await asyncio.sleep(0.05)
        return found

    return harness.run(asyncio.wait_for(poll(), 10), 15)


def test_a_traced_run_has_a_span_per_step_under_the_run_span(
    repo: Path, worker: subprocess.Popen[str], harness: Harness
) -> None:
    report = _run(repo, "traced", "2026-05-04T10:00:00Z")
    assert report["status"] == "succeeded", report
    run_id = report["runId"]
    steps = _wait_for_spans(
        repo, harness, lambda s: s["attributes"].get("cpl.run_id") == run_id, count=3
    )
    assert [s["name"] for s in steps] == [
        "cpl.step:fetch-rates",
        "cpl.step:rates-plausible",
        "cpl.step:store-rates",
    ]
    for span, name in zip(steps, ("fetch-rates", "rates-plausible", "store-rates"), strict=True):
        attributes = {k: v for k, v in span["attributes"].items() if k.startswith("cpl.")}
        assert attributes.pop("cpl.duration_ms") >= 0  # on the workflow clock
        assert attributes == {
            "cpl.workflow": "finance/fx-rates-refresh",
            "cpl.tenant": "finance",
            "cpl.version": "1.1.0",
            "cpl.run_id": run_id,
            "cpl.step": name,
            "cpl.step_type": "choice" if name == "rates-plausible" else "task",
            "cpl.outcome": "succeeded",
        }
        assert span["service"] == "cpl"  # written by the worker's exporter

    # One trace: `cpl run` → the client's StartWorkflow → the steps (and the run's own spans).
    trace = {s["spanId"]: s for s in _spans(repo, lambda s: s["traceId"] == steps[0]["traceId"])}
    (root,) = [s for s in trace.values() if s["parentSpanId"] is None]
    assert root["name"] == "cpl run"
    assert root["attributes"]["cpl.workflow"] == "finance/fx-rates-refresh"
    (start,) = [s for s in trace.values() if s["name"] == "StartWorkflow:cpl-interpreter"]
    assert start["parentSpanId"] == root["spanId"]
    assert {s["parentSpanId"] for s in steps} == {start["spanId"]}
    assert any(s["name"] == "RunWorkflow:cpl-interpreter" for s in trace.values())

    # A query on the closed run replays its history on the worker: no step is spanned twice
    # (the spans are written before the query is answered).
    status = harness.run(harness.client.get_workflow_handle(run_id).query("status"))
    assert status["trace"] == ["fetch-rates", "rates-plausible", "store-rates"]
    assert _spans(repo, lambda s: s["attributes"].get("cpl.run_id") == run_id) == steps


def test_a_failed_step_is_a_failed_span_with_its_error(
    repo: Path, worker: subprocess.Popen[str], harness: Harness
) -> None:
    report = _run(repo, "traced", "bad-hour")
    assert report["status"] == "failed", report
    run_id = report["runId"]
    steps = _wait_for_spans(
        repo, harness, lambda s: s["attributes"].get("cpl.run_id") == run_id, count=3
    )
    last = steps[-1]["attributes"]
    assert (last["cpl.step"], last["cpl.outcome"]) == ("rates-implausible", "failed")
    assert last["cpl.error"] == "ImplausibleRates"
    assert [s["attributes"]["cpl.outcome"] for s in steps[:2]] == ["succeeded", "succeeded"]


def test_a_run_whose_artifact_does_not_ask_for_tracing_has_no_step_spans(
    repo: Path, worker: subprocess.Popen[str], harness: Harness
) -> None:
    # development: the rendered artifact has tracing.enabled false
    report = _run(repo, "traced-dev", "2026-05-04T11:00:00Z")
    assert report["status"] == "succeeded", report
    run_id = report["runId"]
    # the run's own spans are there (the worker traces), its steps have none
    _wait_for_spans(
        repo,
        harness,
        lambda s: (
            s["attributes"].get("temporalWorkflowID") == run_id
            and s["name"].startswith("CompleteWorkflow")
        ),
        count=1,
    )
    assert _spans(repo, lambda s: s["attributes"].get("cpl.run_id") == run_id) == []
