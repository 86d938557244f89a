"""SLO attainment for `cpl report`: each workflow's `spec.slo` held against the runs its
engines recorded over the report window.

Per workflow with an `slo` and per target it is placed on, the finished runs that started in
the window (at most `MAX_WINDOW_RUNS`, newest first) are read through the engine's runner
(`Runner.runs`), and each objective is graded:

* `successRate`: succeeded runs / finished runs must be at least the objective;
* `completionTime.p50|p95|p99`: that percentile (nearest rank) of the succeeded runs'
  durations must be at most the objective;

`pass` or `fail`, and `no-data` when there is nothing to measure (no finished run; for a
completion time, no succeeded run): an objective never passes without data. A target whose
engine cannot be read (or that has no run history cpl reads) is `unavailable` with the
reason, and its objectives are `no-data`. The step profile of the newest `PROFILE_RUNS`
runs shows where the time goes. The report's verdict per workflow is the worst of its
objectives on all its targets.

This module builds data only; `controlplane.report.slo_html` renders it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from controlplane.engines.runs import RunRecord
from controlplane.errors import CplError, EngineError
from controlplane.runstats import Durations, StepProfile, run_durations, step_profile
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

ObjectiveStatus = Literal["pass", "fail", "no-data"]

DEFAULT_WINDOW = "30d"
MAX_WINDOW_RUNS = 1000
"""Runs read per workflow and target over the window (newest first)."""
PROFILE_RUNS = 20
"""Runs whose step timings make the step profile (newest first)."""

ReadRuns = Callable[[Workflow, Target, dt.datetime], list[RunRecord]]


@dataclass(frozen=True)
class Objective:
    """One objective of `spec.slo` on one target: what it asks and what was observed."""

    name: str  # successRate | completionTime.p50 | completionTime.p95 | completionTime.p99
    objective: float  # a ratio, or seconds
    observed: float | None
    status: ObjectiveStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": self.name,
            "target": self.objective,
            "observed": None if self.observed is None else round(self.observed, 4),
            "status": self.status,
        }


@dataclass(frozen=True)
class TargetSlo:
    """A workflow's SLO on one target over the window."""

    target: str
    engine: str
    objectives: tuple[Objective, ...]
    runs: int = 0
    succeeded: int = 0
    durations: Durations = field(default_factory=lambda: Durations(0))
    steps: tuple[StepProfile, ...] = ()
    unavailable: str | None = None

    @property
    def status(self) -> ObjectiveStatus:
        return worst(o.status for o in self.objectives)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "status": self.status,
            "unavailable": self.unavailable,
            "runs": self.runs,
            "succeeded": self.succeeded,
            "failed": self.runs - self.succeeded,
            "successRate": round(self.succeeded / self.runs, 4) if self.runs else None,
            "completionTime": self.durations.to_json(),
            "objectives": [o.to_json() for o in self.objectives],
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class WorkflowSlo:
    workflow: str
    targets: tuple[TargetSlo, ...]

    @property
    def status(self) -> ObjectiveStatus:
        return worst(t.status for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "status": self.status,
            "targets": [t.to_json() for t in self.targets],
        }


@dataclass(frozen=True)
class SloAttainment:
    """The SLO section of the report: the window and every workflow that declares an SLO."""

    window: str
    since: dt.datetime
    workflows: tuple[WorkflowSlo, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "no-data": 0}
        for workflow in self.workflows:
            counts[workflow.status] += 1
        return counts

    @property
    def unavailable(self) -> list[str]:
        """`<workflow> on <target>: <reason>` for every target whose runs could not be read."""
        return [
            f"{w.workflow} on {t.target}: {t.unavailable}"
            for w in self.workflows
            for t in w.targets
            if t.unavailable is not None
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "since": self.since.isoformat(),
            "maxRuns": MAX_WINDOW_RUNS,
            "summary": self.counts,
            "workflows": [w.to_json() for w in self.workflows],
        }


def worst(statuses: Any) -> ObjectiveStatus:
    """fail over no-data over pass; nothing at all is no-data."""
    seen = set(statuses)
    if "fail" in seen:
        return "fail"
    if "no-data" in seen or not seen:
        return "no-data"
    return "pass"


