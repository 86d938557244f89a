"""`cpl plan` and `cpl apply`: desired state against the live engines, and deploying it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from controlplane.cli.access import check_deploy_access, token_option
from controlplane.cli.output import (
    Seconds,
    cache_option,
    console_for,
    echo,
    emit,
    format_option,
    mark_finished,
    repo_option,
    to_json,
    today_option,
)
from controlplane.deploy.apply import (
    PLAN_CREATED,
    ApplyRefused,
    ApplyResult,
    Emit,
    Outcome,
    apply,
    refuse_unless_allowed,
)
from controlplane.deploy.backend import Backend, open_backend
from controlplane.deploy.direct import DirectBackend, close_clients, engine_clients
from controlplane.deploy.lock import DEFAULT_TIMEOUT
from controlplane.deploy.locks import EnvironmentLock, locked, open_lock
from controlplane.deploy.plan import Fingerprint, Plan, fingerprint, moved, plan, previous_changes
from controlplane.deploy.state import State
from controlplane.deploy.stores import StateBackend, StateStore, open_store
from controlplane.engines import EngineClient
from controlplane.errors import ConfigError, CplError, EngineError, ExitCode
from controlplane.notify import note_apply, notify_apply_failures
from controlplane.pipeline import DesiredState, desired_state
from controlplane.policy.change import Change
from controlplane.policy.decision import Decision
from controlplane.report.plan import (
    apply_text,
    outcome_line,
    plan_json,
    plan_markdown,
    plan_text,
    summary_line,
)
from controlplane.spec.environment import Environment
from controlplane.spec.load import LoadResult, load_environment

MAX_LOCK_WAIT = 86400.0
"""The longest --lock-timeout: a day (an apply holding the lock longer has died)."""


@dataclass
class Planning:
    """A plan and everything it was made from (the engine clients stay open for apply)."""

    desired: DesiredState
    plan: Plan
    state: State
    clients: dict[str, EngineClient]

    @property
    def decision(self) -> Decision:
        return self.desired.decision

    @property
    def environment(self) -> Environment:
        return self.desired.environment


def make_plan(
    repo: Path,
    env_name: str,
    base: str | None = None,
    today: dt.date | None = None,
    *,
    state: State | None = None,
    use_cache: bool = True,
) -> Planning:
    """Load, render, check, then plan against `state` (default: the environment's) and the
    live engines. With `--base`, only workflows changed since the ref are planned."""
    environment = load_environment(repo, env_name)
    store = open_store(environment, repo)
    current = state if state is not None else store.load(environment.name)

    known: dict[str, Change] = {}

    def against_state(env: Environment, loaded: LoadResult) -> dict[str, Change]:
        # asked twice (the policy inputs, then the planner): compared with the state once
        workflows = [w.model for w in loaded.workflows]
        if not known or any(w.key not in known for w in workflows):
            known.clear()
            known.update(previous_changes(store, current, workflows))
        return dict(known)

    desired = desired_state(
        repo,
        env_name,
        base,
        today,
        changes=against_state,
        use_cache=use_cache,
        materialize="scope" if base is not None else "all",
    )
    if base is not None:
        changes = dict(desired.changes or {})
        # deletes and the workflows pulled in by a shared resource are planned too
        scope: set[str] | None = {*changes, *(s.workflow for s in desired.subjects)}
    else:
        changes = against_state(environment, desired.loaded)
        scope = None
    clients = engine_clients(environment, repo)
    try:
        if desired.decision.errors:  # no plan from invalid documents: it would delete them
            made = Plan(environment.name, (), base)
        else:
            made = plan(
                environment,
                desired.in_scope(),
                current,
                clients=clients,
                changes=changes,
                scope=scope,
            )
            made = dataclasses.replace(made, base=base, unchanged=desired.unchanged)
        read = {
            name: "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
            for name, text in desired.loaded.texts.items()
            if text  # an unreadable file has no text: read (and digested) again
        }
        made = dataclasses.replace(
            made, fingerprint=fingerprint(repo, environment, made, current, known=read)
        )
    except BaseException:
        close_clients(clients)
        raise
    return Planning(desired, made, current, clients)


def plan_exit_code(planning: Planning) -> ExitCode:
    decision = planning.decision
    if decision.errors:
        return ExitCode.ERROR
    if decision.denied:
        return ExitCode.DENIED
    return ExitCode.OK if planning.plan.empty else ExitCode.CHANGES


@click.command("plan")
@click.option("--env", "env_name", required=True, help="The environment to plan for.")
@click.option(
    "--base",
    metavar="REF",
    default=None,
    help="Git ref: plan only the workflows changed since REF (their change document compares "
    "with REF; without it, with the version last applied to the environment).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan file (JSON) for `cpl apply --plan`.",
)
@today_option
@cache_option
@repo_option
@format_option("json", "markdown")
def plan_command(
    env_name: str,
    base: str | None,
    out: Path | None,
    today: dt.datetime | None,
    no_cache: bool,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Diff the desired state of an environment against its state and live engines.

    Exits 4 when there are changes, 0 when there are none, 3 when the policies deny them and
    1 when documents are invalid or an engine cannot be read.
    """
    planning = make_plan(
        repo, env_name, base, today.date() if today else None, use_cache=not no_cache
    )
    close_clients(planning.clients)
    commit = git_commit(repo)
    document = plan_json(planning.plan, planning.decision, commit=commit)
    if out is not None and planning.decision.errors:
        echo(f"no plan file written to {out}: documents are invalid", err=True)
    elif out is not None:
        emit(to_json(document), out)
    if output_format == "json":
        report = to_json(document)
    elif output_format == "markdown":
        report = plan_markdown(planning.plan, planning.decision)
    else:
        report = "\n".join(plan_text(planning.plan, planning.decision))
    if output_format == "text" or output_file is not None:
        _print_lines(plan_text(planning.plan, planning.decision))
    if output_format != "text" or output_file is not None:
        emit(report, output_file)
    audit(repo, planning.environment)(
        PLAN_CREATED,
        None,
        {
            "environment": planning.environment.name,
            "digest": planning.plan.digest,
            "base": base,
            "commit": commit,
            "counts": planning.plan.summary,
            "outcome": "denied" if planning.decision.denied else "allowed",
        },
    )
    return int(plan_exit_code(planning))


@click.command("apply")
@click.option("--env", "env_name", required=True, help="The environment to deploy.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Apply this plan file (from `cpl plan --out`); refused if the specs, the policies or "
    "the live state moved since it was made.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--backend",
    type=click.Choice(["direct", "pulumi"]),
    default=None,
    help="Deploy backend (default: the environment's deploy.backend).",
)
@click.option(
    "--lock-timeout",
    type=Seconds(min=0, max=MAX_LOCK_WAIT),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for another apply holding the environment's lock.",
)
@today_option
@token_option
@repo_option
@format_option("json")
@notify_apply_failures
def apply_command(
    env_name: str,
    plan_file: Path | None,
    yes: bool,
    backend: str | None,
    lock_timeout: float,
    today: dt.datetime | None,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Deploy an environment: plan, confirm (or --yes, or --plan), apply in order.

    Records the state after every resource, so an interrupted apply converges when run
    again. Exits 3 for a denied plan, 1 when anything failed or the plan file is stale.
    Where ENV declares spec.identity, --token (or CPL_TOKEN) must belong to one of its
    deploy.approvers (exit 3 otherwise).
    """
    environment = load_environment(repo, env_name)
    check_deploy_access(repo, environment, token, "apply")
    saved = _read_plan_file(plan_file, environment.name) if plan_file else None
    console = console_for(err=True)
    with _locked(environment, repo, lock_timeout, console.print) as (lock, state_backend):
        store = StateStore(state_backend, environment.name, lock)
        planning = make_plan(
            repo,
            env_name,
            saved.get("base") if saved else None,
            today.date() if today else None,
            state=store.state,
        )
        try:
            code = _apply_planned(
                repo, planning, store, saved, yes, backend, output_format, output_file
            )
        finally:
            close_clients(planning.clients)
    return keep_drift_schedule(repo, environment, code)


def keep_drift_schedule(repo: Path, environment: Environment, code: int) -> int:
    """After a successful apply: the environment's drift schedule (`spec.drift`, docs/drift.md)."""
    if code != int(ExitCode.OK) or environment.spec.drift is None:
        return code
    from controlplane.drift_runs import keep_schedule

    try:
        console_for(err=True).print(keep_schedule(repo, environment), markup=False)
    except CplError as error:  # the workflows are applied; the schedule is not
        raise EngineError(f"applied, but the drift schedule was not kept: {error}") from None
    return code


def sync(
    repo: Path,
    env_name: str,
    keys: set[tuple[str, str]],
    *,
    yes: bool,
    lock_timeout: float = 60.0,
    output_format: str = "text",
    output_file: Path | None = None,
) -> int:
    """Re-apply the desired state of the drifted (workflow, target) `keys` through the same
    policy gate, backend, state and audit as `cpl apply`. Never deletes anything: a resource
    drift calls unmanaged is in no spec, and only a person decides to remove it."""
    environment = load_environment(repo, env_name)
    console = console_for(err=True)
    with _locked(environment, repo, lock_timeout, console.print) as (lock, state_backend):
        store = StateStore(state_backend, environment.name, lock)
        planning = make_plan(repo, env_name, state=store.state)
        try:
            restricted = tuple(
                change
                for change in planning.plan.changes
                if (change.workflow, change.target) in keys and change.action != "delete"
            )
            planning = dataclasses.replace(
                planning, plan=dataclasses.replace(planning.plan, changes=restricted)
            )
            return _apply_planned(
                repo, planning, store, None, yes, None, output_format, output_file
            )
        finally:
            close_clients(planning.clients)


def _apply_planned(
    repo: Path,
    planning: Planning,
    store: StateStore,
    saved: dict[str, Any] | None,
    yes: bool,
    backend_name: str | None,
    output_format: str,
    output_file: Path | None,
) -> int:
    made = planning.plan
    if saved is not None:
        _refuse_stale(saved, made)
    refuse_unless_allowed(planning.decision)
    if made.empty:
        _print_lines([summary_line(made)])
        return int(ExitCode.OK)
    if saved is None:
        _print_lines(plan_text(made, planning.decision))
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(
                    "not asking for confirmation without a terminal: pass --yes (or apply a "
                    "reviewed plan file with --plan)"
                )
            if not click.confirm("Apply these changes?", default=False):
                echo("Nothing applied.", err=True)
                return int(ExitCode.ERROR)
    environment = planning.environment
    chosen = backend_name or environment.spec.deploy.backend
    backend: Backend
    if chosen == "direct":
        backend = DirectBackend(environment, repo=repo, clients=planning.clients)
    else:
        backend = open_backend(chosen, environment, repo=repo)
    workflows = {w.model.key: w.model for w in planning.desired.loaded.workflows}
    from controlplane.audit import Auditor

    try:
        # the events of one apply: one S3 object per S3 audit sink, spooled as they happen
        with (
            _progress(len(made.pending)) as progress,
            Auditor.for_environment(repo, environment).batch(),
        ):
            result = apply(
                made,
                planning.decision,
                backend,
                store=store,
                emit=audit(repo, environment, workflows),
                progress=progress,
                workflows=workflows,
                git_commit=git_commit(repo),
            )
        # From here on the outcome is known: Ctrl-C while reporting, closing or unlocking
        # reports it (cli.run) instead of "Aborted.".
        mark_finished(apply_text(result)[-1], int(result.exit_code))
        note_apply(result, workflows)
    finally:
        backend.close()
    _report(result, output_format, output_file)
    return int(result.exit_code)


def _report(result: ApplyResult, output_format: str, output_file: Path | None) -> None:
    if output_format == "json":
        emit(to_json(result.to_json()), output_file)
        if output_file is None:
            return
    elif output_file is not None:
        emit("\n".join(apply_text(result)), output_file)
    _print_lines(apply_text(result), err=output_format == "json")


def _read_plan_file(path: Path, environment: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a plan file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("fingerprint"), dict):
        raise ConfigError(f"{path}: not a plan file of `cpl plan --out` (no fingerprint)")
    if document.get("environment") != environment:
        raise ConfigError(
            f"{path} is a plan for environment '{document.get('environment')}', not '{environment}'"
        )
    return document


def _refuse_stale(saved: dict[str, Any], current: Plan) -> None:
    assert current.fingerprint is not None
    reasons = moved(Fingerprint.from_json(saved["fingerprint"]), current.fingerprint)
    if not reasons and saved.get("digest") != current.digest:
        reasons.append("the planned changes differ from the plan file's")
    if reasons:
        raise ApplyRefused(
            "the plan is stale: " + "; ".join(reasons) + ". Run `cpl plan` again and review it"
        )


@contextmanager
def _locked(
    environment: Environment, repo: Path, timeout: float, say: Any
) -> Iterator[tuple[EnvironmentLock, StateBackend]]:
    """The environment's state and its lock; says who holds it when it has to wait."""
    backend = open_store(environment, repo)
    lock = open_lock(environment, backend, timeout=timeout)
    with locked(lock, say):
        yield lock, backend


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """Rich progress on a TTY, one quiet line per resource otherwise."""
    console = console_for(err=True)
    if not console.is_terminal:

        def line(outcome: Outcome) -> None:
            console.print(outcome_line(outcome), markup=False)

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("applying", total=total)

        def advance(outcome: Outcome) -> None:
            bar.console.print(outcome_line(outcome), markup=False)
            bar.update(task, advance=1)

        yield advance


def _print_lines(lines: list[str], err: bool = False) -> None:
    console = console_for(err=err)
    for line in lines:
        style = None
        if line.startswith(("  + ", "applied")):
            style = "green"
        elif line.startswith(("  - ", "FAILED", "SKIPPED", "PARTIAL")) or "BREAKING" in line:
            style = "red"
        elif line.startswith("  ~ "):
            style = "yellow"
        console.print(line, style=style, markup=False)


def git_commit(repo: Path) -> str | None:
    """The commit checked out in the control repo, if it is a git repository."""
    try:
        import git

        return str(git.Repo(repo, search_parent_directories=True).head.commit.hexsha)
    except Exception:  # not a repository, no commit yet, git missing: no provenance
        return None


# -- audit events -----------------------------------------------------------------------------


def audit(repo: Path, environment: Environment, workflows: dict[str, Any] | None = None) -> Emit:
    """The environment's audit trail (`controlplane.audit.Auditor`, docs/security.md) as an `Emit`;
    events about a known workflow are redacted for its classification."""
    from controlplane.audit import Auditor

    auditor = Auditor.for_environment(repo, environment)
    known = workflows or {}

    def _emit(event_type: str, subject: str | None, data: dict[str, Any]) -> None:
        workflow = known.get(subject or "")
        auditor.emit(
            event_type,
            subject,
            data,
            classification=workflow.metadata.classification if workflow is not None else None,
        )

    return _emit
