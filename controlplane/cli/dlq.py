"""`cpl dlq list|show|replay|purge`: the dead letters of an environment's runs.

Each subcommand reads the environment's dead-letter queues and spool through
`controlplane.deadletters` (after re-sending what the spool holds); replay and purge are
recorded in the audit trail. JSON: `{"environment", "messages": [...]}` for list, one message
for show, `{"id", "replayedAs": <the run JSON of cpl run>, "again"}` for replay,
`{"id", "purged": true}` for purge.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import jsonschema

from controlplane.audit import Auditor
from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.cli.selection import find_workflow, select_target, target_named
from controlplane.deadletters.box import DeadLetterBox, DeadLetterError
from controlplane.deadletters.message import DeadLetter
from controlplane.dlq import Replayed, purge, replay
from controlplane.engines import engine_named
from controlplane.engines.runs import RUNNING, RunOutcome, spec_trace
from controlplane.errors import ConfigError, CplError, EngineError, ExitCode
from controlplane.redaction import mask_secrets, redact_run_error
from controlplane.spec.environment import Environment
from controlplane.spec.load import LoadResult, load_environment, load_workflows
from controlplane.spec.model import Workflow


def _common(func: Any) -> Any:
    func = click.option("--env", "env_name", required=True, help="The environment.")(func)
    func = click.option(
        "--target", "target_name", default=None, help="Only the dead letters of this target."
    )(func)
    func = repo_option(func)
    return format_option("json")(func)


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters of an environment's runs: list, show, replay, purge."""


