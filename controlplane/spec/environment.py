"""Environments (`cpl schema --kind Environment`): where workflows go, what logical names mean
there, and how
policies, deployment and audit behave in it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, overload

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from controlplane.errors import ConfigError, Diagnostic
from controlplane.spec.identity import DeployApprovers, IdentitySettings
from controlplane.spec.locate import Positions
from controlplane.spec.model import Model, Workflow
from controlplane.spec.types import NAME_PATTERN, Duration

EngineName = str
"""The name of an engine of the registry (`controlplane.engines.ENGINES`), e.g. `temporal`.

A plain string here: which names exist is the registry's business, so registering an engine
never touches spec/. Environments are checked against the registry when they load
(`spec.load`: an unknown engine is a diagnostic with a "did you mean")."""

Enforcement = Literal["mandatory", "advisory", "disabled"]


def registered_engines() -> tuple[str, ...]:
    """The names of the registered engines, in registry order.

    Read from `controlplane.engines` when called, not when spec/ is imported: engines/
    imports spec/, so spec/ stays importable on its own and sees engines registered later
    (a test may add one to the registry).
    """
    from controlplane.engines import ENGINES

    return tuple(ENGINES)


class _RegisteredEngineNames(Sequence[str]):
    """`ENGINE_NAMES`: the registered engine names, looked up on every use."""

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return registered_engines()[index]

    def __len__(self) -> int:
        return len(registered_engines())

    def __iter__(self) -> Iterator[str]:
        return iter(registered_engines())

    def __contains__(self, name: object) -> bool:
        return name in registered_engines()

    def __repr__(self) -> str:
        return repr(registered_engines())


ENGINE_NAMES: Sequence[str] = _RegisteredEngineNames()
"""The names of the registered engines (a live view of the registry, see `registered_engines`)."""


def _engine_schema(schema: dict[str, Any]) -> None:
    """Editors offer the registered engines (the schema is generated after registration)."""
    schema["enum"] = list(registered_engines())


OUTSIDE_REPO = "CPL-S040"
"""The code of a path in an environment that leads out of the control repo."""
STATE_URL = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]*)?")
LOCK_URL = re.compile(r"dynamodb://[A-Za-z0-9_.-]{3,255}")


def _escapes_repo(value: str) -> bool:
    """Whether a path, read relative to the repo, leaves it on paper (absolute or `..`)."""
    if PurePosixPath(value).is_absolute() or value.startswith("~"):
        return True
    normal = posixpath.normpath(value.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def _confined(value: str | None, info: ValidationInfo) -> str | None:
    """A field validator: the path stays in the repo unless `allowOutsideRepo` is true.

    `allowOutsideRepo` is declared before the path fields of its mapping, so it is already
    validated (in `info.data`) when a path is checked.
    """
    if value is None or info.data.get("allow_outside_repo", False):
        return value
    if _escapes_repo(value):
        raise PydanticCustomError(
            OUTSIDE_REPO,
            "path '{path}' leads outside the control repo (set allowOutsideRepo: true on "
            "this mapping to allow it)",
            {"path": value},
        )
    return value


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


# Fields the built-in engines need on their targets; checked when the environment loads (an
# engine without an entry checks its own settings when it renders or connects).
_REQUIRED_TARGET_FIELDS: dict[str, tuple[str, ...]] = {
    "stepfunctions": ("region",),
    "temporal": ("address", "namespace", "task_queue"),
    "argo": ("namespace",),
}


# The bounds of a target's timeouts: a zero timeout would fail every call, and one longer than
# these would bring back the hang the timeouts exist to prevent.
_TIMEOUT_BOUNDS: dict[str, tuple[float, float]] = {
    "connect": (0.01, 300.0),
    "call": (0.01, 600.0),
    "deadline": (0.01, 3600.0),
}


class TargetTimeouts(Model):
    """How long cpl waits for a target's engine (docs/security.md, "Timeouts and hangs").

    `connect`: to open a connection; `call`: for one answer to one request; `deadline`: the
    longest cpl keeps retrying a target that does not answer. Once a target has not answered
    within its deadline, the command's other calls to it fail at once, naming the target.
    """

    connect: Duration = Duration("3s")
    call: Duration = Duration("10s")
    deadline: Duration = Duration("60s")

    @model_validator(mode="after")
    def _bounded(self) -> TargetTimeouts:
        for name, (low, high) in _TIMEOUT_BOUNDS.items():
            value: Duration = getattr(self, name)
            if not low <= value.seconds <= high:
                raise PydanticCustomError(
                    "CPL-S022",
                    "timeouts.{name} is {value}: it must be between {low}s and {high}s",
                    {"name": name, "value": value.text, "low": f"{low:g}", "high": f"{high:g}"},
                )
        return self


class PrometheusSettings(Model):
    """Where the Prometheus that evaluates a target's rules finds them (docs/alerts.md).

    cpl writes the target's rules file (`<target>.rules.yml`) into `rulesDir`, which that
    Prometheus loads (`rule_files`), then POSTs `reloadUrl` (`http://host:9090/-/reload`,
    Prometheus started with `--web.enable-lifecycle`). `workerMetrics` is the `host:port` the
    target's `cpl worker` serves its metrics on; `sloWindow` the window SLO objectives are
    measured over; `evaluationInterval` that of the rule groups (Prometheus' own by default).
    """

    # Declared before `rules_dir`: the path's validator reads it (see `_confined`).
    allow_outside_repo: bool = False
    rules_dir: str
    reload_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2048)
    worker_metrics: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\[\]:-]+:[0-9]{1,5}$")
    slo_window: Duration = Duration("1h")
    evaluation_interval: Duration | None = None

    _rules_dir_confined = field_validator("rules_dir")(_confined)

    @model_validator(mode="after")
    def _positive_windows(self) -> PrometheusSettings:
        for name, value in (
            ("sloWindow", self.slo_window),
            ("evaluationInterval", self.evaluation_interval),
        ):
            if value is not None and value.seconds < 1:
                raise PydanticCustomError(
                    "CPL-S022",
                    "prometheus.{name} is {value}: it must be 1s or more",
                    {"name": name, "value": value.text},
                )
        return self


class Target(Model):
    name: str = Field(pattern=NAME_PATTERN)
    engine: EngineName = Field(json_schema_extra=_engine_schema)
    regulated: bool = False
    select: Selector = Field(default_factory=Selector)
    timeouts: TargetTimeouts = Field(default_factory=TargetTimeouts)
    # stepfunctions
    region: str | None = None
    endpoint: str | None = None
    role_arn: str | None = None
    # the AWS account of the target's per-workflow roles (when it has no roleArn)
    account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    # the DynamoDB table of the target's circuit breakers (default `cpl-circuits-<name>`)
    circuit_table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    # temporal
    address: str | None = None
    namespace: str | None = None
    task_queue: str | None = None
    # where the Prometheus evaluating the target's slo/alerts rules loads them
    prometheus: PrometheusSettings | None = None
    # argo
    delivery: Literal["gitops", "kubernetes"] | None = None
    # Declared before `path`: the path's validator reads it (see `_confined`).
    allow_outside_repo: bool = False
    path: str | None = None

    _path_confined = field_validator("path")(_confined)

    @model_validator(mode="after")
    def _engine_fields(self) -> Target:
        required = _REQUIRED_TARGET_FIELDS.get(self.engine, ())
        missing = [f for f in required if getattr(self, f) is None]
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


def _binding_schema(schema: dict[str, Any], model: type[Any]) -> None:
    """Editors accept a binding key only for a registered engine (or `external`)."""
    keys = [*schema.get("properties", {}), *registered_engines()]
    schema["propertyNames"] = {"enum": list(dict.fromkeys(keys))}


class ActivityBinding(Model):
    """Where a logical activity runs, per engine: `<engine>: {...}` and `external`.

    Keys are the names of registered engines (checked when the environment loads, like a
    target's `engine`); the built-in engines' keys are also declared fields.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_binding_schema)
    __pydantic_extra__: dict[str, dict[str, Any]] = Field(init=False)

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
    allow_outside_repo: bool = False
    paths: list[Annotated[str, AfterValidator(_confined)]] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    server: str | None = None


class DeploySettings(Model):
    """Where the deploy state lives (docs/state.md): a directory of the repo (default) or an
    `s3://bucket/prefix` URL, which needs a `dynamodb://table` lock."""

    backend: Literal["direct", "pulumi"] = "direct"
    allow_outside_repo: bool = False
    state: str | None = None
    lock: str | None = None
    aws: AwsSettings | None = None
    # with spec.identity: the roles whose principals may apply and `drift --sync`
    approvers: DeployApprovers | None = None

    @field_validator("state")
    @classmethod
    def _state_location(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "://" in value:
            if not STATE_URL.fullmatch(value):
                raise PydanticCustomError(
                    "CPL-S004",
                    "deploy state '{url}' is neither a directory of the repo nor "
                    "s3://bucket[/prefix]",
                    {"url": value},
                )
            return value
        return _confined(value, info)

    @field_validator("lock")
    @classmethod
    def _lock_location(cls, value: str | None) -> str | None:
        if value is not None and not LOCK_URL.fullmatch(value):
            raise PydanticCustomError(
                "CPL-S004", "deploy lock '{url}' is not dynamodb://table", {"url": value}
            )
        return value

    @model_validator(mode="after")
    def _lock_with_remote_state(self) -> DeploySettings:
        remote = self.state is not None and self.state.startswith("s3://")
        if remote and self.lock is None:
            raise PydanticCustomError(
                "CPL-S003", "an s3:// deploy state needs a lock (lock: dynamodb://table)"
            )
        if not remote and self.lock is not None:
            raise PydanticCustomError(
                "CPL-S004",
                "deploy.lock applies to an s3:// state; a directory state is locked in place",
            )
        return self

    @property
    def remote(self) -> bool:
        """The state lives in object storage, not in a directory of the repo."""
        return self.state is not None and "://" in self.state


class S3Retention(Model):
    """S3 Object Lock retention of each audit object: `mode` for `days` from its upload."""

    mode: Literal["COMPLIANCE", "GOVERNANCE"]
    days: int = Field(ge=1, le=36500)


class Sink(Model):
    """One audit sink: exactly one of `file`, `http` or `s3` (`s3://bucket/prefix`).

    An s3 sink reaches S3 in its own `region` / through its own `endpoint` when set, else in
    the environment's `aws` settings (docs/security.md); `retention` needs a bucket with
    Object Lock enabled.
    """

    allow_outside_repo: bool = False
    file: str | None = None
    http: str | None = None
    s3: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    region: str | None = None
    endpoint: str | None = None
    retention: S3Retention | None = None

    _file_confined = field_validator("file")(_confined)

    @model_validator(mode="after")
    def _one_kind(self) -> Sink:
        if [self.file, self.http, self.s3].count(None) != 2:
            raise PydanticCustomError(
                "CPL-S004", "an audit sink is exactly one of `file`, `http` or `s3`"
            )
        if self.s3 is None and (self.region or self.endpoint or self.retention):
            raise PydanticCustomError(
                "CPL-S004", "`region`, `endpoint` and `retention` belong to an `s3` audit sink"
            )
        return self


class AuditAnchor(Model):
    """Where the signed checkpoints of the audit logs' heads are kept (docs/security.md,
    "Anchored head"): a `directory` in the repo, or an `s3://bucket/prefix` (reached like an
    s3 sink). `publicKey` is the PEM file that checkpoints must verify against.
    """

    allow_outside_repo: bool = False
    directory: str | None = None
    s3: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    region: str | None = None
    endpoint: str | None = None
    public_key: str | None = None

    _paths_confined = field_validator("directory", "public_key")(_confined)

    @model_validator(mode="after")
    def _one_place(self) -> AuditAnchor:
        if self.directory is not None and self.s3 is not None:
            raise PydanticCustomError(
                "CPL-S004", "an audit anchor is a `directory` or an `s3` location, not both"
            )
        return self


class AuditSettings(Model):
    sinks: list[Sink] = Field(default_factory=list)
    anchor: AuditAnchor | None = None


class TracingSettings(Model):
    """Where cpl's runs send OpenTelemetry spans: exactly one of `otlp` (an OTLP/gRPC
    collector, `http://` for plain text) or `file` (JSON lines, a path in the repo)
    (docs/runtime.md, "Tracing")."""

    allow_outside_repo: bool = False
    otlp: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/.*)?$", max_length=2048)
    file: str | None = None

    _file_confined = field_validator("file")(_confined)

    @model_validator(mode="after")
    def _one_exporter(self) -> TracingSettings:
        if (self.otlp is None) == (self.file is None):
            raise PydanticCustomError(
                "CPL-S004", "tracing sends spans to exactly one of `otlp` or `file`"
            )
        return self


class Observability(Model):
    """What cpl's own processes report about the runs they start and execute."""

    tracing: TracingSettings | None = None


NotifyEvent = Literal["check-denied", "drift", "apply-failed"]
"""What a notification is sent for (docs/notifications.md)."""

WEBHOOK_URL = "CPL-S061"
"""The code of a notification webhook that is neither https:// nor http:// to loopback."""


class WebhookFromEnv(Model):
    """A webhook URL read from an environment variable when it is used: the URL of a chat
    webhook is its secret, so it stays out of the repo."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class Notification(Model):
    """Where to post a message when one of `events` happens (docs/notifications.md).

    `events`, not `on`: YAML 1.1 reads an unquoted `on` key as the boolean true.
    """

    webhook: Annotated[str, Field(max_length=2048)] | WebhookFromEnv
    events: list[NotifyEvent] = Field(min_length=1)
    format: Literal["slack", "json"] = "slack"

    @field_validator("webhook")
    @classmethod
    def _sendable(cls, value: str | WebhookFromEnv) -> str | WebhookFromEnv:
        from controlplane.notify.webhook import url_problem

        problem = url_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise PydanticCustomError(WEBHOOK_URL, "{problem}", {"problem": problem})
        return value


class AwsSettings(Model):
    """The AWS account cpl itself calls for engines that are not AWS (docs/runtime.md).

    Dead-letter queues and offload stores bound for a Temporal target live in SQS and S3;
    `cpl worker`, `cpl run` and `cpl dlq` reach them in `region`, through `endpoint` when set
    (an emulator on 127.0.0.1). Credentials come from the usual AWS chain, never from here.
    """

    region: str = "us-east-1"
    endpoint: str | None = None


class DriftSettings(Model):
    """`cpl drift` on Temporal (docs/drift.md): `on` names the Temporal target whose `cpl
    worker` processes run the fanned-out drift workflow (`cpl drift --on temporal`), and
    `schedule`, a five-field cron (UTC), makes `cpl apply` keep a schedule of that run."""

    schedule: str | None = None
    on: str | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError("a five-field cron expression such as '17 3 * * *'")
        return value


class EnvironmentMetadata(Model):
    name: str = Field(pattern=NAME_PATTERN)


class EnvironmentBody(Model):
    tier: Literal["development", "staging", "production"]
    targets: list[Target] = Field(min_length=1)
    bindings: Bindings = Field(default_factory=Bindings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    aws: AwsSettings | None = None
    notifications: list[Notification] = Field(default_factory=list, max_length=20)
    drift: DriftSettings | None = None
    observability: Observability = Field(default_factory=Observability)
    identity: IdentitySettings | None = None


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
        """The folder of the deploy state (`deploy.state`, confined to the repo); a state in
        object storage has none (controlplane.deploy.stores opens either)."""
        deploy = self.spec.deploy
        if deploy.remote:
            raise ConfigError(
                f"environment '{self.name}' keeps its deploy state in {deploy.state}, "
                "not in a directory"
            )
        if deploy.state is None:
            return repo / ".cpl" / "state" / self.name
        return confine_to_repo(
            repo, deploy.state, deploy.allow_outside_repo, self.name, "/spec/deploy/state"
        )


def confine_to_repo(
    repo: Path, value: str, allow_outside: bool, environment: str, pointer: str
) -> Path:
    """`value`, a path the environment `environment` names at `pointer`, relative to the repo.

    Loading already refused absolute paths and `..`; this also follows symbolic links, which
    only the file system knows: a path whose real location is outside the repo is a
    ConfigError naming the environment's file, line and field, unless `allow_outside`.
    """
    path = repo / value
    if allow_outside:
        return path
    root = repo.resolve()
    real = path.resolve()
    if real == root or real.is_relative_to(root):
        return path
    file, line, column = _locate(repo, environment, pointer)
    message = (
        f"path '{value}' leads outside the control repo (to {real}, through a symbolic "
        "link); set allowOutsideRepo: true on this mapping to allow it"
    )
    raise ConfigError(
        f"environment '{environment}' names a path outside the repo",
        diagnostics=[Diagnostic(file, line, column, OUTSIDE_REPO, message, pointer)],
    )


def _locate(repo: Path, environment: str, pointer: str) -> tuple[str, int, int]:
    """The environment's file (relative to the repo) and the line and column of `pointer`."""
    for suffix in (".yaml", ".yml", ".json"):
        file = f"environments/{environment}{suffix}"
        try:
            text = (repo / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        return (file, *Positions(text).find(pointer))
    return (f"environments/{environment}.yaml", 1, 1)
