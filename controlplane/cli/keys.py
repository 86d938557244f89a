"""`cpl keys rotate|verify`: the payload encryption keys of an environment's Temporal targets
(docs/runtime.md, "Payload encryption"). Both are audited.

JSON: `{"environment", "rotated": [{"key", "binding", "kind", "previous", "version"}]}` for
rotate; for verify `{"environment", "targets", "runs", "events", "payloads", "failures":
[{"target", "workflowId", "runId", "eventId", "eventType", "key", "version", "reason"}],
"capped": [...], "ok"}`. verify exits 1 when a payload does not open.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from controlplane.audit import Auditor
from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.cli.selection import target_named
from controlplane.errors import ConfigError, ExitCode
from controlplane.spec.load import load_environment


@click.group("keys")
def keys_group() -> None:
    """Payload encryption keys on Temporal: rotate, verify."""


@keys_group.command("rotate")
@click.option("--env", "env_name", required=True, help="The environment.")
@click.option("--key", "key_name", default=None, help="Only this key (its binding name).")
@repo_option
@format_option("json")
def rotate_command(
    env_name: str, key_name: str | None, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """Add a version to the Temporal payload keys of ENV (new payloads use it; old versions
    keep decrypting). A local ring gets a new version; a KMS alias moves to a new key."""
    from controlplane.keys import rotate

    environment = load_environment(repo, env_name)
    auditor = Auditor.for_environment(repo, environment)
    rotations = rotate(repo, environment, auditor, key_name)
    if output_format == "json":
        rotated = [asdict(rotation) for rotation in rotations]
        emit(to_json({"environment": environment.name, "rotated": rotated}), output_file)
        return int(ExitCode.OK)
    console = console_for()
    for rotation in rotations:
        console.print(
            f"rotated {rotation.key} ({rotation.binding}): version {rotation.previous or 'none'}"
            f" → {rotation.version}",
            markup=False,
        )
    return int(ExitCode.OK)


@keys_group.command("verify")
@click.option("--env", "env_name", required=True, help="The environment.")
@click.option("--target", "target_name", default=None, help="Only this Temporal target.")
@click.option(
    "--max-runs",
    type=click.IntRange(1, 10_000),
    default=200,
    show_default=True,
    help="Runs read per target (the newest first).",
)
@click.option(
    "--max-events",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Events read per run.",
)
@repo_option
@format_option("json")
def verify_command(
    env_name: str,
    target_name: str | None,
    max_runs: int,
    max_events: int,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Decrypt the payloads of the live and recent runs on ENV's Temporal targets; report
    each that fails (run, event, key, version: never the payload). Exit 1 on a failure."""
    from controlplane.keys import verify

    environment = load_environment(repo, env_name)
    if target_name is not None:
        targets = [target_named(environment, target_name, engine="temporal")]
    else:
        targets = [t for t in environment.spec.targets if t.engine == "temporal"]
        if not targets:
            raise ConfigError(f"environment '{environment.name}' has no Temporal target")
    auditor = Auditor.for_environment(repo, environment)
    result = verify(repo, environment, auditor, targets, max_runs=max_runs, max_events=max_events)
    code = int(ExitCode.ERROR if result.failures else ExitCode.OK)
    if output_format == "json":
        emit(to_json(result.to_json()), output_file)
        return code
    console = console_for()
    for failure in result.failures:
        console.print(
            f"FAIL {failure.target} {failure.workflowId} run {failure.runId} event "
            f"{failure.eventId} ({failure.eventType}) key {failure.key} version "
            f"{failure.version}: {failure.reason}",
            markup=False,
        )
    for note in result.capped:
        console.print(f"capped: {note}", markup=False)
    verdict = "ok" if not result.failures else f"{len(result.failures)} failed"
    console.print(
        f"{verdict}: {result.payloads} encrypted payloads in {result.runs} runs "
        f"({result.events} events) on {', '.join(result.targets)}",
        markup=False,
    )
    return code
