"""Nearest-rank percentiles and the step profile's arithmetic (pure functions)."""

from __future__ import annotations

from controlplane.engines.runs import RunRecord
from controlplane.runstats import (
    Durations,
    format_seconds,
    percentile,
    seconds_between,
    step_profile,
)
from controlplane.spec.model import Workflow


def test_percentiles_are_values_runs_took() -> None:
    values = [float(n) for n in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 99) == 20.0
    assert percentile([7.0], 95) == 7.0
    assert Durations.of([]) == Durations(0)


def test_seconds_between_iso_times() -> None:
    assert seconds_between("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z") == 1.5
    assert seconds_between("2026-01-01T00:00:00Z", None) is None
    assert seconds_between("not a time", "2026-01-01T00:00:00Z") is None


def test_profile_keeps_spec_steps_and_sorts_slowest_first() -> None:
    workflow = Workflow.model_validate(
        {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": "w", "tenant": "t", "version": "1.0.0", "owner": "o"},
            "spec": {
                "start": "a",
                "steps": [
                    {"name": "a", "type": "wait", "duration": "1s", "next": "b"},
                    {"name": "b", "type": "fail", "error": "E"},
                ],
            },
        }
    )
    run: RunRecord = {
        "runId": "r",
        "status": "failed",
        "started": "2026-01-01T00:00:00Z",
        "ended": "2026-01-01T00:00:03Z",
        "steps": [
            {
                "name": "input-check",
                "started": "2026-01-01T00:00:00Z",
                "ended": "2026-01-01T00:00:00Z",
                "status": "succeeded",
            },
            {
                "name": "a",
                "started": "2026-01-01T00:00:00Z",
                "ended": "2026-01-01T00:00:01Z",
                "status": "succeeded",
            },
            # an engine that runs a fail step as a state that exits still reports it failed
            {
                "name": "b",
                "started": "2026-01-01T00:00:01Z",
                "ended": "2026-01-01T00:00:03Z",
                "status": "succeeded",
            },
        ],
    }
    profile = step_profile([run], workflow)
    assert [(p.name, p.durations.max, p.failed) for p in profile] == [("b", 2.0, 1), ("a", 1.0, 0)]


def test_format_seconds() -> None:
    assert [format_seconds(v) for v in (None, 0.25, 1.234, 125, 3720)] == [
        "-",
        "250ms",
        "1.23s",
        "2m05s",
        "1h02m",
    ]
