"""The engine bundle: everything cpl knows about one engine, behind one contract.

An engine is one package under `controlplane/engines/` that exports an `Engine`: its
translator (with the FEATURES table `cpl compat` reads), its limits, a factory for the live
client of one target (read / create / update / delete / diff / inventory, see `live.py`), and,
where the engine runs workflows cpl can start, a runner. Everything outside `engines/`
(pipeline, policy, plan, apply, drift, report) reaches an engine only through this bundle and
the registry in `controlplane.engines`, so a new engine is one package plus one registry line
(docs/adding-an-engine.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controlplane.engines.live import EngineClient
from controlplane.engines.translator import Artifact, Feature, Translator
from controlplane.spec.environment import Environment, Target


class ClientFactory(Protocol):
    """The live client of one target (`repo` roots engines that deliver into files)."""

    def __call__(
        self, target: Target, environment: Environment, *, repo: Path | None = None
    ) -> EngineClient: ...


@dataclass(frozen=True)
class Limits:
    """What the engine accepts, as data (policy CPL-P013 reads these, never its own copy)."""

    payload_bytes: int


Share = Callable[[list[Artifact], Environment], list[Artifact]]
"""From every artifact of an environment: the artifacts with what the engine's workflows share
(shared resources as artifacts of their own, cross-workflow findings as Support records)."""


def share_nothing(artifacts: list[Artifact], environment: Environment) -> list[Artifact]:
    return artifacts


@dataclass(frozen=True)
class Engine:
    """One engine: `name` is the `engine:` value of an environment's targets."""

    name: str
    translator: Translator[Any]
    limits: Limits
    connect: ClientFactory
    share: Share = share_nothing
    spec_digest_paths: frozenset[str] = frozenset()
    """Diff paths that stand for the whole spec by its digest (an engine that keeps the spec
    by digest, not field by field): a plan shows the spec's own changed fields instead."""

    @property
    def features(self) -> dict[str, Feature]:
        """How each construct maps onto the engine (the translator's FEATURES table)."""
        return dict(self.translator.FEATURES)
