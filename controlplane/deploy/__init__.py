"""Deployment: the state store and its lock (planner and backends come next)."""

from controlplane.deploy.lock import LockHolder, LockTimeout, StateLock, read_holder
from controlplane.deploy.state import (
    ResourceKey,
    ResourceState,
    ResourceStatus,
    State,
    load_state,
    save_state,
)
from controlplane.deploy.stores import StateStore

__all__ = [
    "LockHolder",
    "LockTimeout",
    "ResourceKey",
    "ResourceState",
    "ResourceStatus",
    "State",
    "StateLock",
    "StateStore",
    "load_state",
    "read_holder",
    "save_state",
]
