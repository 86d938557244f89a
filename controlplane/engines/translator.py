"""The translator contract: one neutral spec in, one engine artifact and its Support records out.

A translator has one method per step type (abstract here, so a translator that misses a
step type cannot be instantiated) and a FEATURES table saying how well each construct maps
onto its engine. Gaps are collected as Support records, never raised one by one: they feed
`cpl compat`, the portability report and policy CPL-P020.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, ClassVar, Generic, Literal, TypeVar

from controlplane.errors import ConfigError
from controlplane.spec.environment import EngineName, Environment, Target
from controlplane.spec.model import (
    ApprovalStep,
    ChoiceStep,
    FailStep,
    MapStep,
    ParallelStep,
    Step,
    SucceedStep,
    TaskStep,
    WaitStep,
    Workflow,
)

SupportLevel = Literal["exact", "approximated", "unsupported"]
SUPPORT_LEVELS: tuple[SupportLevel, ...] = ("exact", "approximated", "unsupported")


@dataclass(frozen=True)
class Feature:
    """How one construct maps onto an engine, with the reason when it is not exact."""

    support: SupportLevel
    reason: str = ""


@dataclass(frozen=True)
class Support:
    """One construct of one workflow on one engine (`feature` names the construct)."""

    feature: str
    support: SupportLevel
    path: str
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        """The record as JSON, built once and shared by every caller: read-only (records
        repeat across workflows, and one dict per record per input was most of the memory
        of a large check's policy inputs)."""
        document: dict[str, str] | None = self.__dict__.get("_json")
        if document is None:
            document = {
                "feature": self.feature,
                "support": self.support,
                "path": self.path,
                "reason": self.reason,
            }
            object.__setattr__(self, "_json", document)
        return document


# Support records are immutable and repeat across workflows (the same feature at the same path
# with the same verdict), so one instance serves them all: building a frozen dataclass per
# node was a large share of a render.
_support_record = lru_cache(maxsize=1 << 16)(Support)


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace): the basis of digests and goldens."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


SHARED_PREFIX = "shared:"


def shared_key(kind: str, name: str) -> str:
    """The workflow key of a shared resource, e.g. `shared:namespace/payments`.

    Engine objects that several workflows share (a Temporal namespace with its retention and
    search attributes) are artifacts of their own, planned, applied, drifted and recorded
    once; their key can never be a workflow's (`tenant/name`: no colon in a tenant).
    """
    return f"{SHARED_PREFIX}{kind}/{name}"


def is_shared(workflow_key: str) -> bool:
    return workflow_key.startswith(SHARED_PREFIX)


FileWriter = Callable[["Artifact"], dict[str, str]]


def no_files(artifact: Artifact) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Artifact:
    """A workflow rendered for one target: the engine-native document and its gaps.

    `document` is what policies see as `input.rendered`; `files` is the same content as
    deterministic text files, as `cpl render -o DIR` writes them and GitOps delivery commits.
    Files are written from the document on first use: plan, check and drift never need the
    text, and formatting it costs more than rendering.
    """

    workflow: str
    version: str
    target: str
    engine: EngineName
    resource: str
    document: dict[str, Any]
    support: tuple[Support, ...]
    write_files: FileWriter = field(default=no_files, repr=False, compare=False)
    shared_by: tuple[str, ...] = ()
    """For a shared resource (see `shared_key`): the workflows whose artifacts it serves."""

    @property
    def shared(self) -> bool:
        """Whether this is an engine object several workflows share, not one workflow's."""
        return is_shared(self.workflow)

    @cached_property
    def files(self) -> dict[str, str]:
        return self.write_files(self)

    @cached_property
    def digest(self) -> str:
        return digest_of(self.document)

    def unsupported(self) -> list[Support]:
        return [s for s in self.support if s.support == "unsupported"]


# Governance fields no engine evaluates: honest as "approximated" everywhere, so that CPL-P020
# (no unsupported construct on production) does not contradict CPL-P015/P016, which require them.
GOVERNANCE_FEATURES: dict[str, Feature] = {
    "access": Feature(
        "approximated",
        "not rendered into the engine: the rules travel with the spec, and the engine's own "
        "authorization (IAM, Temporal's namespace authorizer, Kubernetes RBAC) must grant them",
    ),
    "slo": Feature(
        "approximated",
        "not rendered into the engine: SLOs are evaluated on the engine's metrics by monitoring",
    ),
    "alerts": Feature(
        "approximated",
        "not rendered into the engine: alert rules run in monitoring on the engine's metrics",
    ),
}
# An engine may render some alert metrics and not others: `alerts.<metric>` is the verdict on
# an alert of that metric where it differs from `alerts` (the same everywhere by default).
GOVERNANCE_FEATURES |= {
    f"alerts.{metric}": GOVERNANCE_FEATURES["alerts"] for metric in ("pendingTasks", "retries")
}


