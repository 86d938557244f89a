"""The SLO section of `cpl report`, from the runs `cpl run` made on the real engines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.engines.temporal.devserver import free_port

from .conftest import RUNS, TARGETS, WAIT_SECONDS, Runs, environment_yaml

pytestmark = pytest.mark.integration


def report_json(repo: Path, env: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    code = run(
        ["report", "--env", env, "--repo", str(repo), "--format", "json", "-o", str(out), *args]
    )
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_report_grades_each_objective_against_the_runs(
    perf_runs: Runs, perf_repo: Path, tmp_path: Path
) -> None:
    slo = report_json(perf_repo, "perf", tmp_path, "--window", "1d")["slo"]
    assert slo["window"] == "1d"
    checkout = next(w for w in slo["workflows"] if w["workflow"] == "perf/checkout")
    assert checkout["status"] == "fail"  # 2 of 3 runs succeeded, the objective is 99 %
    assert {t["target"] for t in checkout["targets"]} == set(TARGETS.values())
    for target in checkout["targets"]:
        assert target["unavailable"] is None
        assert (target["runs"], target["succeeded"], target["failed"]) == (len(RUNS), 2, 1)
        objectives = {o["objective"]: o for o in target["objectives"]}
        assert objectives["successRate"] == {
            "objective": "successRate",
            "target": 0.99,
            "observed": round(2 / 3, 4),
            "status": "fail",
        }
        p50 = objectives["completionTime.p50"]
        assert p50["target"] == 30 and p50["status"] == "pass"
        assert WAIT_SECONDS <= p50["observed"] <= 30
        assert objectives["completionTime.p95"]["status"] == "pass"
        slowest = max(target["steps"], key=lambda step: step["p50"])
        assert slowest["name"] == "settle" and slowest["count"] == len(RUNS)


def test_no_runs_is_no_data_never_a_pass(perf_runs: Runs, perf_repo: Path, tmp_path: Path) -> None:
    slo = report_json(perf_repo, "perf", tmp_path)["slo"]
    assert slo["window"] == "30d"
    idle = next(w for w in slo["workflows"] if w["workflow"] == "perf/idle")
    assert idle["status"] == "no-data"
    for target in idle["targets"]:
        assert target["runs"] == 0 and target["unavailable"] is None
        assert target["objectives"] == [
            {"objective": "successRate", "target": 0.9, "observed": None, "status": "no-data"}
        ]
    assert slo["summary"] == {"pass": 0, "fail": 1, "no-data": 1}


def test_html_report_charts_slo_and_step_profile(
    perf_runs: Runs, perf_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert run(["report", "--env", "perf", "--repo", str(perf_repo), "-o", str(out)]) == 0
    page = out.read_text()
    section = page[page.index('<section aria-labelledby="slo">') :]
    section = section[: section.index("</section>")]
    assert "SLO attainment" in section
    assert "perf/checkout on temporal-perf (temporal)" in section
    assert "perf/checkout on sfn-perf (stepfunctions)" in section
    assert section.count("<svg") == 1 + 2  # the objectives, and one step profile per target
    assert "successRate" in section and "MISSED" in section and "NO DATA" in section
    assert re.search(r"<title>settle: p95 \d", section)
    assert "http://" not in section.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_an_unreachable_engine_leaves_the_report_whole(perf_repo: Path, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    (perf_repo / "environments" / "down.yaml").write_text(environment_yaml("down", address, None))
    try:
        data = report_json(perf_repo, "down", tmp_path)
        page = tmp_path / "report.html"
        assert run(["report", "--env", "down", "--repo", str(perf_repo), "-o", str(page)]) == 0
    finally:
        (perf_repo / "environments" / "down.yaml").unlink()
    assert data["workflows"]  # the compliance part is all there
    for workflow in data["slo"]["workflows"]:
        (target,) = workflow["targets"]
        assert workflow["status"] == "no-data"
        assert address in target["unavailable"]
        assert all(o["status"] == "no-data" for o in target["objectives"])
    assert "SLO data unavailable for this target" in page.read_text()


def test_no_slo_reads_no_engine(perf_repo: Path, tmp_path: Path) -> None:
    assert "slo" not in report_json(perf_repo, "perf", tmp_path, "--no-slo")


def test_markdown_report_has_the_slo_table(
    perf_runs: Runs, perf_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.md"
    args = ["report", "--env", "perf", "--repo", str(perf_repo), "--format", "markdown"]
    assert run([*args, "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Compliance report: environment perf")
    section = text[text.index("## SLO attainment") :]
    assert (
        "| perf/checkout | temporal-perf | 3 | `successRate` | ≥ 99.00% | 66.67% | ❌ missed |"
        in section
    )
    assert "| perf/checkout | sfn-perf | 3 | `completionTime.p50` | ≤ 30.00s |" in section
    assert "| perf/idle | sfn-perf | 0 | `successRate` | ≥ 90.00% | — | ⚪ no data |" in section
    assert "- **perf/checkout on sfn-perf**, slowest steps: " in section
