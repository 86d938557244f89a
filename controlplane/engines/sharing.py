"""What the workflows of an environment share: each engine's `share` hook run over the
rendered artifacts (docs/architecture.md, "Shared resources")."""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.engines import ENGINES
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import Environment


def share(artifacts: Iterable[Artifact], environment: Environment) -> list[Artifact]:
    """The artifacts after each engine derived what its workflows share (a Temporal
    namespace's retention, ...): cross-workflow findings become Support records of the
    workflows concerned, identical wherever the artifacts are used."""
    result = list(artifacts)
    for engine in ENGINES.values():
        result = engine.share(result, environment)
    return result
