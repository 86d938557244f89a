"""`cpl runs profile`: where a workflow's runs spend their time, per step.

Reads the last N finished runs of the workflow on each of its targets (or on `--target`)
through the engine's runner (`Runner.runs`: Temporal visibility and the interpreter's step
records, Step Functions ListExecutions and execution histories) and prints, per step, how
often it ran and its p50 / p95 / max duration, slowest first. JSON (docs/runtime.md, "Step
timings"):

    {"workflow", "environment", "last",
     "targets": [{"target", "engine", "runs", "timed", "failed",
                  "duration": {"count", "p50", "p95", "p99", "max"},
                  "steps": [{"name", "count", "p50", "p95", "p99", "max", "failed"}],
                  "error"}]}

Durations are seconds; `runs` counts the finished runs read, `timed` those with step
timings. A target whose engine cannot be read has `error` set (exit 1); no runs is not an
error (exit 0, the message says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.cli.selection import find_workflow, select_target
from controlplane.engines import engine_named
from controlplane.errors import ConfigError, CplError, ExitCode
from controlplane.runstats import (
    Durations,
    StepProfile,
    format_seconds,
    run_durations,
    step_profile,
)
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import load_environment
from controlplane.spec.model import Workflow

DEFAULT_LAST = 20
MAX_LAST = 200


@click.group("runs")
def runs_group() -> None:
    """What the finished runs of a workflow did (cpl runs profile)."""


@runs_group.command("profile")
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.option("--env", "env_name", required=True, help="The environment.")
@click.option("--target", "target_name", default=None, help="Only this target of ENV.")
@click.option(
    "--last",
    type=click.IntRange(1, MAX_LAST),
    default=DEFAULT_LAST,
    show_default=True,
    help=f"How many of the latest finished runs to read per target (at most {MAX_LAST}).",
)
@repo_option
@format_option("json")
def profile_command(
    workflow_ref: str,
    env_name: str,
    target_name: str | None,
    last: int,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Per step of WORKFLOW (tenant/name or a file): how often it ran and its p50, p95 and
    max duration over the last N finished runs on each target, slowest first.

    Exits 1 when a target's engine cannot be read.
    """
    environment = load_environment(repo, env_name)
    workflow = find_workflow(repo, workflow_ref)
    if target_name is not None:
        targets = [select_target(environment, workflow, target_name)]
    else:
        targets = environment.targets_for(workflow)
        if not targets:
            raise ConfigError(
                f"no target of environment '{environment.name}' selects workflow '{workflow.key}'"
            )
    profiles = [profile_target(environment, workflow, target, last, repo) for target in targets]
    report = {
        "workflow": workflow.key,
        "environment": environment.name,
        "last": last,
        "targets": profiles,
    }
    if output_format == "json":
        emit(to_json(report), output_file)
    else:
        _print(report)
        if output_file is not None:
            emit(to_json(report), output_file)
    failed = any(p["error"] is not None for p in profiles)
    return int(ExitCode.ERROR if failed else ExitCode.OK)


def profile_target(
    environment: Environment, workflow: Workflow, target: Target, last: int, repo: Path
) -> dict[str, Any]:
    """One target's entry of the JSON (module doc)."""
    entry: dict[str, Any] = {
        "target": target.name,
        "engine": target.engine,
        "runs": 0,
        "timed": 0,
        "failed": 0,
        "duration": Durations(0).to_json(),
        "steps": [],
        "error": None,
    }
    engine = engine_named(target.engine)
    if engine.runner is None:
        entry["error"] = f"cpl reads no runs from {target.engine} targets"
        return entry
    try:
        runs = engine.runner(environment, repo).runs(workflow, target, limit=last, timings=last)
    except CplError as error:
        entry["error"] = error.message
        return entry
    profile: list[StepProfile] = step_profile(runs, workflow)
    entry.update(
        runs=len(runs),
        timed=sum(1 for run in runs if run["steps"] is not None),
        failed=sum(1 for run in runs if run["status"] != "succeeded"),
        duration=run_durations(runs, status=None).to_json(),
        steps=[p.to_json() for p in profile],
    )
    return entry


def _print(report: dict[str, Any]) -> None:
    console = console_for()
    for entry in report["targets"]:
        head = f"{report['workflow']} on {entry['target']} ({entry['engine']})"
        if entry["error"] is not None:
            console.print(f"{head}: cannot read runs: {entry['error']}", style="red", markup=False)
            continue
        if not entry["runs"]:
            console.print(
                f"{head}: no finished runs to profile (start one with cpl run)", markup=False
            )
            continue
        duration = entry["duration"]
        console.print(
            f"{head}: last {entry['runs']} finished runs ({entry['failed']} not succeeded), "
            f"run p50 {format_seconds(duration['p50'])}, p95 {format_seconds(duration['p95'])}, "
            f"max {format_seconds(duration['max'])}",
            markup=False,
        )
        if not entry["steps"]:
            console.print("  no step timings recorded for these runs", markup=False)
            continue
        width = max(len("step"), *(len(step["name"]) for step in entry["steps"]))
        console.print(
            f"  {'step':<{width}}  {'count':>5}  {'p50':>8}  {'p95':>8}  {'max':>8}  failed",
            style="bold",
            markup=False,
        )
        for step in entry["steps"]:
            console.print(
                f"  {step['name']:<{width}}  {step['count']:>5}  "
                f"{format_seconds(step['p50']):>8}  {format_seconds(step['p95']):>8}  "
                f"{format_seconds(step['max']):>8}  {step['failed']:>6}",
                markup=False,
            )
