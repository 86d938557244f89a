"""Engine modules: read / create / update / delete / diff of the live resources of a target.

One module per engine implements `base.EngineClient`; `ENGINE_CLIENTS` is the explicit
registry the `direct` backend, drift detection and the Pulumi dynamic provider use.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.engines import argo, stepfunctions, temporal
from controlplane.engines.base import (
    Change,
    EngineClient,
    EngineFactory,
    LiveResource,
    Outcome,
    ResourceError,
    diff_documents,
    each,
)
from controlplane.engines.normalize import normalize
from controlplane.environment import Engine, Environment, Target

ENGINE_CLIENTS: dict[Engine, EngineFactory] = {
    "stepfunctions": stepfunctions.create_client,
    "temporal": temporal.create_client,
    "argo": argo.create_client,
}


def engine_client(
    target: Target, environment: Environment, *, repo: Path | None = None
) -> EngineClient:
    """The engine module of `target` (`repo` roots GitOps delivery; default: the cwd)."""
    return ENGINE_CLIENTS[target.engine](target, environment, repo=repo)


__all__ = [
    "ENGINE_CLIENTS",
    "Change",
    "EngineClient",
    "LiveResource",
    "Outcome",
    "ResourceError",
    "diff_documents",
    "each",
    "engine_client",
    "normalize",
]
