"""`cpl import`: a Step Functions definition or an Argo template in, a spec out.

Three sources: a FILE (ASL JSON, or an Argo WorkflowTemplate/CronWorkflow YAML), `--live` (a
state machine read from a Step Functions target of the environment), and `--unmanaged` (what
`cpl drift` reports as unmanaged on the environment's Step Functions targets, adopted through
the same plan, policy gate, state and audit as `cpl apply`). Exit 0 when everything was
imported (or adopted), 1 on bad input or when an unmanaged resource could not be adopted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from controlplane.cli.deploy import _locked, audit, git_commit, make_plan
from controlplane.cli.drift import drift
from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.deploy.apply import apply
from controlplane.deploy.direct import DirectBackend, close_clients
from controlplane.deploy.stores import StateStore
from controlplane.errors import ConfigError, ExitCode
from controlplane.importing.adopt import Candidate, candidates
from controlplane.importing.live import read_state_machine, stepfunctions_target
from controlplane.importing.service import ImportOutcome, Naming, parse_source, prepare, write
from controlplane.spec.load import load_environment


@click.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--live", "live", metavar="RESOURCE", help="A state machine ARN or name to read.")
@click.option(
    "--unmanaged",
    is_flag=True,
    help="Adopt the state machines `cpl drift` reports as unmanaged for the tenant.",
)
@click.option("--env", "env_name", required=True, help="The environment to bind it in.")
@click.option("--tenant", required=True, help="The tenant of the imported workflow.")
@click.option("--name", default=None, help="The workflow name (default: from the source).")
@click.option("--owner", default=None, help="metadata.owner (default: the tenant).")
@click.option("--target", "target_name", default=None, help="With --live: the target to read.")
@click.option("--force", is_flag=True, help="Replace an existing workflow file.")
@click.option("--dry-run", is_flag=True, help="Print the spec and the report; write nothing.")
@repo_option
@format_option("json")
def import_command(
    file: Path | None,
    live: str | None,
    unmanaged: bool,
    env_name: str,
    tenant: str,
    name: str | None,
    owner: str | None,
    target_name: str | None,
    force: bool,
    dry_run: bool,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Turn an existing Step Functions definition or Argo template into a spec.

    Writes workflows/TENANT/NAME.yaml, adds the activity bindings it needs to
    environments/ENV.yaml (keeping its comments and layout; an existing binding is never
    changed) and prints the fidelity report: every construct imported exactly, approximated
    (how) or not importable (why), with its place in the source.
    """
    sources = sum(1 for given in (file is not None, live is not None, unmanaged) if given)
    if sources != 1:
        raise click.UsageError("give exactly one of FILE, --live RESOURCE or --unmanaged")
    if unmanaged and name is not None:
        raise click.UsageError("--unmanaged names each workflow after its state machine")
    environment = load_environment(repo, env_name)
    if unmanaged:
        return _adopt(repo, env_name, tenant, owner, force, dry_run, output_format, output_file)
    naming = Naming(tenant=tenant, name=name, owner=owner)
    if file is not None:
        document = parse_source(file)
        outcome = prepare(
            repo, environment, document, str(file), naming, default_name=file.name.split(".")[0]
        )
    else:
        assert live is not None
        target = stepfunctions_target(environment, target_name)
        machine = read_state_machine(environment, target, live)
        outcome = prepare(
            repo, environment, machine.definition, machine.arn, naming, default_name=machine.name
        )
    if not dry_run:
        write(repo, outcome, force=force)
    _show(outcome, dry_run, output_format, output_file)
    return int(ExitCode.OK)


def _show(
    outcome: ImportOutcome, dry_run: bool, output_format: str, output_file: Path | None
) -> None:
    if output_format == "json":
        emit(to_json(outcome.to_json()), output_file)
        return
    lines = _text(outcome, dry_run)
    if output_file is not None:
        emit("\n".join(lines), output_file)
    console = console_for()
    for line in lines:
        console.print(line, markup=False, highlight=False)


def _text(outcome: ImportOutcome, dry_run: bool) -> list[str]:
    lines = [outcome.report.text()]
    bindings = outcome.bindings
    if bindings.added:
        lines.append(
            f"bindings added to {outcome.environment_file}: {', '.join(sorted(bindings.added))}"
        )
    if bindings.reused:
        lines.append(f"bindings reused: {', '.join(sorted(bindings.reused))}")
    lines.extend(f"note: {note}" for note in outcome.notes)
    if dry_run:
        lines.append(f"--- {outcome.file} (dry run: nothing written)")
        lines.append(outcome.text.rstrip("\n"))
    else:
        lines.append(f"wrote {outcome.file}")
    return lines


