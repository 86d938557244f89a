"""`cpl check` (the policy gates of an environment) and `cpl policy test` (Rego unit tests)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import click

from controlplane.cli.output import (
    console_for,
    emit,
    format_option,
    repo_option,
    to_json,
    today_option,
)
from controlplane.environment import Environment, Target
from controlplane.errors import ConfigError, ExitCode
from controlplane.policy.change import Change
from controlplane.policy.decision import Decision, evaluate
from controlplane.policy.engine import open_engine
from controlplane.policy.inputs import PolicyInput, Rendered, build_inputs
from controlplane.policy.testing import TestReport, run_tests
from controlplane.report.check import check_json, check_text
from controlplane.report.junit import check_junit
from controlplane.report.markdown import check_markdown
from controlplane.report.sarif import check_sarif
from controlplane.spec.load import LoadResult, load_environment, load_repo, load_workflows
from controlplane.spec.model import Workflow
from controlplane.translate import render
from controlplane.translate.base import Artifact

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
@repo_option
@format_option(*REPORT_FORMATS)
def check_command(
    env_name: str,
    base: str | None,
    today: dt.datetime | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Run the policy gates on every (workflow, target) of an environment.

    Exits 3 when a mandatory rule is violated (and not waived) or a waiver has expired,
    1 when documents are invalid or a workflow cannot be placed on any target.
    """
    decision = check(repo, env_name, base, today.date() if today else None)
    report = _render(decision, output_format)
    if output_file is not None or output_format == "text":
        _print_text(decision)
    if output_file is not None:
        emit(report, output_file)
    elif output_format != "text":
        emit(report, None)
    return int(decision.exit_code)


def check(
    repo: Path, env_name: str, base: str | None = None, today: dt.date | None = None
) -> Decision:
    """Load, build inputs, evaluate in one batched pass: the decision of `cpl check`."""
    return assemble(repo, env_name, base, today).decision


@dataclass(frozen=True)
class Assembly:
    """Everything one policy pass over an environment saw and decided (`cpl check`, `plan`).

    `artifacts` are the artifacts rendered for the policy inputs, by (workflow, target): the
    desired state of the environment, rendered once.
    """

    environment: Environment
    loaded: LoadResult
    inputs: list[PolicyInput]
    decision: Decision
    artifacts: dict[tuple[str, str], Artifact] = field(default_factory=dict)
    previous: LoadResult | None = None  # the workflows at `--base`, when given


ChangeSource = Callable[[Environment, LoadResult], Mapping[str, Change]]


def assemble(
    repo: Path,
    env_name: str,
    base: str | None = None,
    today: dt.date | None = None,
    *,
    changes: ChangeSource | None = None,
) -> Assembly:
    """Load, render, build inputs and evaluate them in one batched pass.

    With `base`, inputs carry the change since that git ref and unchanged workflows are left
    out. Without it, `changes` (when given) supplies each workflow's change document, e.g.
    against the version last applied to the environment.
    """
    environment = load_environment(repo, env_name)
    loaded = _load(repo)
    previous = load_workflows(repo, ref=base) if base else None
    artifacts: dict[tuple[str, str], Artifact] = {}

    def render_once(workflow: Workflow, target: Target, env: Environment) -> Rendered:
        artifact = render(workflow, target, env)
        artifacts[(workflow.key, target.name)] = artifact
        return Rendered(dict(artifact.document), [s.to_json() for s in artifact.support])

    inputs, problems = build_inputs(loaded, environment, previous, render=render_once)
    if previous is None and changes is not None:
        known = changes(environment, loaded)
        inputs = [
            replace(i, document={**i.document, "change": known[i.workflow].to_json()})
            if i.workflow in known
            else i
            for i in inputs
        ]
    wanted = {(i.workflow, i.target) for i in inputs}
    artifacts = {key: a for key, a in artifacts.items() if key in wanted}
    engine = open_engine(environment, repo)
    try:
        decision = evaluate(
            inputs,
            environment,
            loaded.waivers,
            today,
            engine=engine,
            locate=loaded.locate,
            diagnostics=[*loaded.diagnostics, *problems],
        )
    finally:
        engine.close()
    return Assembly(environment, loaded, inputs, decision, artifacts, previous)


def _load(repo: Path) -> LoadResult:
    folders = [repo / name for name in ("workflows", "waivers") if (repo / name).is_dir()]
    if not (repo / "workflows").is_dir():
        raise ConfigError(f"no workflows/ in {repo}: nothing to check")
    return load_repo(repo, folders)


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
