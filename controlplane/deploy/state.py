"""The deploy state of an environment: what was applied, per (workflow, target).

One JSON document per environment, `state.json` in the environment's state directory
(`Environment.state_dir`, default `.cpl/state/<env>`). Writes are atomic (temporary file in the
same directory, flush, fsync, rename, fsync of the directory) and keep the previous document as
`state.json.bak`; a reader sees the old document or the new one, never half of one. A corrupt
or missing document is an error that names the file and its backup, never a silent reset.

Writers must hold the environment's lock (`controlplane.deploy.lock.StateLock`): `StateStore`
checks that it is held, and `save_state` refuses to write over a document that changed since it
was read (another serial) or belongs to another lineage.

The directory is one state backend; `controlplane.deploy.stores` also keeps the same document
in S3 (docs/state.md). `StateStore` takes either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from controlplane.errors import ConfigError
from controlplane.files import fsync_directory
from controlplane.spec.environment import EngineName

STATE_VERSION = 1
STATE_FILE = "state.json"
BACKUP_FILE = "state.json.bak"

ResourceStatus = Literal["pending", "applied", "failed"]


class ResourceKey(NamedTuple):
    """Identifies a deployed resource: the workflow (`tenant/name`) and the target name."""

    workflow: str
    target: str

    def __str__(self) -> str:
        return f"{self.workflow}@{self.target}"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class ResourceState(_Model):
    """What was applied for one (workflow, target).

    `status` is `pending` while an apply of the resource is under way (recorded before the
    engine call, so a crash leaves a trace), `applied` once the engine accepted it and
    `failed` when it refused.
    """

    # a workflow key, or the key of a shared resource (`shared:namespace/<name>`)
    workflow: str = Field(
        pattern=r"^([a-z][a-z0-9-]*/[a-z][a-z0-9-]*|shared:[a-z]+/[A-Za-z0-9._-]+)$"
    )
    target: str = Field(min_length=1)
    engine: EngineName
    resource_id: str = Field(min_length=1)  # state machine ARN, namespace/schedule id, file
    artifact_digest: str
    spec_version: str
    git_commit: str | None = None
    applied_at: AwareDatetime
    status: ResourceStatus = "applied"

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.workflow, self.target)


class State(_Model):
    """The state document of one environment (`deploy.state`, docs/state.md).

    `serial` grows by one with every save; `lineage` is fixed when the state is created and
    tells two unrelated state documents apart. Resources are kept sorted by key.
    """

    version: Literal[1] = 1
    environment: str = Field(min_length=1)
    serial: int = Field(ge=0)
    lineage: str = Field(min_length=1)
    resources: tuple[ResourceState, ...] = ()

    @field_validator("resources")
    @classmethod
    def _unique_sorted(cls, resources: tuple[ResourceState, ...]) -> tuple[ResourceState, ...]:
        keys = [resource.key for resource in resources]
        duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"resources listed twice: {', '.join(duplicates)}")
        return tuple(sorted(resources, key=lambda r: r.key))

    @classmethod
    def new(cls, environment: str) -> State:
        """An empty state with a fresh lineage."""
        return cls(environment=environment, serial=0, lineage=str(uuid.uuid4()))

    def get(self, key: ResourceKey) -> ResourceState | None:
        return next((r for r in self.resources if r.key == key), None)

    def with_resource(self, resource: ResourceState) -> State:
        """This state with `resource` added or replacing the one of the same key."""
        others = [r for r in self.resources if r.key != resource.key]
        return self.model_copy(
            update={"resources": tuple(sorted([*others, resource], key=lambda r: r.key))}
        )

    def without(self, key: ResourceKey) -> State:
        """This state without the resource of `key` (unchanged if it has none)."""
        return self.model_copy(
            update={"resources": tuple(r for r in self.resources if r.key != key)}
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def load_state(directory: Path, environment: str) -> State:
    """The state in `directory`, or a new empty one when the environment has none yet.

    ConfigError (naming the file and its backup) when the document is corrupt, of another
    version or environment, or missing while its backup exists.
    """
    path = directory / STATE_FILE
    state = _read(path)
    if state is None:
        backup = directory / BACKUP_FILE
        if backup.exists():
            raise ConfigError(
                f"{path} is missing but its backup {backup} exists: the state was removed by "
                f"hand? Restore it (`cp {backup} {path}`) or, to start from nothing, move the "
                "backup away"
            )
        return State.new(environment)
    if state.environment != environment:
        raise ConfigError(
            f"{path} holds the state of environment '{state.environment}', not "
            f"'{environment}': two environments share a state directory (deploy.state)"
        )
    return state


def read_state(directory: Path) -> State | None:
    """The document in `directory` as it is, or None when there is none."""
    return _read(directory / STATE_FILE)


def save_state(directory: Path, state: State) -> State:
    """Write `state` atomically as the next serial and return what was written.

    The previous document becomes `state.json.bak`. Refuses (ConfigError) to write over a
    document of another lineage or one that changed since `state` was read.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    current = _read(path)
    if current is not None:
        if current.lineage != state.lineage:
            raise ConfigError(
                f"{path} belongs to lineage {current.lineage}, not {state.lineage}: refusing to "
                "replace another state document"
            )
        if current.serial != state.serial:
            raise ConfigError(
                f"{path} changed while this command ran (serial {current.serial}, expected "
                f"{state.serial}): was it written without holding the lock?"
            )
    written = state.model_copy(update={"serial": state.serial + 1})
    _write(directory, written, backup=current is not None)
    return written


