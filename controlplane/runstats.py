"""Statistics of finished runs: how long each step and each run took (`cpl runs profile`,
the SLO section of `cpl report`).

Percentiles are nearest-rank: p95 of 20 durations is the 19th smallest, so every reported
value is one a run really took. Durations are seconds, from the ISO 8601 times the runners
report (`engines/runs.py`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.engines.runs import RunRecord, spec_steps
from controlplane.spec.model import Workflow


def parse_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time (a `Z` or an offset; naive is UTC), None when it does not parse."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def seconds_between(started: str, ended: str | None) -> float | None:
    """Seconds from `started` to `ended` (None while open or unreadable; never negative)."""
    if ended is None:
        return None
    start, end = parse_time(started), parse_time(ended)
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` percentile (0 < q ≤ 100) of non-empty `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Durations:
    """How many durations were measured, and their p50, p95, p99 and max (seconds)."""

    count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        measured = list(values)
        if not measured:
            return cls(0)
        return cls(
            len(measured),
            percentile(measured, 50),
            percentile(measured, 95),
            percentile(measured, 99),
            max(measured),
        )

    def quantile(self, name: str) -> float | None:
        """`p50`, `p95` or `p99` by name."""
        value: float | None = getattr(self, name)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50": _rounded(self.p50),
            "p95": _rounded(self.p95),
            "p99": _rounded(self.p99),
            "max": _rounded(self.max),
        }


@dataclass(frozen=True)
class StepProfile:
    """One step over the runs read: its durations (one per time it ran, map iterations and
    retries of the step included) and how many of those ended failed."""

    name: str
    durations: Durations
    failed: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.durations.to_json(), "failed": self.failed}


def step_profile(runs: Sequence[RunRecord], workflow: Workflow) -> list[StepProfile]:
    """Per spec step of the runs that have step timings, slowest (p95) first."""
    durations: dict[str, list[float]] = {}
    failed: dict[str, int] = {}
    for run in runs:
        for step in spec_steps(run["steps"] or [], workflow):
            seconds = seconds_between(step["started"], step["ended"])
            if seconds is None:
                continue
            durations.setdefault(step["name"], []).append(seconds)
            failed[step["name"]] = failed.get(step["name"], 0) + (step["status"] == "failed")
    profiles = [
        StepProfile(name, Durations.of(values), failed[name]) for name, values in durations.items()
    ]
    return sorted(profiles, key=lambda p: (-(p.durations.p95 or 0.0), p.name))


def run_durations(runs: Iterable[RunRecord], status: str | None = "succeeded") -> Durations:
    """The durations of the runs that ended with `status` (None: every finished run)."""
    return Durations.of(
        seconds
        for run in runs
        if status is None or run["status"] == status
        if (seconds := seconds_between(run["started"], run["ended"])) is not None
    )


def format_seconds(value: float | None) -> str:
    """`850ms`, `1.25s`, `2m05s`, `1h02m`; `-` for no value."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.2f}s"
    if value < 3600:
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}m{seconds:02d}s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
