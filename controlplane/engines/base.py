"""The engine bundle: everything cpl knows about one engine, behind one contract.

An engine is one package under `controlplane/engines/` that exports an `Engine`: its
translator (with the FEATURES table `cpl compat` reads), its limits, a factory for the live
client of one target (read / create / update / delete / diff / inventory, see `live.py`), the
placeholder settings `cpl compat` renders with, and, where they exist, its runner (`cpl run`,
`cpl signal`, see `runs.py`), its worker (`cpl worker`) and its local emulator (`cpl local`,
see `emulation.py`). Everything outside `engines/` (pipeline, policy, plan, apply, drift,
report, the CLI) reaches an engine only through this bundle and the registry in
`controlplane.engines`, so a new engine is one package plus one registry line
(docs/adding-an-engine.md).

Runner, worker, emulator and client are *factories*: an engine's SDK (temporalio, boto3,
kubernetes) is imported only when a command needs it, never when the registry is.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controlplane.engines.emulation import Emulator
from controlplane.engines.live import EngineClient
from controlplane.engines.runs import Runner, Worker
from controlplane.engines.translator import Artifact, Feature, Translator
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow


class ClientFactory(Protocol):
    """The live client of one target (`repo` roots engines that deliver into files)."""

    def __call__(
        self, target: Target, environment: Environment, *, repo: Path | None = None
    ) -> EngineClient: ...


@dataclass(frozen=True)
class Limits:
    """What the engine accepts, as data."""

    payload_bytes: int


@dataclass(frozen=True)
class CompatSample:
    """The placeholder settings `cpl compat` renders every workflow with on this engine.

    Support depends on a workflow's constructs, not on where its names are bound, so
    `cpl compat` needs no environment: it builds one target per engine from `target` (the
    target's engine fields, camelCase as in an environment file) and binds every activity
    with `activity(name)` (the engine's binding of a logical activity).
    """

    target: Mapping[str, Any]
    activity: Callable[[str], dict[str, Any]]


Share = Callable[[list[Artifact], Environment], list[Artifact]]
"""From every artifact of an environment: the artifacts with what the engine's workflows share
(shared resources as artifacts of their own, cross-workflow findings as Support records)."""


def share_nothing(artifacts: list[Artifact], environment: Environment) -> list[Artifact]:
    return artifacts


ShareView = Callable[[Mapping[str, Any]], dict[str, Any]]
"""The part of an artifact's document that `share` reads: `share` gives the same shared
artifacts and records when every document is replaced by its view (the cache keeps only the
views of unchanged workflows, not their whole documents)."""


def view_nothing(document: Mapping[str, Any]) -> dict[str, Any]:
    return {}


Names = Callable[[Artifact], Mapping[str, str]]
"""The names a workflow's artifact takes in its engine, by what they name ("state machine",
"log group", ...). Within one target no two workflows may derive an equal name for the same
thing: the pipeline reports such a collision before anything is deployed."""


def resource_name(artifact: Artifact) -> Mapping[str, str]:
    return {"resource": artifact.resource}


@dataclass(frozen=True)
class Engine:
    """One engine: `name` is the `engine:` value of an environment's targets.

    `title` names the engine in messages. `thread_safe_client`: one live client may serve
    several threads at once (drift then shares it between its workers instead of connecting
    once per thread). `runner`, `worker` and `emulator` are None where the engine has none;
    `run_hint(workflow)` then says how to start a run without cpl.
    """

    name: str
    title: str
    translator: Translator[Any]
    limits: Limits
    connect: ClientFactory
    compat: CompatSample
    share: Share = share_nothing
    share_view: ShareView = view_nothing
    names: Names = resource_name
    spec_digest_paths: frozenset[str] = frozenset()
    """Diff paths that stand for the whole spec by its digest (an engine that keeps the spec
    by digest, not field by field): a plan shows the spec's own changed fields instead."""
    thread_safe_client: bool = False
    runner: Callable[..., Runner] | None = None
    """Makes a runner for the environment its runs belong to: `(environment, repo=None)`,
    `repo` the control repo (Temporal: its local key rings)."""
    proven_on: str | None = None
    """Where a test proves the engine's `exact` claims (docs/runtime.md, "Proof"), e.g. "the
    Temporal dev server"; None: artifacts are rendered and checked, never run here."""
    run_hint: Callable[[Workflow], str] | None = None
    worker: Callable[[], Worker] | None = None
    emulator: Callable[[], Emulator] | None = None

    @property
    def features(self) -> dict[str, Feature]:
        """How each construct maps onto the engine (the translator's FEATURES table)."""
        return dict(self.translator.FEATURES)


LAZY_IMPORTS = threading.RLock()
"""Held while an engine package imports its SDK-backed modules on first use.

The bundles import their clients lazily (boto3 and temporalio cost a second at startup), and
the first use may come from several worker threads at once (drift reads, apply per target).
Two threads importing overlapping module graphs can see each other's partially initialised
modules (`cannot import name 'RPCError' from 'temporalio.service'`): one at a time is safe.
"""


def load(path: str) -> Any:
    """The attribute `module:name`, imported on first use under `LAZY_IMPORTS`."""
    module, _, name = path.partition(":")
    with LAZY_IMPORTS:
        return getattr(importlib.import_module(module), name)


def lazy(path: str) -> Callable[..., Any]:
    """A factory for a bundle field (client, runner, emulator): it loads `module:name` on its
    first call and calls it, so an engine's SDK loads only when a command needs it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return load(path)(*args, **kwargs)

    return call