def record_governance(workflow: Workflow, ctx: RenderContext, *, monitoring: bool = True) -> None:
    """Record the workflow's access rules, SLOs and alerts (see GOVERNANCE_FEATURES); with
    `monitoring` false, not the SLOs and alerts (an engine that renders them records them)."""
    body = workflow.spec
    if body.access is not None:
        ctx.record("access", "/spec/access")
    if not monitoring:
        return
    if body.slo is not None:
        # an engine that renders objectives one by one lists them (`slo.successRate`, ...)
        named = {
            "slo.successRate": body.slo.success_rate,
            "slo.completionTime": body.slo.completion_time,
        }
        if any(key in ctx.features for key in named):
            for key, value in named.items():
                if value is not None:
                    ctx.record(key, f"/spec/slo/{key.removeprefix('slo.')}")
        else:
            ctx.record("slo", "/spec/slo")
    for index, alert in enumerate(body.alerts):
        feature = f"alerts.{alert.metric}"
        ctx.record(feature if feature in ctx.features else "alerts", f"/spec/alerts/{index}")


_EXACT = Feature("exact")


class BindingError(ConfigError):
    """A logical name used by a workflow has no binding for the engine in the environment."""


@dataclass
class RenderContext:
    """What a translator needs while rendering one workflow for one target."""

    workflow: Workflow
    target: Target
    environment: Environment
    features: dict[str, Feature]
    support: list[Support] = field(default_factory=list)

    def record(self, feature: str, path: str, reason: str | None = None) -> Feature:
        """Record the use of a construct at `path`, with the translator's verdict for it."""
        verdict = self.features.get(feature, _EXACT)
        record = _support_record(feature, verdict.support, path, reason or verdict.reason)
        self.support.append(record)
        return verdict

    def activity(self, name: str, step: str) -> dict[str, Any]:
        """The engine binding of a logical activity (a BindingError names what is missing)."""
        binding = self.environment.spec.bindings.activities.get(name)
        engine_binding = getattr(binding, self.target.engine, None) if binding else None
        if engine_binding is None:
            self._missing("activity", name, step)
        return dict(engine_binding or {})

    def queue(self, name: str, step: str = "onError") -> str:
        binding = self.environment.spec.bindings.queues.get(name, {})
        if self.target.engine not in binding:
            self._missing("queue", name, step)
        return binding[self.target.engine]

    def key(self, name: str) -> str:
        binding = self.environment.spec.bindings.keys.get(name, {})
        if self.target.engine not in binding:
            self._missing("key", name, "security.encryption")
        return binding[self.target.engine]

    def store(self, name: str) -> str:
        binding = self.environment.spec.bindings.stores.get(name)
        if binding is None:
            self._missing("store", name, "payload.offload")
        assert binding is not None
        return binding.url

    def _missing(self, kind: str, name: str, step: str) -> None:
        section = {"activity": "activities", "queue": "queues", "key": "keys", "store": "stores"}
        leaf = "url" if kind == "store" else self.target.engine
        raise BindingError(
            f"workflow '{self.workflow.key}' step '{step}' uses {kind} '{name}', which "
            f"environment '{self.environment.name}' does not bind for {self.target.engine} "
            f"(add spec.bindings.{section[kind]}.{name}.{leaf})"
        )


Node = TypeVar("Node")


class Translator(ABC, Generic[Node]):
    """Renders a workflow for one engine: one method per step type, named after the type."""

    engine: ClassVar[EngineName]
    FEATURES: ClassVar[dict[str, Feature]] = {}

    @abstractmethod
    def render(self, workflow: Workflow, target: Target, environment: Environment) -> Artifact:
        """The artifact of `workflow` for `target` in `environment`."""

    def context(
        self, workflow: Workflow, target: Target, environment: Environment
    ) -> RenderContext:
        return RenderContext(workflow, target, environment, dict(self.FEATURES))

    def step(self, step: Step, path: str, ctx: RenderContext) -> Node:
        """Dispatch to the method named after the step's type."""
        method = getattr(self, step.type)
        result: Node = method(step, path, ctx)
        return result

    @abstractmethod
    def task(self, step: TaskStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def choice(self, step: ChoiceStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def parallel(self, step: ParallelStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def map(self, step: MapStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def wait(self, step: WaitStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def approval(self, step: ApprovalStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def succeed(self, step: SucceedStep, path: str, ctx: RenderContext) -> Node: ...

    @abstractmethod
    def fail(self, step: FailStep, path: str, ctx: RenderContext) -> Node: ...
