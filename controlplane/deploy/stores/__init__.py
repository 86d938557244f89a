"""Where an environment's deploy state lives: a directory of the repo or an S3 prefix.

Every backend keeps the same document (controlplane.deploy.state.State) with the same
guarantees: a reader sees a whole document, a write is refused over a document of another
lineage or one that changed since it was read, and the previous document survives a write.
Next to the state each backend keeps the normalized specs of the applied versions, which the
next plan compares against. `open_store` picks the backend from `deploy.state`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from controlplane.deploy.state import ResourceKey, ResourceState, State
from controlplane.deploy.stores.base import StateBackend
from controlplane.deploy.stores.local import LocalStore
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings, Environment, confine_to_repo


class Lock(Protocol):
    """What `StateStore` needs of a lock: whether it is held, and on which state (`key`)."""

    @property
    def held(self) -> bool: ...

    @property
    def key(self) -> str: ...


class StateStore:
    """The state of one environment during an apply: `record` saves after each resource.

    `backend` is a state directory or a `controlplane.deploy.stores.StateBackend` (S3). Use
    it only while holding the environment's lock on that state (checked on every write).
    """

    def __init__(self, backend: Path | StateBackend, environment: str, lock: Lock) -> None:
        self.backend = LocalStore(backend) if isinstance(backend, Path) else backend
        if lock.key != self.backend.lock_key:
            raise ValueError(f"the lock is on {lock.key}, the state in {self.backend.location}")
        self._lock = lock
        self._state = self.backend.load(environment)

    @property
    def state(self) -> State:
        return self._state

    def record(self, resource: ResourceState) -> State:
        """Add or replace `resource` and save the state."""
        return self._save(self._state.with_resource(resource))

    def forget(self, key: ResourceKey) -> State:
        """Remove the resource of `key` (after it was deleted) and save the state."""
        return self._save(self._state.without(key))

    def _save(self, state: State) -> State:
        if not self._lock.held:
            raise RuntimeError(
                f"writing the state in {self.backend.location} without holding its lock"
            )
        self._state = self.backend.save(state)
        return self._state

    def save_spec(self, workflow: str, version: str, text: str) -> None:
        """Keep the normalized spec of an applied version next to the state."""
        self.backend.write_spec(workflow, version, text)


def open_store(environment: Environment, repo: Path, location: str | None = None) -> StateBackend:
    """The state backend of `environment`: `location` (a `cpl state migrate --to` value)
    or else its `deploy.state`; a directory is confined to the repo as `deploy.state` is."""
    deploy = environment.spec.deploy
    if location is None:
        if deploy.remote:
            return _s3(str(deploy.state), environment, deploy_aws(environment))
        return LocalStore(environment.state_dir(repo))
    if location.startswith("s3://"):
        return _s3(location, environment, deploy_aws(environment))
    if "://" in location:
        raise ConfigError(f"'{location}' is neither a directory of the repo nor s3://bucket/prefix")
    directory = confine_to_repo(
        repo, location, deploy.allow_outside_repo, environment.name, "/spec/deploy/state"
    )
    return LocalStore(directory)


def deploy_aws(environment: Environment) -> AwsSettings | None:
    """The AWS account of the state and its lock: `deploy.aws`, else the environment's `aws`
    (the account cpl itself uses), else the default chain."""
    return environment.spec.deploy.aws or environment.spec.aws


def _s3(url: str, environment: Environment, aws: AwsSettings | None) -> StateBackend:
    from controlplane.deploy.stores.s3 import S3Store

    return S3Store(url, environment.name, aws)


__all__ = ["LocalStore", "Lock", "StateBackend", "StateStore", "deploy_aws", "open_store"]