def attainment(
    environment: Environment,
    workflows: Sequence[Workflow],
    window: str,
    window_seconds: float,
    now: dt.datetime,
    read: ReadRuns | None = None,
    repo: Path | None = None,
) -> SloAttainment:
    """Grade every workflow with an `slo` on each of its targets (module doc). `read`
    replaces the engines' runners (the default reads through them; `repo` holds the local
    key rings that decrypt the runs' payloads)."""
    since = now - dt.timedelta(seconds=window_seconds)
    reader = read or _runner_reader(environment, repo)
    graded = []
    unreachable: dict[str, str] = {}  # target → why: an engine that failed is asked once
    for workflow in sorted(workflows, key=lambda w: w.key):
        if workflow.spec.slo is None:
            continue
        targets = []
        for target in environment.targets_for(workflow):
            if target.name in unreachable:
                targets.append(_unavailable(workflow, target, unreachable[target.name]))
                continue
            try:
                runs = reader(workflow, target, since)
            except EngineError as error:
                unreachable[target.name] = error.message
                targets.append(_unavailable(workflow, target, error.message))
                continue
            except CplError as error:  # this workflow's problem (e.g. no roleArn to find it)
                targets.append(_unavailable(workflow, target, error.message))
                continue
            targets.append(grade_target(workflow, target, runs))
        graded.append(WorkflowSlo(workflow.key, tuple(targets)))
    return SloAttainment(window, since, tuple(graded))


def grade_target(workflow: Workflow, target: Target, runs: Sequence[RunRecord]) -> TargetSlo:
    """The objectives of the workflow's SLO against `runs` (module doc)."""
    succeeded = sum(1 for run in runs if run["status"] == "succeeded")
    durations = run_durations(runs)
    objectives = [
        _objective(name, wanted, observed, higher_is_better)
        for name, wanted, observed, higher_is_better in _asked(
            workflow, succeeded / len(runs) if runs else None, durations
        )
    ]
    timed = [run for run in runs if run["steps"] is not None]
    return TargetSlo(
        target.name,
        target.engine,
        tuple(objectives),
        runs=len(runs),
        succeeded=succeeded,
        durations=durations,
        steps=tuple(step_profile(timed, workflow)),
    )


def _asked(
    workflow: Workflow, rate: float | None, durations: Durations
) -> list[tuple[str, float, float | None, bool]]:
    slo = workflow.spec.slo
    assert slo is not None
    asked: list[tuple[str, float, float | None, bool]] = []
    if slo.success_rate is not None:
        asked.append(("successRate", slo.success_rate, rate, True))
    if slo.completion_time is not None:
        for quantile in ("p50", "p95", "p99"):
            wanted = getattr(slo.completion_time, quantile)
            if wanted is not None:
                observed = durations.quantile(quantile)
                asked.append((f"completionTime.{quantile}", wanted.seconds, observed, False))
    return asked


def _objective(name: str, wanted: float, observed: float | None, higher: bool) -> Objective:
    if observed is None:
        return Objective(name, wanted, None, "no-data")
    met = observed >= wanted if higher else observed <= wanted
    return Objective(name, wanted, observed, "pass" if met else "fail")


def _unavailable(workflow: Workflow, target: Target, reason: str) -> TargetSlo:
    objectives = tuple(
        Objective(name, wanted, None, "no-data")
        for name, wanted, _, _ in _asked(workflow, None, Durations(0))
    )
    return TargetSlo(target.name, target.engine, objectives, unavailable=reason)


def _runner_reader(environment: Environment, repo: Path | None) -> ReadRuns:
    from controlplane.engines import engine_named

    def read(workflow: Workflow, target: Target, since: dt.datetime) -> list[RunRecord]:
        engine = engine_named(target.engine)
        if engine.runner is None:
            raise EngineError(f"cpl reads no run history from {target.engine} targets")
        return engine.runner(environment, repo).runs(
            workflow, target, limit=MAX_WINDOW_RUNS, since=since, timings=PROFILE_RUNS
        )

    return read
