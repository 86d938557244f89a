"""`cpl drift`: read the live engines, diff them against the specs, report drift.

Exit codes (docs/drift.md): 0 in sync, 5 drift found, 1 when the report is partial (a target was
unreachable or a read failed after retries) or the documents are invalid.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from controlplane.cli.access import check_deploy_access, token_option
from controlplane.cli.deploy import sync as sync_drifted
from controlplane.cli.output import (
    console_for,
    emit,
    format_option,
    repo_option,
    to_json,
    write_output,
)
from controlplane.drift import (
    DEFAULT_CONCURRENCY,
    DriftReport,
)
from controlplane.drift.metrics import drift_metrics
from controlplane.drift.render import drift_markdown, drift_sarif, drift_text
from controlplane.drift_runs import run_drift
from controlplane.notify import notify_drift

REPORT_FORMATS = ("json", "markdown", "sarif")


@click.command("drift")
@click.option("--env", "env_name", required=True, help="The environment to read back.")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="TENANT",
    help="Only these tenants' workflows (repeatable): one shard of a large environment.",
)
@click.option(
    "--ref",
    default=None,
    metavar="REF",
    help="Desired state from the specs at this git ref (default: the working tree).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Reads in flight at once.",
)
@click.option(
    "--metrics",
    "metrics_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write Prometheus text-format metrics to FILE.",
)
@click.option(
    "--summary",
    "summary_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also append the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--sync",
    is_flag=True,
    help="Re-apply the desired state of modified and missing resources (policy-gated, "
    "like apply); unmanaged resources are reported, never deleted.",
)
@click.option("--yes", "-y", is_flag=True, help="With --sync: do not ask for confirmation.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="TARGET",
    help="Only these targets of ENV (repeatable).",
)
@click.option(
    "--on",
    "on",
    type=click.Choice(["local", "temporal"]),
    default="local",
    show_default=True,
    help="Where to read: in this process, or fanned out in shards on Temporal (cpl worker "
    "processes host them; docs/drift.md).",
)
@click.option(
    "--on-target",
    default=None,
    metavar="NAME",
    help="With --on temporal: the Temporal target that runs the drift workflow (default: "
    "spec.drift.on, else the environment's only Temporal target).",
)
@token_option
@repo_option
@format_option(*REPORT_FORMATS)
def drift_command(
    env_name: str,
    tenants: tuple[str, ...],
    targets: tuple[str, ...],
    on: str,
    on_target: str | None,
    ref: str | None,
    concurrency: int,
    metrics_file: Path | None,
    summary_file: Path | None,
    sync: bool,
    yes: bool,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Read the live engines and diff them against the specs.

    Reports each resource as in-sync, modified (with the field-level diff), missing or
    unmanaged, with coverage and whether the live state is still compliant with the policy
    library. Exits 5 on drift and 1 when an engine could not be read (partial report).
    With --sync, drifted resources are re-applied afterwards and the exit code is apply's.
    """
    if sync and ref is not None:
        raise click.UsageError("--sync applies the working tree's specs: it takes no --ref")
    if sync:  # checked before reading: a denied sync is refused at once (exit 3)
        from controlplane.spec.load import load_environment

        check_deploy_access(repo, load_environment(repo, env_name), token, "sync")
    fanned = None
    if on == "temporal":
        if ref is not None:
            raise click.UsageError("--on temporal reads the workers' checkout: it takes no --ref")
        from controlplane.cli.drift_fanout import drift_on_temporal

        fanned = drift_on_temporal(
            repo,
            env_name,
            tenants=tenants,
            targets=targets,
            concurrency=concurrency,
            on_target=on_target,
            sync=sync,
            yes=yes,
        )
        report = fanned.report
    elif on_target is not None:
        raise click.UsageError("--on-target goes with --on temporal")
    else:
        scope = {"targets": targets} if targets else None
        report = drift(
            repo, env_name, tenants=tenants, ref=ref, concurrency=concurrency, scope=scope
        )
    notify_drift(repo, env_name, report)
    if metrics_file is not None:
        write_output(metrics_file, drift_metrics(report))
    if summary_file is not None:
        write_output(summary_file, drift_markdown(report) + "\n", append=True)
    rendered = _render(report, output_format)
    if output_file is not None or output_format == "text":
        _print_text(report)
    if output_file is not None:
        emit(rendered, output_file)
    elif output_format != "text":
        emit(rendered, None)
    drifted = {
        (item.workflow, item.target)
        for item in report.items
        if item.status in ("modified", "missing") and item.workflow
    }
    if not sync or not drifted:
        return int(report.exit_code)
    if report.partial:
        console_for(err=True).print(
            "not syncing: the drift report is partial (an engine could not be read)",
            markup=False,
        )
        return int(report.exit_code)
    if fanned is not None:  # the drift workflow synced, after its approval step
        return fanned.sync_exit(len(drifted), int(report.exit_code))
    console_for(err=True).print(f"syncing {len(drifted)} drifted resource(s)", markup=False)
    return sync_drifted(repo, env_name, drifted, yes=yes)


def drift(
    repo: Path,
    env_name: str,
    *,
    tenants: tuple[str, ...] = (),
    ref: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    scope: Mapping[str, Any] | None = None,
) -> DriftReport:
    """A drift run (`controlplane.drift_runs.run_drift`) with a progress bar on a TTY."""
    with _progress() as progress:
        return run_drift(
            repo, env_name, tenants=tenants, ref=ref, concurrency=concurrency, scope=scope,
            progress=progress,
        )  # fmt: skip


def _render(report: DriftReport, output_format: str) -> str:
    if output_format == "json":
        return to_json(report.to_json())
    if output_format == "sarif":
        return json.dumps(drift_sarif(report), indent=2)
    if output_format == "markdown":
        return drift_markdown(report)
    return "\n".join(drift_text(report))


def _print_text(report: DriftReport) -> None:
    console = console_for()
    for line in drift_text(report):
        style = None
        if line.startswith(("unreachable", "read failed", "partial")) or "NON-COMPLIANT" in line:
            style = "red"
        elif line.startswith(("modified", "missing", "unmanaged")) or line == "drift":
            style = "yellow"
        elif line == "in sync":
            style = "green"
        console.print(line, style=style, markup=False)


@contextmanager
def _progress(wanted: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a TTY (stderr), nothing otherwise."""
    if not wanted or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("reading live resources"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console_for(err=True),
        transient=True,
    ) as bar:
        task = bar.add_task("drift", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
