"""The comment or issue body: the marker first, under GitHub's limit whatever the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.ci.body import MAX_CHARS, compose
from tests.ci.actions import environment_with_cpl

MARKER = "<!-- cpl-plan:staging -->"


def test_a_small_report_is_kept_whole_after_the_marker() -> None:
    body = compose(MARKER, "### cpl plan\n\nNo changes.\n", footer="From run 7.")
    assert body == f"{MARKER}\n### cpl plan\n\nNo changes.\n\n---\nFrom run 7.\n"


def test_a_huge_report_is_cut_below_the_limit_with_its_code_block_closed() -> None:
    report = "### cpl plan\n\n```diff\n" + "+ step: a line of a long diff\n" * 10_000 + "```\n"
    body = compose(MARKER, report, footer="the footer stays")
    assert len(report) > MAX_CHARS and len(body) <= MAX_CHARS
    assert body.startswith(MARKER + "\n") and body.rstrip().endswith("the footer stays")
    assert body.count("```") % 2 == 0
    assert "The report is cut here" in body


def test_the_command_line_writes_the_body(tmp_path: Path) -> None:
    report = tmp_path / "plan.md"
    report.write_text("x" * (MAX_CHARS * 2), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "controlplane.ci.body", "--marker", MARKER, str(report)],
        capture_output=True,
        text=True,
        env=environment_with_cpl(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(MARKER) and len(done.stdout) <= MAX_CHARS


@pytest.mark.parametrize("marker", ["cpl-plan:staging", "<!-- a --> <script>", "<!-- -->"])
def test_a_marker_that_is_not_a_hidden_comment_is_refused(tmp_path: Path, marker: str) -> None:
    report = tmp_path / "plan.md"
    report.write_text("report", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "controlplane.ci.body", "--marker", marker, str(report)],
        capture_output=True,
        text=True,
        env=environment_with_cpl(),
        check=False,
    )
    assert done.returncode == 1 and "not a hidden marker" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_report_is_named(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controlplane.ci.body", "--marker", MARKER, "nowhere.md"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment_with_cpl(),
        check=False,
    )
    assert done.returncode == 1 and "nowhere.md" in done.stderr