@dlq_group.command("list")
@_common
def list_command(
    env_name: str, target_name: str | None, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """List the dead letters of ENV (none is consumed)."""
    environment, box = _box(repo, env_name, target_name)
    classes = _classifications(load_workflows(repo))
    messages = [_shown(letter, classes) for letter in box.letters()]
    if output_format == "json":
        emit(to_json({"environment": environment.name, "messages": messages}), output_file)
        return int(ExitCode.OK)
    console = console_for()
    if not messages:
        console.print(f"no dead letters in environment {environment.name}", markup=False)
    for message in messages:
        console.print(
            f"{message['id']}  {message['time']}  {message['workflow']} on {message['target']}"
            f"  {message['error']}: {message['cause']}",
            markup=False,
        )
    _note_pending(box)
    return int(ExitCode.OK)


@dlq_group.command("show")
@click.argument("letter_id", metavar="ID")
@_common
def show_command(
    letter_id: str,
    env_name: str,
    target_name: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Show one dead letter (a Step Functions run's trace is read from its history)."""
    environment, box = _box(repo, env_name, target_name)
    letter = box.find(letter_id)
    loaded = load_workflows(repo)
    if letter.trace is None:
        letter = replace(letter, trace=_trace(loaded, environment, letter, repo))
    message = _shown(letter, _classifications(loaded))
    if output_format == "json":
        emit(to_json(message), output_file)
        return int(ExitCode.OK)
    console = console_for()
    for key in ("id", "workflow", "version", "target", "runId", "time", "error", "cause"):
        console.print(f"{key}: {message[key]}", markup=False)
    console.print("trace: " + " → ".join(message["trace"] or []), markup=False)
    console.print("input: " + json.dumps(message["input"], indent=2), markup=False)
    return int(ExitCode.OK)


@dlq_group.command("replay")
@click.argument("letter_id", metavar="ID")
@click.option(
    "--input",
    "input_text",
    default=None,
    metavar="JSON|@FILE",
    help="A corrected input for the new run (validated against the input schema).",
)
@_common
def replay_command(
    letter_id: str,
    input_text: str | None,
    env_name: str,
    target_name: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Start a new run from a dead letter, audit it, then delete the message."""
    environment, box = _box(repo, env_name, target_name)
    corrected = input_text is not None
    corrected_input = _read_input(input_text) if input_text is not None else None
    workflows: dict[str, Workflow] = {}

    def workflow_of(letter: DeadLetter) -> Workflow:
        if letter.workflow not in workflows:
            workflows[letter.workflow] = find_workflow(repo, letter.workflow)
        return workflows[letter.workflow]

    def start(letter: DeadLetter, run_input: Any) -> str:
        workflow = workflow_of(letter)
        _validate(workflow, run_input, "--input" if corrected else f"dead letter {letter.id}")
        target = select_target(environment, workflow, letter.target)
        engine = engine_named(target.engine)
        if engine.runner is None:
            raise ConfigError(f"cpl starts no runs on target '{target.name}' ({target.engine})")
        return engine.runner(environment, repo).start(workflow, target, environment, run_input)

    result = replay(
        box,
        letter_id,
        start,
        Auditor.for_environment(repo, environment),
        corrected_input=corrected_input,
        corrected=corrected,
        classify=lambda letter: workflow_of(letter).metadata.classification,
    )
    workflow = workflow_of(result.letter)
    report = {
        "id": letter_id,
        "replayedAs": _run_report(environment, workflow, result.letter.target, result, repo),
        "again": result.again,
    }
    if output_format == "json":
        emit(to_json(report), output_file)
        return int(ExitCode.OK)
    verb = "was already replayed as" if result.again else "replayed as"
    console_for().print(
        f"dead letter {letter_id} of {result.letter.workflow} {verb} run {result.run_id}",
        markup=False,
    )
    return int(ExitCode.OK)


@dlq_group.command("purge")
@click.argument("letter_id", metavar="ID")
@_common
def purge_command(
    letter_id: str,
    env_name: str,
    target_name: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Delete one dead letter (audited)."""
    environment, box = _box(repo, env_name, target_name)
    classes = _classifications(load_workflows(repo))
    letter = purge(
        box,
        letter_id,
        Auditor.for_environment(repo, environment),
        classify=lambda letter: classes.get(letter.workflow),
    )
    if output_format == "json":
        emit(to_json({"id": letter.id, "purged": True}), output_file)
    else:
        console_for().print(f"purged dead letter {letter.id} of {letter.workflow}", markup=False)
    return int(ExitCode.OK)


# --- helpers ------------------------------------------------------------------------------


def _run_report(
    environment: Environment,
    workflow: Workflow,
    target_name: str,
    result: Replayed,
    repo: Path,
) -> dict[str, Any]:
    """The run JSON of `cpl run` for the replayed run: just started, or (replayed before)
    as it stands now."""
    target = environment.target(target_name)
    outcome: RunOutcome = RUNNING
    engine = engine_named(target.engine)
    if result.again and engine.runner is not None:
        try:
            outcome = engine.runner(environment, repo).outcome(target, result.run_id, 0.0)
        except CplError as error:
            raise EngineError(
                f"dead letter {result.letter.id} was replayed earlier as run {result.run_id} "
                f"(its message is now deleted), but that run cannot be read: {error.message}"
            ) from None
    return {
        "workflow": workflow.key,
        "target": target.name,
        "engine": target.engine,
        "runId": result.run_id,
        **outcome,
        "error": redact_run_error(outcome["error"], workflow.metadata.classification),
        "output": mask_secrets(outcome["output"]),
    }


def _box(repo: Path, env_name: str, target_name: str | None) -> tuple[Environment, DeadLetterBox]:
    environment = load_environment(repo, env_name)
    if target_name is not None:
        target_named(environment, target_name)
    return environment, DeadLetterBox(repo, environment, target_name)


def _classifications(loaded: LoadResult) -> dict[str, str]:
    return {w.model.key: w.model.metadata.classification for w in loaded.workflows}


def _shown(letter: DeadLetter, classes: dict[str, str]) -> dict[str, Any]:
    """The CLI's message fields, with secrets masked and a regulated cause redacted."""
    shown = letter.to_json()
    error = redact_run_error(
        {"error": letter.error, "cause": letter.cause}, classes.get(letter.workflow)
    )
    assert error is not None
    shown.update(error=error["error"], cause=error["cause"], input=mask_secrets(letter.input))
    return shown


def _trace(
    loaded: LoadResult, environment: Environment, letter: DeadLetter, repo: Path
) -> list[str] | None:
    """The run's trace from its engine (Step Functions: the execution history), in the
    terms of its workflow's steps when the repo still has the workflow."""
    try:
        target = environment.target(letter.target)
    except KeyError:
        return None
    engine = engine_named(target.engine)
    if engine.runner is None:
        return None
    trace = engine.runner(environment, repo).outcome(target, letter.runId, 0.0)["trace"]
    workflow = next((w.model for w in loaded.workflows if w.model.key == letter.workflow), None)
    return trace if workflow is None else spec_trace(trace, workflow)


def _validate(workflow: Workflow, run_input: Any, source: str) -> None:
    schema = workflow.spec.input.schema_ if workflow.spec.input else None
    if not schema:
        return
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(run_input))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise ConfigError(
            f"{source} does not match the input schema of {workflow.key} at {where}: "
            f"{error.message}"
        )


def _read_input(text: str) -> Any:
    source = "--input"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as error:
            problem = f"cannot read {source}: {error}"
            raise click.BadParameter(problem, param_hint="--input") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{source} is not JSON: {error}", param_hint="--input") from None


def _note_pending(box: DeadLetterBox) -> None:
    console = console_for(err=True)
    if box.resent is not None and box.resent.pending:
        console.print(
            f"note: {box.resent.pending} dead letter(s) wait in the spool for their queue",
            markup=False,
        )
    for queue in sorted(box.missing):
        console.print(f"note: {queue} does not exist", markup=False)


__all__ = ["DeadLetterError", "dlq_group"]
