"""`cpl run --wait` reports when each step started and ended and how it ended, on the real
Temporal dev server (the interpreter's records) and moto (the execution history)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.cli.runs import _print_run
from controlplane.runstats import parse_time, seconds_between

from .conftest import TARGETS, WAIT_SECONDS, Runs, cpl_run

pytestmark = pytest.mark.integration

ENGINES = ["temporal", "stepfunctions"]


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_steps_follow_the_trace_with_times_in_order(perf_runs: Runs, engine: str) -> None:
    report = perf_runs.reports[engine][0]
    assert report["status"] == "succeeded"
    assert report["trace"] == ["reserve", "settle", "route", "charge", "notify", "done"]
    assert [step["name"] for step in report["steps"]] == report["trace"]
    starts = [parse_time(step["started"]) for step in report["steps"]]
    ends = [parse_time(step["ended"]) for step in report["steps"]]
    assert all(moment is not None and moment.utcoffset().total_seconds() == 0 for moment in starts)
    assert all(
        step["started"].endswith("Z") and step["ended"].endswith("Z") for step in report["steps"]
    )
    assert starts == sorted(starts)  # type: ignore[type-var]
    for start, end in zip(starts, ends, strict=True):
        assert start is not None and end is not None and end >= start
    # each step starts once the one before it has ended
    for before, after in zip(ends, starts[1:], strict=False):
        assert before is not None and after is not None and after >= before


@pytest.mark.parametrize("engine", ENGINES)
def test_the_wait_step_lasts_at_least_its_duration(perf_runs: Runs, engine: str) -> None:
    for report in perf_runs.reports[engine]:
        settle = _by_name(report)["settle"]
        took = seconds_between(settle["started"], settle["ended"])
        assert took is not None and took >= WAIT_SECONDS, settle
        assert took < WAIT_SECONDS + 10
        assert settle["status"] == "succeeded"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failed_step_is_failed_also_when_caught(perf_runs: Runs, engine: str) -> None:
    steps = _by_name(perf_runs.reports[engine][0])
    assert steps["charge"]["status"] == "failed"  # its failure was caught: the run went on
    assert steps["notify"]["status"] == "succeeded"
    assert steps["reserve"]["status"] == "succeeded"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_step_a_failed_run_ended_in_is_failed(perf_runs: Runs, engine: str) -> None:
    report = perf_runs.reports[engine][2]
    assert report["status"] == "failed" and report["error"]["error"] == "Rejected"
    assert [step["name"] for step in report["steps"]] == ["reserve", "settle", "route", "rejected"]
    rejected = report["steps"][-1]
    assert rejected["status"] == "failed" and rejected["ended"] is not None
    assert [step["status"] for step in report["steps"][:-1]] == ["succeeded"] * 3


def test_text_output_lists_each_step_with_its_duration(
    perf_runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_run(perf_runs.reports["temporal"][0], waited=True)
    lines = capsys.readouterr().out.splitlines()
    settle = next(line for line in lines if line.startswith("step: settle"))
    assert settle.startswith(f"step: settle succeeded {WAIT_SECONDS}.")
    assert any(line.startswith("step: charge failed ") for line in lines)


@pytest.mark.parametrize("engine", ENGINES)
def test_parallel_branches_and_map_iterations_have_their_own_records(
    perf_repo: Path, perf_worker: None, perf_deployed: None, tmp_path: Path, engine: str
) -> None:
    """Nested steps are reported once per time they ran (a map child once per iteration);
    the parallel or map step's own record spans them all."""
    items = [{"n": 1}, {"n": 2}, {"n": 3}]
    code, report = cpl_run(
        perf_repo, "perf/fanout", TARGETS[engine], {"items": items}, tmp_path / "run.json"
    )
    assert code == 0, report
    names = [step["name"] for step in report["steps"]]
    assert names == report["trace"]
    assert sorted(names) == sorted(
        ["split", "slow-branch", "quick-branch", "each", "item", "item", "item", "finish"]
    )
    assert all(step["status"] == "succeeded" for step in report["steps"])

    def span(step: dict[str, Any]) -> tuple[Any, Any]:
        return parse_time(step["started"]), parse_time(step["ended"])

    by_name = {step["name"]: step for step in report["steps"]}
    split, each = span(by_name["split"]), span(by_name["each"])
    for child in ("slow-branch", "quick-branch"):
        start, end = span(by_name[child])
        assert split[0] <= start and end <= split[1]
    slow = by_name["slow-branch"]
    assert (seconds_between(slow["started"], slow["ended"]) or 0) >= WAIT_SECONDS
    for step in report["steps"]:
        if step["name"] == "item":
            start, end = span(step)
            assert each[0] <= start and end <= each[1]
    assert split[1] <= each[0]  # the map starts once the parallel step has ended


def test_an_approval_that_timed_out_into_on_timeout_is_failed(
    perf_repo: Path, perf_worker: None, tmp_path: Path
) -> None:
    """As on Step Functions, where the approval's task times out and a catch takes over."""
    code, report = cpl_run(perf_repo, "perf/sign-off", TARGETS["temporal"], {}, tmp_path / "r")
    assert code == 0, report
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("approve", "failed"),
        ("escalate", "succeeded"),
    ]
    approve = report["steps"][0]
    assert (seconds_between(approve["started"], approve["ended"]) or 0) >= 1
