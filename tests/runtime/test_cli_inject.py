"""`cpl run --inject FILE` against the session's real Temporal dev server: the fault plan's
faults make the spec's retry paths run for real and the run report lists its events; plans
are refused outside development environments and checked against the workflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .test_cli_runs import commands, cpl, repo, worker  # noqa: F401  (module fixtures)

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
            "outages/0 (stop: worker) cannot be injected on Temporal target temporal-local",
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
    code, out, err = cpl(capsys, *FX, "--env", "test", "--repo", str(repo), "--inject", path)
    assert code == 1, out
    assert message in err
    assert "Traceback" not in err
