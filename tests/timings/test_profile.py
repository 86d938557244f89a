"""`cpl runs profile` on the runs `cpl run` made on the real engines (conftest.RUNS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.engines.temporal.devserver import free_port

from .conftest import RUNS, TARGETS, WAIT_SECONDS, Runs, environment_yaml

pytestmark = pytest.mark.integration


def profile(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    code = run(["runs", "profile", "--repo", str(repo), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> dict[str, Any]:
    code, out, err = profile(capsys, repo, *args, "--format", "json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def test_profile_names_the_slow_step_on_both_engines(
    perf_runs: Runs, perf_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, perf_repo, "perf/checkout", "--env", "perf")
    assert report["workflow"] == "perf/checkout" and report["last"] == 20
    by_target = {entry["target"]: entry for entry in report["targets"]}
    assert set(by_target) == set(TARGETS.values())
    for entry in by_target.values():
        assert entry["error"] is None
        assert entry["runs"] == len(RUNS) and entry["timed"] == len(RUNS)
        assert entry["failed"] == 1
        assert entry["duration"]["count"] == len(RUNS)
        assert entry["duration"]["p50"] >= WAIT_SECONDS
        steps = {step["name"]: step for step in entry["steps"]}
        # slowest (p95) first; the wait is the slow step (a cold first call of moto's Lambda
        # or SQS may take longer once, so its p95 may top another step's: compare p50)
        p95s = [step["p95"] for step in entry["steps"]]
        assert p95s == sorted(p95s, reverse=True)
        settle = steps["settle"]
        assert max(entry["steps"], key=lambda step: step["p50"])["name"] == "settle"
        assert settle["count"] == len(RUNS) and settle["p50"] >= WAIT_SECONDS
        assert settle["p50"] <= settle["p95"] <= settle["max"]
        assert set(settle) == {"name", "count", "p50", "p95", "p99", "max", "failed"}
        # two runs reached charge (both caught its failure), one ended in rejected
        assert (steps["charge"]["count"], steps["charge"]["failed"]) == (2, 2)
        assert (steps["rejected"]["count"], steps["rejected"]["failed"]) == (1, 1)
        assert steps["reserve"]["count"] == len(RUNS) and steps["reserve"]["failed"] == 0


def test_last_bounds_the_runs_read_newest_first(
    perf_runs: Runs, perf_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(
        capsys, perf_repo, "perf/checkout", "--env", "perf", "--target", "sfn-perf", "--last", "1"
    )
    (entry,) = report["targets"]
    assert entry["runs"] == 1
    steps = {step["name"] for step in entry["steps"]}
    assert "rejected" in steps and "charge" not in steps  # the newest run is the rejected one


def test_text_table_shows_percentiles_per_step(
    perf_runs: Runs, perf_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = profile(
        capsys, perf_repo, "perf/checkout", "--env", "perf", "--target", "temporal-perf"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("perf/checkout on temporal-perf (temporal): last 3 finished runs")
    header = lines[1].split()
    assert header == ["step", "count", "p50", "p95", "max", "failed"]
    settle = next(line.split() for line in lines[2:] if line.split()[0] == "settle")
    assert settle[1] == "3" and settle[2].startswith(f"{WAIT_SECONDS}.")


def test_no_runs_is_said_plainly(
    perf_runs: Runs, perf_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = profile(capsys, perf_repo, "perf/idle", "--env", "perf")
    assert code == 0, err
    assert "perf/idle on temporal-perf (temporal): no finished runs to profile" in out
    assert "perf/idle on sfn-perf (stepfunctions): no finished runs to profile" in out


def test_an_unreachable_engine_exits_1_naming_it(
    perf_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    (perf_repo / "environments" / "down.yaml").write_text(environment_yaml("down", address, None))
    try:
        code, out, _ = profile(capsys, perf_repo, "perf/checkout", "--env", "down")
    finally:
        (perf_repo / "environments" / "down.yaml").unlink()
    assert code == 1
    assert "perf/checkout on temporal-perf (temporal): cannot read runs: " in out
    assert address in out


def test_last_is_bounded(perf_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = profile(capsys, perf_repo, "perf/checkout", "--env", "perf", "--last", "5000")
    assert code == 2 and "--last" in err
