"""`cpl check` (the policy gates of an environment) and `cpl policy test` (Rego unit tests)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import click

from controlplane.cli.output import (
    cache_option,
    console_for,
    emit,
    format_option,
    repo_option,
    to_json,
    today_option,
)
from controlplane.compliance.evidence import record_check
from controlplane.errors import ExitCode
from controlplane.notify import notify_check
from controlplane.pipeline import desired_state
from controlplane.policy.decision import Decision
from controlplane.policy.testing import TestReport, run_tests
from controlplane.report.check import check_json, check_text
from controlplane.report.junit import check_junit
from controlplane.report.markdown import check_markdown
from controlplane.report.sarif import check_sarif
from controlplane.terminal import warn

REPORT_FORMATS = ("json", "markdown", "sarif", "junit")


@click.command("check")
@click.option("--env", "env_name", required=True, help="The environment to check against.")
@click.option(
    "--base",
    metavar="REF",
    default=None,
    help="Git ref to compare with: check only workflows changed since REF, with their "
    "change (previous version, breaking changes, version bump).",
)
@today_option
@cache_option
@repo_option
@format_option(*REPORT_FORMATS)
def check_command(
    env_name: str,
    base: str | None,
    today: dt.datetime | None,
    no_cache: bool,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Run the policy gates on every (workflow, target) of an environment.

    Exits 3 when a mandatory rule is violated (and not waived) or a waiver has expired,
    1 when documents are invalid or a workflow cannot be placed on any target. The outcome
    and the waivers it used are recorded in the environment's audit trail.
    """
    desired = desired_state(
        repo,
        env_name,
        base,
        today.date() if today else None,
        use_cache=not no_cache,
        materialize="none",
    )
    decision = desired.decision
    notify_check(repo, env_name, decision)
    for problem in record_check(repo, desired.environment, decision, base):
        warn(problem)
    report = _render(decision, output_format)
    if output_file is not None or output_format == "text":
        _print_text(decision)
    if output_file is not None:
        emit(report, output_file)
    elif output_format != "text":
        emit(report, None)
    return int(decision.exit_code)


def _render(decision: Decision, output_format: str) -> str:
    if output_format == "json":
        return to_json(check_json(decision))
    if output_format == "sarif":
        return json.dumps(check_sarif(decision), indent=2)
    if output_format == "junit":
        return check_junit(decision)
    if output_format == "markdown":
        return check_markdown(decision, _link_base())
    return "\n".join(check_text(decision))


def _link_base() -> str | None:
    """Blob links for file:line references when running in GitHub Actions."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    sha = os.environ.get("CPL_LINK_SHA") or os.environ.get("GITHUB_SHA")
    if server and repository and sha:
        return f"{server}/{repository}/blob/{sha}/"
    return None


def _print_text(decision: Decision) -> None:
    console = console_for()
    for line in check_text(decision):
        style = None
        if ", denied]" in line or line == "denied" or ": CPL-C" in line:
            style = "red"
        elif line == "passed":
            style = "green"
        elif ", warning]" in line or "waiver" in line:
            style = "yellow"
        console.print(line, style=style, markup=False)


@click.group("policy")
def policy_group() -> None:
    """Work on the Rego policy library."""


@policy_group.command("test")
@click.argument(
    "directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option("--verbose", "-v", is_flag=True, help="List passing tests too.")
def policy_test_command(directory: Path | None, output_format: str, verbose: bool) -> int:
    """Run the Rego unit tests (`test_*` rules) of the built-in library and of DIRECTORY.

    Tests run on real OPA; exits 1 when any test fails or errors.
    """
    report = run_tests([directory] if directory else [])
    if output_format == "json":
        emit(to_json(_tests_json(report)), None)
    else:
        console = console_for()
        for case in report.cases:
            if case.passed and not verbose:
                continue
            style = "green" if case.passed else "red"
            detail = f": {case.detail}" if case.detail else ""
            console.print(
                f"{case.file}:{case.line}: {case.status.upper()} {case.package}.{case.name}"
                f"{detail} ({case.seconds * 1000:.1f}ms)",
                style=style,
                markup=False,
            )
        console.print(
            f"{len(report.cases)} tests: {report.count('pass')} passed, "
            f"{report.count('fail')} failed, {report.count('error')} errors",
            style="green" if report.ok else "red",
            markup=False,
        )
    return int(ExitCode.OK if report.ok else ExitCode.ERROR)


def _tests_json(report: TestReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "tests": [
            {
                "package": c.package,
                "name": c.name,
                "file": c.file,
                "line": c.line,
                "status": c.status,
                "seconds": round(c.seconds, 6),
                "detail": c.detail,
            }
            for c in report.cases
        ],
        "summary": {s: report.count(s) for s in ("pass", "fail", "error")},
    }
