"""Coverage of drift reports whose reads partly failed, as the summary line, the JSON summary
and the Prometheus sample show it.

The reports are built directly: a single resource that fails to read on a reachable engine,
and a target that goes down after some of its reads finished, cannot be produced on demand
with the real engines (tests/drift/test_drift.py covers whole targets that are down).
"""

from __future__ import annotations

from controlplane.drift.metrics import drift_metrics
from controlplane.drift.model import DriftItem, DriftReport, ReadFailure, Status, TargetStats
from controlplane.drift.render import drift_markdown, drift_text


def _item(target: str, resource: str, status: Status) -> DriftItem:
    return DriftItem(f"retail/{resource}", target, "stepfunctions", resource, status)


def _report(items: list[DriftItem], failures: list[ReadFailure]) -> DriftReport:
    targets = (TargetStats("east", "stepfunctions"), TargetStats("west", "stepfunctions"))
    return DriftReport("prod", tuple(items), tuple(failures), targets)


def _summary_line(report: DriftReport) -> str:
    return next(line for line in drift_text(report) if line.startswith("environment prod"))


def _coverage_sample(report: DriftReport) -> str:
    (line,) = [
        line
        for line in drift_metrics(report).splitlines()
        if line.startswith("cpl_drift_coverage_ratio{")
    ]
    return line.rsplit(" ", 1)[1]


def test_every_target_read_gives_plain_coverage() -> None:
    report = _report([_item("east", "a", "in-sync"), _item("west", "b", "unmanaged")], [])
    assert report.summary["coverage"] == 0.5
    assert "coverage 50.0%, " in _summary_line(report)
    assert _coverage_sample(report) == "0.5"


def test_a_target_that_went_down_is_left_out_of_coverage() -> None:
    # east answered one read, then went down: its unmanaged resources were never listed
    report = _report(
        [
            _item("east", "a", "in-sync"),
            _item("west", "b", "in-sync"),
            _item("west", "c", "unmanaged"),
        ],
        [ReadFailure("east", "stepfunctions", "connection refused", None, True)],
    )
    summary = report.summary
    assert (summary["coverage"], summary["targets_read"], summary["managed"]) == (0.5, 1, 2)
    assert "coverage 50.0% of what was read (1 target not read), " in _summary_line(report)
    assert "| 50.0% of what was read (1 target not read) |" in drift_markdown(report)
    assert _coverage_sample(report) == "0.5"


def test_failed_reads_of_single_resources_are_named() -> None:
    report = _report(
        [_item("east", "a", "in-sync"), _item("west", "b", "unmanaged")],
        [
            ReadFailure("east", "stepfunctions", "access denied", "d"),
            ReadFailure("west", "stepfunctions", "access denied", "e"),
        ],
    )
    assert report.summary["coverage"] == 0.5
    assert "coverage 50.0% of what was read (2 reads failed), " in _summary_line(report)


def test_nothing_read_means_unknown_coverage_not_full() -> None:
    report = _report(
        [_item("west", "b", "missing")],
        [ReadFailure("east", "stepfunctions", "connection refused", None, True)],
    )
    assert report.summary["coverage"] is None
    assert report.to_json()["summary"]["coverage"] is None
    assert "coverage unknown (1 target not read), " in _summary_line(report)
    assert _coverage_sample(report) == "NaN"


def test_nothing_deployed_and_everything_read_is_full_coverage() -> None:
    report = _report([_item("east", "a", "missing")], [])
    assert report.summary["coverage"] == 1.0
    assert "coverage 100.0%, " in _summary_line(report)
