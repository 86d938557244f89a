"""`cpl state show|unlock|migrate`: an environment's deploy state and its lock (docs/state.md).

JSON: show gives `{"environment", "state", "lock", "exists", "lineage", "serial", "resources",
"specs", "holder"}`; unlock `{"environment", "lock", "removed", "holder"}`; migrate the
`Migration` document (`from`, `to`, `lineage`, `serial`, `resources`, `specs`, `specsCopied`,
`stateCopied`).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import click

from controlplane.audit import Auditor
from controlplane.cli.output import console_for, emit, format_option, repo_option, to_json
from controlplane.deploy.lock import DEFAULT_TIMEOUT, LockHolder, LockTimeout, StateLock
from controlplane.deploy.locks import locked, open_lock
from controlplane.deploy.locks.dynamodb import DynamoLock
from controlplane.deploy.migrate import STATE_MIGRATED, STATE_UNLOCKED, Migration, migrate
from controlplane.deploy.stores import open_store
from controlplane.errors import ConfigError, ExitCode
from controlplane.spec.load import load_environment

_env = click.option("--env", "env_name", required=True, help="The environment.")


@click.group("state")
def state_group() -> None:
    """The deploy state of an environment: show it, break its lock, move it."""


@state_group.command("show")
@_env
@repo_option
@format_option("json")
def show_command(env_name: str, repo: Path, output_format: str, output_file: Path | None) -> int:
    """Where the state of ENV lives, its lineage and serial, and who holds its lock."""
    environment = load_environment(repo, env_name)
    store = open_store(environment, repo)
    lock = open_lock(environment, store, timeout=0)
    state = store.read()
    holder = lock.current_holder()
    document = {
        "environment": environment.name,
        "state": store.location,
        "lock": lock.location,
        "exists": state is not None,
        "lineage": state.lineage if state else None,
        "serial": state.serial if state else None,
        "resources": len(state.resources) if state else 0,
        "specs": len(store.specs()),
        "holder": holder.to_json() if holder else None,
    }
    if output_format == "json":
        emit(to_json(document), output_file)
        return int(ExitCode.OK)
    lines = [f"state: {store.location}", f"lock:  {lock.location}"]
    if state is None:
        lines.append("no state yet (the first apply creates it)")
    else:
        lines.append(
            f"lineage {state.lineage}, serial {state.serial}, {len(state.resources)} "
            f"resource(s), {document['specs']} applied spec(s)"
        )
    lines.append(f"locked by {holder.describe()}" if holder else "not locked")
    emit("\n".join(lines) + "\n", output_file)
    return int(ExitCode.OK)


@state_group.command("unlock")
@_env
@click.option("--force", is_flag=True, help="Required: remove the lock whoever holds it.")
@repo_option
@format_option("json")
def unlock_command(
    env_name: str, force: bool, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """Remove a stuck lock of ENV (a runner that died while applying), recorded in the audit
    trail as dev.cpl.state.unlocked. Never while an apply still runs: it would write the state
    next to another one."""
    if not force:
        raise ConfigError(
            "`cpl state unlock` removes the lock whoever holds it: check with `cpl state show` "
            "that its holder is gone, then pass --force"
        )
    environment = load_environment(repo, env_name)
    store = open_store(environment, repo)
    lock = open_lock(environment, store, timeout=0)
    if isinstance(lock, StateLock):
        return _unlock_directory(lock, environment.name, output_format, output_file)
    assert isinstance(lock, DynamoLock)
    removed = lock.force_unlock()
    if removed is not None:
        Auditor.for_environment(repo, environment).emit(
            STATE_UNLOCKED,
            None,
            {
                "environment": environment.name,
                "state": store.location,
                "lock": lock.location,
                "holder": removed.to_json(),
            },
        )
    return _unlocked(environment.name, lock.location, removed, output_format, output_file)


def _unlock_directory(
    lock: StateLock, environment: str, output_format: str, output_file: Path | None
) -> int:
    """A directory's lock is the kernel's: it frees itself when its holder ends, and nothing
    else can break it. Say whether it is held, and by whom."""
    try:
        lock.acquire()
    except LockTimeout:
        holder = lock.current_holder()
        who = holder.describe() if holder else "another process"
        raise ConfigError(
            f"the state in {lock.location} is locked by {who}; a state directory's lock frees "
            "itself when that process ends: stop it instead"
        ) from None
    lock.release()
    return _unlocked(environment, lock.location, None, output_format, output_file)


def _unlocked(
    environment: str,
    where: str,
    removed: LockHolder | None,
    output_format: str,
    output_file: Path | None,
) -> int:
    if output_format == "json":
        document = {
            "environment": environment,
            "lock": where,
            "removed": removed is not None,
            "holder": removed.to_json() if removed else None,
        }
        emit(to_json(document), output_file)
    elif removed is None:
        emit(f"{where} is not locked: nothing to remove\n", output_file)
    else:
        emit(f"removed the lock {where} held by {removed.describe()}\n", output_file)
    return int(ExitCode.OK)


@state_group.command("migrate")
@_env
@click.option(
    "--to",
    "destination",
    required=True,
    help="Where the state goes: s3://bucket[/prefix] or a directory of the repo.",
)
@click.option(
    "--lock",
    "lock_url",
    default=None,
    help="The destination's lock (dynamodb://table) when it is in S3 and deploy.lock is not.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0, 86400),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for each lock.",
)
@repo_option
@format_option("json")
def migrate_command(
    env_name: str,
    destination: str,
    lock_url: str | None,
    lock_timeout: float,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Copy the state of ENV and its applied specs to another backend, verify the copy, and
    leave the source as it was; then point deploy.state (and deploy.lock) at the destination.
    Running it again completes an interrupted migration."""
    if "://" not in destination and (
        PurePosixPath(destination).is_absolute() or ".." in PurePosixPath(destination).parts
    ):
        raise ConfigError(f"--to: '{destination}' leads outside the control repo")
    environment = load_environment(repo, env_name)
    say = console_for(err=True).print
    source = open_store(environment, repo)
    target = open_store(environment, repo, destination)
    source_lock = open_lock(environment, source, timeout=lock_timeout)
    target_lock = open_lock(environment, target, timeout=lock_timeout, url=lock_url)
    with locked(source_lock, say), locked(target_lock, say):
        done = migrate(environment.name, source, target)
    Auditor.for_environment(repo, environment).emit(STATE_MIGRATED, None, done.to_json())
    if output_format == "json":
        emit(to_json(done.to_json()), output_file)
    else:
        emit(
            _migrated_text(done, destination, lock_url or environment.spec.deploy.lock), output_file
        )
    return int(ExitCode.OK)


def _migrated_text(done: Migration, destination: str, lock_url: str | None) -> str:
    what = "copied" if done.state_copied else "already there"
    settings = f"  deploy:\n    state: {destination}\n"
    if destination.startswith("s3://") and lock_url:
        settings += f"    lock: {lock_url}\n"
    return (
        f"state of {done.environment} (lineage {done.lineage}, serial {done.serial}, "
        f"{done.resources} resource(s)): {what}; {done.specs_copied} of {done.specs} applied "
        f"spec(s) copied; read back and verified in {done.destination}.\n"
        f"{done.source} is left as it was. Point the environment at the new state "
        f"(environments/{done.environment}.yaml):\n{settings}"
    )
