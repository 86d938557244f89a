"""`cpl report`: the compliance report for auditors (HTML, or the model as JSON).

The report is produced whatever it finds (exit 0): failing controls are its content, not an
error. Each report appends a `dev.cpl.report.generated` event to the environment's audit
sinks; those events are the compliance history the report charts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import click

from controlplane.audit import AuditError, Auditor
from controlplane.cli.output import (
    Duration,
    console_for,
    emit,
    repo_option,
    to_json,
    today_option,
)
from controlplane.compliance.model import (
    REPORT_GENERATED,
    ComplianceReport,
    assess,
    read_audit,
    report_event_data,
)
from controlplane.compliance.slo import DEFAULT_WINDOW, attainment
from controlplane.errors import ExitCode
from controlplane.pipeline import desired_state
from controlplane.report.compliance_markdown import compliance_markdown
from controlplane.report.html import render_html


@click.command("report")
@click.option("--env", "env_name", required=True, help="The environment to report on.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["html", "json", "markdown"]),
    default="html",
    show_default=True,
    help="A self-contained HTML page, the compliance model as JSON, or Markdown in brief.",
)
@click.option(
    "--output",
    "-o",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to FILE (default: standard output).",
)
@click.option(
    "--window",
    type=Duration(min=60, max=366 * 86400),
    default=DEFAULT_WINDOW,
    show_default=True,
    metavar="D",
    help="SLO attainment over the runs of this period (a duration such as 7d).",
)
@click.option(
    "--no-slo",
    "no_slo",
    is_flag=True,
    help="Leave out SLO attainment: read nothing from the engines.",
)
@today_option
@repo_option
def report_command(
    env_name: str,
    output_format: str,
    output_file: Path | None,
    window: float,
    no_slo: bool,
    today: dt.datetime | None,
    repo: Path,
) -> int:
    """Compliance report for auditors: per workflow and control, pass / fail / waived.

    Evidence: the git commit, the policy library digest, waivers (owner, expiry, ticket), the
    last apply per workflow, the last drift run and the audit chain status, with a chart of
    compliance over the audit history; and per workflow with an `slo`, its attainment over
    --window from the runs its engines recorded (docs/report.md). Exits 0 even when controls
    or objectives fail (the report says so).
    """
    # Progress goes to the terminal; to stderr when the report itself goes to stdout.
    console = console_for(err=output_file is None)
    say = console.print
    say(f"checking the policies of environment {env_name} ...", style="dim", markup=False)
    desired = desired_state(repo, env_name, today=today.date() if today else None)
    say("grading controls, reading the deploy state and git ...", style="dim", markup=False)
    assessment = assess(repo, desired, today.date() if today else None)
    recorded, problem = True, None
    try:
        outcome = Auditor.for_environment(repo, desired.environment).emit(
            REPORT_GENERATED, None, report_event_data(assessment)
        )
        for warning in outcome.warnings:
            say(f"warning: {warning}", style="yellow", markup=False)
    except AuditError as exc:  # the report is still produced; it says it was not recorded
        recorded, problem = False, exc.message
        say(f"warning: {exc.message}", style="yellow", markup=False)
    say("verifying the audit log and reading its history ...", style="dim", markup=False)
    audit = dataclasses.replace(
        read_audit(repo, desired.environment), recorded=recorded, problem=problem
    )
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0)
    slo = None
    if not no_slo:
        say("reading the runs of workflows with an SLO from their engines ...", style="dim")
        slo = attainment(
            desired.environment,
            desired.workflows,
            _window_text(window),
            window,
            generated,
            repo=repo,
        )
        for unavailable in slo.unavailable:
            say(f"warning: SLO data unavailable: {unavailable}", style="yellow", markup=False)
    report = ComplianceReport(assessment, audit, generated, slo)
    if output_format == "json":
        text = to_json(report.to_json())
    elif output_format == "markdown":
        text = compliance_markdown(report)
    else:
        text = render_html(report)
    emit(text, output_file)
    counts, workflows = assessment.counts, assessment.workflow_counts
    failing = workflows["fail"]
    where = f"written to {output_file}" if output_file is not None else "written to stdout"
    verdict = (
        f"{failing} of {len(assessment.workflows)} workflows fail a control"
        if failing
        else f"all {len(assessment.workflows)} workflows pass"
        + (" (with waivers)" if counts["waived"] else "")
    )
    chain = "audit chain intact" if audit.ok else "AUDIT CHAIN BROKEN"
    say(
        f"compliance report for {assessment.environment} {where}: {verdict}; control results: "
        f"{counts['fail']} fail, {counts['waived']} waived, {counts['pass']} pass; {chain} "
        "(exit 0: the report is produced whatever it finds)",
        style="red" if failing or not audit.ok else "green",
        markup=False,
    )
    if slo is not None and slo.workflows:
        slo_counts = slo.counts
        say(
            f"SLO attainment over {slo.window}: {slo_counts['fail']} workflows miss an "
            f"objective, {slo_counts['no-data']} without data, {slo_counts['pass']} meet all",
            style="red" if slo_counts["fail"] else "green",
            markup=False,
        )
    return int(ExitCode.OK)


def _window_text(seconds: float) -> str:
    """`--window` as written back: whole days, hours or minutes where it divides."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
