"""The `direct` backend: apply calls the engine modules of `controlplane.engines` itself."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from controlplane.deploy.plan import PlannedChange
from controlplane.deploy.state import ResourceState, now
from controlplane.engines import EngineClient, ResourceError, engine_client
from controlplane.spec.environment import Environment


def engine_clients(environment: Environment, repo: Path) -> dict[str, EngineClient]:
    """One engine module per target of the environment, by target name."""
    return {t.name: engine_client(t, environment, repo=repo) for t in environment.spec.targets}


def close_clients(clients: Mapping[str, EngineClient]) -> None:
    for client in clients.values():
        close = getattr(client, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


class DirectBackend:
    """Creates, updates and deletes through the engine module of each change's target.

    `clients` (by target name) may be shared with the planner that read the live state; a
    client is only used by one thread at a time (apply runs one change at a time per target).
    """

    name = "direct"

    def __init__(
        self,
        environment: Environment,
        *,
        repo: Path,
        clients: Mapping[str, EngineClient] | None = None,
    ) -> None:
        self.environment = environment
        self._owned = clients is None
        self.clients = dict(clients) if clients is not None else engine_clients(environment, repo)

    def apply_change(self, change: PlannedChange) -> ResourceState | None:
        client = self.clients.get(change.target)
        if client is None:
            raise ResourceError(
                f"target '{change.target}' is not in environment '{self.environment.name}' any "
                f"more: cannot {change.action} {change.resource} (delete it by hand, then "
                "remove it from the state)",
                engine=change.engine,
                target=change.target,
                resource=change.resource,
            )
        if change.action == "delete":
            client.delete(change.resource_id or change.resource)
            return None
        artifact = change.artifact
        if artifact is None:
            raise ValueError(f"{change.action} of {change.key} without an artifact")
        if change.action == "create":
            live = client.create(artifact)
        else:
            current = change.live or client.read(artifact)
            live = client.update(artifact, current) if current else client.create(artifact)
        return ResourceState(
            workflow=change.workflow,
            target=change.target,
            engine=change.engine,
            resource_id=live.id,
            artifact_digest=artifact.digest,
            spec_version=artifact.version,
            applied_at=now(),
            status="applied",
        )

    def close(self) -> None:
        if self._owned:
            close_clients(self.clients)
