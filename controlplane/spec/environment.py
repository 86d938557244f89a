"""Environments (SPEC.md §2): where workflows go, what logical names mean there, and how
policies, deployment and audit behave in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from controlplane.spec.model import Model, Workflow
from controlplane.spec.types import NAME_PATTERN

EngineName = Literal["stepfunctions", "temporal", "argo"]
ENGINE_NAMES: tuple[EngineName, ...] = ("stepfunctions", "temporal", "argo")
Enforcement = Literal["mandatory", "advisory", "disabled"]


class Selector(Model):
    """Which workflows a target takes; every given criterion must match, empty = all."""

    tenants: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, workflow: Workflow) -> bool:
        meta = workflow.metadata
        if self.tenants and meta.tenant not in self.tenants:
            return False
        if self.names and meta.name not in self.names and meta.key not in self.names:
            return False
        return all(meta.labels.get(key) == value for key, value in self.labels.items())


# Fields each engine needs on its target; checked when the environment loads.
_REQUIRED_TARGET_FIELDS: dict[str, tuple[str, ...]] = {
    "stepfunctions": ("region",),
    "temporal": ("address", "namespace", "task_queue"),
    "argo": ("namespace",),
}


class Target(Model):
    name: str = Field(pattern=NAME_PATTERN)
    engine: EngineName
    regulated: bool = False
    select: Selector = Field(default_factory=Selector)
    # stepfunctions
    region: str | None = None
    endpoint: str | None = None
    role_arn: str | None = None
    # temporal
    address: str | None = None
    namespace: str | None = None
    task_queue: str | None = None
    # argo
    delivery: Literal["gitops", "kubernetes"] | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _engine_fields(self) -> Target:
        missing = [f for f in _REQUIRED_TARGET_FIELDS[self.engine] if getattr(self, f) is None]
        if self.engine == "argo" and (self.delivery or "gitops") == "gitops" and not self.path:
            missing.append("path")
        if missing:
            raise PydanticCustomError(
                "CPL-S003",
                "{engine} target '{name}' needs {fields}",
                {
                    "engine": self.engine,
                    "name": self.name,
                    "fields": ", ".join(_camel(f) for f in missing),
                },
            )
        return self


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class ActivityBinding(Model):
    stepfunctions: dict[str, Any] | None = None
    temporal: dict[str, Any] | None = None
    argo: dict[str, Any] | None = None
    external: bool = False


class StoreBinding(Model):
    url: str


class Bindings(Model):
    activities: dict[str, ActivityBinding] = Field(default_factory=dict)
    queues: dict[str, dict[str, str]] = Field(default_factory=dict)
    keys: dict[str, dict[str, str]] = Field(default_factory=dict)
    stores: dict[str, StoreBinding] = Field(default_factory=dict)


class PolicySettings(Model):
    enforcement: Enforcement = "mandatory"
    rules: dict[str, Enforcement] = Field(default_factory=dict)
    paths: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    server: str | None = None


class DeploySettings(Model):
    backend: Literal["direct", "pulumi"] = "direct"
    state: str | None = None


class Sink(Model):
    file: str | None = None
    http: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Sink:
        if (self.file is None) == (self.http is None):
            raise PydanticCustomError("CPL-S004", "an audit sink is either `file` or `http`")
        return self


class AuditSettings(Model):
    sinks: list[Sink] = Field(default_factory=list)


class EnvironmentMetadata(Model):
    name: str = Field(pattern=NAME_PATTERN)


class EnvironmentBody(Model):
    tier: Literal["development", "staging", "production"]
    targets: list[Target] = Field(min_length=1)
    bindings: Bindings = Field(default_factory=Bindings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)


class Environment(Model):
    api_version: Literal["cpl.dev/v1"]
    kind: Literal["Environment"]
    metadata: EnvironmentMetadata
    spec: EnvironmentBody

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def tier(self) -> str:
        return self.spec.tier

    def target(self, name: str) -> Target:
        for target in self.spec.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.spec.targets)
        raise KeyError(f"environment '{self.name}' has no target '{name}' (targets: {known})")

    def targets_for(self, workflow: Workflow) -> list[Target]:
        """Every target whose selector matches the workflow."""
        return [t for t in self.spec.targets if t.select.matches(workflow)]

    def state_dir(self, repo: Path) -> Path:
        return repo / (self.spec.deploy.state or f".cpl/state/{self.name}")