# -- adopting unmanaged resources ----------------------------------------------------------


def _adopt(
    repo: Path,
    env_name: str,
    tenant: str,
    owner: str | None,
    force: bool,
    dry_run: bool,
    output_format: str,
    output_file: Path | None,
) -> int:
    environment = load_environment(repo, env_name)
    (repo / "workflows").mkdir(exist_ok=True)  # a repo with no specs yet: all is unmanaged
    report = drift(repo, env_name, tenants=(tenant,))
    if report.partial:
        raise ConfigError("not adopting: the drift report is partial (an engine could not be read)")
    found = candidates(repo, environment, tenant, report, owner)
    adoptable = [c for c in found if c.adoptable]
    written: list[Candidate] = []
    if not dry_run:
        for candidate in adoptable:
            assert candidate.outcome is not None
            try:
                write(repo, candidate.outcome, force=force)
                written.append(candidate)
            except ConfigError as error:
                candidate.reason = error.message
        # each write reads the environment file anew: bindings of earlier imports stay
        if written:
            _apply_adopted(repo, env_name, written)
    _show_adoption(found, dry_run, output_format, output_file)
    return int(ExitCode.OK if all(c.adoptable for c in found) else ExitCode.ERROR)


def _apply_adopted(repo: Path, env_name: str, adopted: list[Candidate]) -> None:
    """Apply the adopted specs alone (an in-place update of the same state machines), through
    the plan, policy gate, state and audit of `cpl apply`."""
    keys = {(c.outcome.key, c.item.target) for c in adopted if c.outcome is not None}
    environment = load_environment(repo, env_name)
    say = console_for(err=True).print
    with _locked(environment, repo, 60.0, say) as (lock, state_backend):
        store = StateStore(state_backend, environment.name, lock)
        planning = make_plan(repo, env_name, state=store.state)
        try:
            changes = []
            for change in planning.plan.changes:
                if (change.workflow, change.target) not in keys:
                    continue
                touched = [d["path"] for d in change.diff if d["path"].startswith("/definition")]
                if change.action != "update" or touched:
                    # never recreate or rewrite what was to be adopted as it is: its spec goes
                    for candidate in adopted:
                        if candidate.outcome and candidate.outcome.key == change.workflow:
                            candidate.reason = f"the plan would {change.action} it" + (
                                f" (at {', '.join(touched)})" if touched else ""
                            )
                            (repo / candidate.outcome.file).unlink(missing_ok=True)
                    continue
                changes.append(change)
            restricted = dataclasses.replace(planning.plan, changes=tuple(changes))
            workflows = {w.model.key: w.model for w in planning.desired.loaded.workflows}
            backend = DirectBackend(environment, repo=repo, clients=planning.clients)
            result = apply(
                restricted,
                planning.decision,
                backend,
                store=store,
                emit=audit(repo, environment, workflows),
                workflows=workflows,
                git_commit=git_commit(repo),
            )
        finally:
            close_clients(planning.clients)
    for outcome in result.failed:
        for candidate in adopted:
            if candidate.outcome and candidate.outcome.key == outcome.change.workflow:
                candidate.reason = f"apply failed: {outcome.message}"


def _show_adoption(
    found: list[Candidate], dry_run: bool, output_format: str, output_file: Path | None
) -> None:
    if output_format == "json":
        document: dict[str, Any] = {
            "dryRun": dry_run,
            "resources": [c.to_json() for c in found],
            "summary": {
                "unmanaged": len(found),
                "adopted": sum(1 for c in found if c.adoptable),
            },
        }
        emit(to_json(document), output_file)
        return
    lines: list[str] = []
    if not found:
        lines.append("nothing unmanaged for this tenant")
    for candidate in found:
        verb = "would adopt" if dry_run else "adopted"
        if candidate.adoptable and candidate.outcome is not None:
            lines.append(
                f"{verb} {candidate.item.resource} ({candidate.item.target}) as "
                f"{candidate.outcome.key}: {candidate.outcome.file}"
            )
        else:
            lines.append(
                f"left unmanaged {candidate.item.resource} ({candidate.item.target}): "
                f"{candidate.reason}"
            )
        if candidate.outcome is not None:
            lines.append(candidate.outcome.report.text(verbose=False))
    if output_file is not None:
        emit("\n".join(lines), output_file)
    console = console_for()
    for line in lines:
        console.print(line, markup=False, highlight=False)