def write_state(directory: Path, state: State) -> None:
    """Write `state` as it is (its serial unchanged) where there is no state yet: a state
    moved here from another backend (`cpl state migrate`). Refuses to replace a document."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / STATE_FILE).exists():
        raise ConfigError(f"{directory / STATE_FILE} exists: refusing to replace it")
    _write(directory, state, backup=False)


def state_text(state: State) -> str:
    """The document as every backend stores it."""
    return json.dumps(state.to_json(), indent=2) + "\n"


def _write(directory: Path, written: State, *, backup: bool) -> None:
    path = directory / STATE_FILE
    text = state_text(written)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{STATE_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o644)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if backup:
            _backup(path, directory / BACKUP_FILE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def now() -> dt.datetime:
    """The current time in UTC, as `applied_at` wants it."""
    return dt.datetime.now(dt.UTC)


def _read(path: Path) -> State | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise _corrupt(path, str(error)) from None
    return parse_state(text, str(path), lambda detail: _corrupt(path, detail))


def parse_state(text: str, where: str, corrupt: Callable[[str], ConfigError]) -> State:
    """The state document in `text` (read from `where`); `corrupt(detail)` is the error of
    a document that is not one, which names where to find the previous one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise corrupt(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise corrupt("not a JSON object")
    version = document.get("version")
    if version != STATE_VERSION:
        raise ConfigError(
            f"{where}: state version {version!r} is not supported by this cpl (it reads version "
            f"{STATE_VERSION}); use the cpl that wrote it"
        )
    try:
        return State.model_validate(document)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in error.errors()
        )
        raise corrupt(details) from None


def _corrupt(path: Path, detail: str) -> ConfigError:
    backup = path.with_name(BACKUP_FILE)
    if backup.exists():
        hint = (
            f"the previous state is in {backup}: inspect it and restore it with "
            f"`cp {backup} {path}` (the next apply converges from there)"
        )
    else:
        hint = f"there is no backup ({backup.name}) to restore"
    return ConfigError(f"{path}: the state file is corrupt ({detail}); {hint}")


def _backup(path: Path, backup: Path) -> None:
    """Make `backup` a copy of `path`, atomically: the backup is always a whole document."""
    link = backup.with_name(f".{backup.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    try:
        try:
            os.link(path, link)  # the next rename replaces `path`'s name, not this inode
        except OSError:  # a file system without hard links: copy instead
            shutil.copyfile(path, link)
            with open(link, "rb") as stream:
                os.fsync(stream.fileno())
        os.replace(link, backup)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        raise
