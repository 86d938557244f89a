"""The lock on an environment's state: `flock` next to a state directory, or an item of a
DynamoDB table for a state in S3 (`deploy.lock: dynamodb://table`).

Both say who holds them (`current_holder`), wait up to a timeout and then fail naming the
holder (LockTimeout), and expose `held` and `key` to `controlplane.deploy.stores.StateStore`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from controlplane.deploy.lock import DEFAULT_TIMEOUT, LockHolder, LockTimeout, StateLock
from controlplane.deploy.stores import LocalStore, StateBackend, deploy_aws
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings, Environment


class EnvironmentLock(Protocol):
    timeout: float

    @property
    def held(self) -> bool: ...

    @property
    def key(self) -> str: ...

    @property
    def location(self) -> str: ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    def current_holder(self) -> LockHolder | None: ...


def open_lock(
    environment: Environment,
    store: StateBackend,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    command: str | None = None,
    url: str | None = None,
) -> EnvironmentLock:
    """The lock on `store`: `url` (dynamodb://table) or else the environment's `deploy.lock`
    for a state in S3, the directory's own lock for a state directory."""
    if isinstance(store, LocalStore):
        return StateLock(store.directory, timeout=timeout, command=command or _command())
    lock_url = url or environment.spec.deploy.lock
    if lock_url is None or not lock_url.startswith("dynamodb://"):
        raise ConfigError(
            f"the deploy state {store.location} needs a lock: dynamodb://table "
            "(deploy.lock, or --lock)"
        )
    return _dynamodb(lock_url, store.lock_key, deploy_aws(environment), timeout, command)


def _dynamodb(
    url: str, key: str, aws: AwsSettings | None, timeout: float, command: str | None
) -> EnvironmentLock:
    from controlplane.deploy.locks.dynamodb import DynamoLock

    return DynamoLock(
        url.removeprefix("dynamodb://"), key, aws, timeout=timeout, command=command or _command()
    )


@contextmanager
def locked(lock: EnvironmentLock, say: Callable[[str], object]) -> Iterator[EnvironmentLock]:
    """Hold `lock`, saying who holds it when it has to wait for it (up to `lock.timeout`)."""
    timeout = lock.timeout
    lock.timeout = 0
    try:
        lock.acquire()
    except LockTimeout:
        holder = lock.current_holder()
        who = holder.describe() if holder else "another process"
        say(f"waiting up to {timeout:g}s for the state lock of {lock.location} (held by {who})")
        lock.timeout = timeout
        lock.acquire()
    lock.timeout = timeout
    try:
        yield lock
    finally:
        lock.release()


def _command() -> str:
    return " ".join(["cpl", *sys.argv[1:]])


__all__ = ["EnvironmentLock", "locked", "open_lock"]
