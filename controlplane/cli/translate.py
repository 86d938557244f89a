"""`cpl render` and `cpl compat`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.cli.selection import find_workflow, target_named
from controlplane.engines import ENGINES, render
from controlplane.engines.translator import Artifact
from controlplane.errors import ConfigError, ExitCode
from controlplane.pipeline import render_all
from controlplane.report.compat import compat_report, compat_text
from controlplane.spec.environment import ENGINE_NAMES, Environment
from controlplane.spec.load import load_environment, load_workflows
from controlplane.spec.model import Workflow


@click.command("render")
@click.argument("workflow_ref", metavar="WORKFLOW")
@click.option("--env", "env_name", required=True, help="The environment (environments/ENV.yaml).")
@click.option("--target", "target_name", help="Only this target (default: every selecting one).")
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the artifact files under DIR/<target>/ instead of printing them.",
)
@repo_option
@format_option("json", short_output=False)
def render_command(
    workflow_ref: str,
    env_name: str,
    target_name: str | None,
    out_dir: Path | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Print or write the engine artifacts of one workflow (WORKFLOW: tenant/name or a file)."""
    environment = load_environment(repo, env_name)
    workflow = find_workflow(repo, workflow_ref)
    targets = (
        [target_named(environment, target_name)]
        if target_name
        else environment.targets_for(workflow)
    )
    if not targets:
        raise ConfigError(
            f"no target of environment '{env_name}' selects workflow '{workflow.key}'"
        )
    artifacts = [render(workflow, target, environment) for target in targets]
    if out_dir is not None:
        console = console_for()
        for artifact in artifacts:
            for name, text in sorted(artifact.files.items()):
                path = out_dir / artifact.target / name
                emit(text, path)
                console.print(f"wrote {path}", markup=False)
        return int(ExitCode.OK)
    if output_format == "json":
        emit(to_json([_artifact_json(a) for a in artifacts]), output_file)
    else:
        chunks = []
        for artifact in artifacts:
            for name, text in sorted(artifact.files.items()):
                chunks.append(f"# {artifact.target}: {name}\n{text.rstrip()}\n")
        emit("\n".join(chunks), output_file)
    return int(ExitCode.OK)


@click.command("compat")
@click.argument("workflow_refs", nargs=-1, metavar="[WORKFLOW]...")
@click.option(
    "--engine",
    "engines",
    multiple=True,
    type=click.Choice(ENGINE_NAMES),
    help="Only these engines (repeatable; default: all).",
)
@click.option(
    "--details",
    is_flag=True,
    help="Also list, by workflow, every place (step or field) that is not exact on some "
    "engine, with its level per engine and its note.",
)
@repo_option
@format_option("json")
def compat_command(
    workflow_refs: tuple[str, ...],
    engines: tuple[str, ...],
    details: bool,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Portability of the workflows (WORKFLOW: tenant/name or a file; default: all).

    One row per construct: how many places in how many workflows use it and, per engine,
    exact, approx. (approximated), UNSUPPORTED or - (not used by the selected workflows on
    that engine). Each reason for a gap is printed once, as a numbered note naming the
    engines and places it concerns. --details adds every place that is not exact on some
    engine, by workflow; --format json has every construct at every place. The output is
    described in docs/compat.md.
    """
    workflows = _workflows(repo, workflow_refs)
    chosen = list(engines) or list(ENGINE_NAMES)
    environment = compat_environment(workflows, chosen)
    # shared resources (a Temporal namespace) carry no constructs: their findings are on
    # the workflows concerned
    artifacts = [a for a in render_all(workflows, environment) if not a.shared]
    report = compat_report(artifacts, chosen)
    if output_format == "json":
        emit(to_json(report.to_json()), output_file)
    elif output_file is not None:
        emit("\n".join(compat_text(report, details=details)), output_file)
    else:
        console = console_for()
        for line in compat_text(report, details=details):
            console.print(line, markup=False)
    return int(ExitCode.OK)


def _workflows(repo: Path, references: tuple[str, ...]) -> list[Workflow]:
    if references:
        return [find_workflow(repo, reference) for reference in references]
    result = load_workflows(repo)
    if not result.ok:
        raise ConfigError(
            "the workflows are invalid: run cpl validate", diagnostics=result.diagnostics
        )
    return [loaded.model for loaded in result.workflows]


def compat_environment(workflows: list[Workflow], engines: list[str]) -> Environment:
    """A production environment with one target per engine selecting every workflow, and a
    placeholder binding for every logical name: support depends on constructs, not on
    where names are bound. Each engine's bundle gives its sample settings (`Engine.compat`)."""
    from controlplane.spec.check import iter_scopes

    activities: dict[str, Any] = {}
    queues: dict[str, dict[str, str]] = {}
    keys: dict[str, dict[str, str]] = {}
    stores: dict[str, dict[str, str]] = {}
    for workflow in workflows:
        for scope in iter_scopes(workflow):
            for step in scope.steps:
                activity = getattr(step, "activity", None)
                if activity:
                    activities[activity] = {
                        name: engine.compat.activity(activity) for name, engine in ENGINES.items()
                    }
        spec = workflow.spec
        if spec.on_error and spec.on_error.dead_letter:
            queues[spec.on_error.dead_letter] = {engine: "compat" for engine in ENGINE_NAMES}
        if spec.security and spec.security.encryption:
            keys[spec.security.encryption.key] = {engine: "compat" for engine in ENGINE_NAMES}
        if spec.payload and spec.payload.offload:
            stores[spec.payload.offload.store] = {"url": "s3://compat"}
    targets = {name: dict(engine.compat.target) for name, engine in ENGINES.items()}
    return Environment.model_validate(
        {
            "apiVersion": "cpl.dev/v1",
            "kind": "Environment",
            "metadata": {"name": "compat"},
            "spec": {
                "tier": "production",
                "targets": [
                    {"name": engine, "engine": engine, "regulated": True, **targets[engine]}
                    for engine in engines
                    if engine in ENGINES
                ],
                "bindings": {
                    "activities": activities,
                    "queues": queues,
                    "keys": keys,
                    "stores": stores,
                },
            },
        }
    )


def _artifact_json(artifact: Artifact) -> dict[str, Any]:
    return {
        "workflow": artifact.workflow,
        "version": artifact.version,
        "target": artifact.target,
        "engine": artifact.engine,
        "resource": artifact.resource,
        "digest": artifact.digest,
        "document": artifact.document,
        "support": [s.to_json() for s in artifact.support],
    }
