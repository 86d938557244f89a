"""The engines cpl renders for, deploys to and reads back: the registry, one line per engine.

Each engine is one package exporting an `Engine` bundle (`base.py`); nothing outside this
package names an engine module directly.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.engines import argo, stepfunctions, temporal
from controlplane.engines.base import Engine
from controlplane.engines.live import (
    Change,
    EngineClient,
    LiveResource,
    Outcome,
    ResourceError,
    diff_documents,
    each,
)
from controlplane.engines.normalize import normalize
from controlplane.engines.translator import Artifact
from controlplane.errors import ConfigError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

ENGINES: dict[str, Engine] = {
    "stepfunctions": stepfunctions.ENGINE,
    "temporal": temporal.ENGINE,
    "argo": argo.ENGINE,
}


def engine_named(name: str) -> Engine:
    """The registered engine `name` (a ConfigError naming the known ones otherwise)."""
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown engine '{name}' (known: {known})") from None


def render(workflow: Workflow, target: Target, environment: Environment) -> Artifact:
    """The artifact of one workflow for one target (BindingError when a name is unbound)."""
    return engine_named(target.engine).translator.render(workflow, target, environment)


def engine_client(
    target: Target, environment: Environment, *, repo: Path | None = None
) -> EngineClient:
    """The live client of `target` (`repo` roots GitOps delivery; default: the cwd)."""
    return engine_named(target.engine).connect(target, environment, repo=repo)


__all__ = [
    "ENGINES",
    "Change",
    "Engine",
    "EngineClient",
    "LiveResource",
    "Outcome",
    "ResourceError",
    "diff_documents",
    "each",
    "engine_client",
    "engine_named",
    "normalize",
    "render",
]
