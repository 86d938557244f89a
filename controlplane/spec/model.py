"""The engine-neutral workflow spec (`cpl schema --kind Workflow`) as frozen pydantic models.

Field names are snake_case in Python and camelCase in documents (aliases). Every model
forbids unknown keys. Scalar checks that need no context (durations, cron, semver,
time zones) live here; checks across steps live in `check.py`.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from controlplane.spec.types import (
    NAME_PATTERN,
    PATH_PATTERN,
    TENANT_PATTERN,
    DataPath,
    Duration,
    Ratio,
    Size,
    shown,
)

API_VERSION = "cpl.dev/v1"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class Model(BaseModel):
    """Base of every document model: immutable, strict about keys, camelCase aliases."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )


StepName = Annotated[str, Field(pattern=NAME_PATTERN)]
Classification = Literal["public", "internal", "confidential", "pii", "phi", "pci"]
ComplianceRegime = Literal["sox", "hipaa", "gdpr", "pci-dss"]
REGULATED_CLASSES = frozenset({"pii", "phi", "pci"})


# --- metadata -------------------------------------------------------------------------


class Metadata(Model):
    name: str = Field(pattern=NAME_PATTERN)
    tenant: str = Field(pattern=TENANT_PATTERN)
    version: str
    owner: str = Field(min_length=1)
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    classification: Classification = "internal"
    compliance: list[ComplianceRegime] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _semver(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _SEMVER.match(value):
            raise PydanticCustomError(
                "CPL-S021",
                "'{value}' is not a semantic version (MAJOR.MINOR.PATCH)",
                {"value": value},
            )
        return value

    @property
    def key(self) -> str:
        """`tenant/name`, the workflow's identity across environments."""
        return f"{self.tenant}/{self.name}"


# --- conditions -----------------------------------------------------------------------

OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "in", "matches", "exists")


class Comparison(Model):
    """`{path: $.total, gt: 1000}`: exactly one operator applied to the value at `path`."""

    path: DataPath
    eq: Any = None
    ne: Any = None
    gt: int | float | None = None
    ge: int | float | None = None
    lt: int | float | None = None
    le: int | float | None = None
    in_: list[Any] | None = Field(default=None, alias="in")
    matches: str | None = None
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_operator(cls, data: Any) -> Any:
        if isinstance(data, dict):
            used = [op for op in OPERATORS if op in data]
            if len(used) != 1:
                raise PydanticCustomError(
                    "CPL-S004",
                    "a condition takes exactly one operator of {ops} (found {found})",
                    {"ops": " ".join(OPERATORS), "found": ", ".join(used) or "none"},
                )
        return data

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise PydanticCustomError(
                    "CPL-S004", "invalid regular expression: {error}", {"error": str(exc)}
                ) from None
        return value

    @property
    def operator(self) -> str:
        """The one operator the user set (`in` is stored in the field `in_`)."""
        return next(op for op in OPERATORS if _operator_field(op) in self.model_fields_set)

    @property
    def operand(self) -> Any:
        return getattr(self, _operator_field(self.operator))


def _operator_field(operator: str) -> str:
    return "in_" if operator == "in" else operator


class AllOf(Model):
    all: list[Condition] = Field(min_length=1)


class AnyOf(Model):
    any: list[Condition] = Field(min_length=1)


class NotOf(Model):
    not_: Condition = Field(alias="not")


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "path"
    if isinstance(value, BaseModel):
        tags: dict[type[BaseModel], str] = {AllOf: "all", AnyOf: "any", NotOf: "not"}
        return tags.get(type(value), "path")
    return None


Condition = Annotated[
    Annotated[Comparison, Tag("path")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")],
    Discriminator(
        _condition_tag,
        custom_error_type="CPL-S004",
        custom_error_message="a condition is a mapping: {path: $.total, gt: 1000}, "
        "{all: [...]}, {any: [...]} or {not: {...}}",
    ),
]


# --- retry, catch, circuit breaker ------------------------------------------------------


class Retry(Model):
    max_attempts: int = Field(default=1, ge=1)
    initial_interval: Duration | None = None
    backoff_rate: float | None = Field(default=None, ge=1.0)
    max_interval: Duration | None = None
    jitter: Literal["none", "full"] | None = None
    non_retryable: list[str] = Field(default_factory=list)


class Catch(Model):
    errors: list[str] = Field(min_length=1)
    next: StepName
    result_path: DataPath | None = None


class CircuitBreaker(Model):
    failure_threshold: int = Field(ge=1)
    reset_timeout: Duration


# --- steps ----------------------------------------------------------------------------


class StepBase(Model):
    name: StepName
    next: StepName | None = None
    end: bool | None = None
    depends_on: list[StepName] | None = None
    when: Condition | None = None


class CatchingStep(StepBase):
    catch: list[Catch] = Field(default_factory=list)


class TaskStep(CatchingStep):
    type: Literal["task"]
    activity: str = Field(min_length=1)
    idempotency_key: DataPath | None = None
    timeout: Duration | None = None
    heartbeat: Duration | None = None
    retry: Retry | None = None
    circuit_breaker: CircuitBreaker | None = None
    compensation: StepName | None = None
    result_path: DataPath | None = None
    parameters: dict[str, Any] | None = None


class ChoiceRule(Model):
    when: Condition
    next: StepName


class ChoiceStep(StepBase):
    type: Literal["choice"]
    rules: list[ChoiceRule] = Field(min_length=1)
    default: StepName | None = None


class Branch(Model):
    start: StepName
    steps: list[Step] = Field(min_length=1)


class ParallelStep(CatchingStep):
    type: Literal["parallel"]
    branches: list[Branch] = Field(min_length=1)
    result_path: DataPath | None = None


class MapStep(CatchingStep):
    type: Literal["map"]
    items: DataPath
    max_concurrency: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    start: StepName
    steps: list[Step] = Field(min_length=1)
    result_path: DataPath | None = None


class WaitStep(CatchingStep):
    type: Literal["wait"]
    duration: Duration | None = None
    until: DataPath | None = None


class Approvers(Model):
    roles: list[str] = Field(min_length=1)


class ApprovalStep(CatchingStep):
    type: Literal["approval"]
    signal: str = Field(min_length=1)
    timeout: Duration | None = None
    on_timeout: StepName | None = None
    approvers: Approvers | None = None


class SucceedStep(StepBase):
    type: Literal["succeed"]


class FailStep(StepBase):
    type: Literal["fail"]
    error: str | None = None
    cause: str | None = None


Step = Annotated[
    TaskStep
    | ChoiceStep
    | ParallelStep
    | MapStep
    | WaitStep
    | ApprovalStep
    | SucceedStep
    | FailStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("task", "choice", "parallel", "map", "wait", "approval", "succeed", "fail")
TERMINAL_TYPES = frozenset({"succeed", "fail"})


# --- the rest of the spec --------------------------------------------------------------


class InputSpec(Model):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    max_inline_bytes: Size | None = None


class Schedule(Model):
    cron: str
    timezone: str | None = None
    overlap: Literal["skip", "buffer-one", "allow-all"] | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not _valid_cron(value):
            raise PydanticCustomError(
                "CPL-S018", "'{value}' is not a valid 5-field cron expression", {"value": value}
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not _valid_timezone(value):
            raise PydanticCustomError(
                "CPL-S019", "'{value}' is not an IANA time zone", {"value": value}
            )
        return value


@lru_cache(maxsize=4096)
def _valid_cron(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


@lru_cache(maxsize=1024)
def _valid_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- event triggers (docs/triggers.md) --------------------------------------------------------
# A trigger starts a run when a CloudEvent with its `source` and `type` arrives and every
# filter matches. Filter keys are CloudEvents attribute names (`subject`, an extension such
# as `channel`) or paths into the event's data (`$.data.channel`); values are matchers: a
# scalar (equal), a list of scalars (equal to one of them) or `{prefix: text}`. The run's
# input maps input fields to paths into the event; without `input` it is the event's data.

ATTRIBUTE_PATTERN = r"^[a-z0-9]{1,20}$"
_ATTRIBUTE = re.compile(ATTRIBUTE_PATTERN)
_PATH = re.compile(PATH_PATTERN)
# Attributes a trigger names in its own fields, or that differ on every event.
RESERVED_ATTRIBUTES = frozenset({"source", "type", "id", "specversion", "time", "data"})
INPUT_FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _filter_key(key: str) -> str:
    if key.startswith("$"):
        if key.startswith("$.data.") and _PATH.match(key) and "[" not in key:
            return key
        raise PydanticCustomError(
            "CPL-S004",
            "filter '{key}' is not a path into the event's data ($.data.field; no list indexes)",
            {"key": key},
        )
    if not _ATTRIBUTE.match(key):
        raise PydanticCustomError(
            "CPL-S004",
            "filter '{key}' is neither a CloudEvents attribute name (lowercase letters and "
            "digits, at most 20) nor a path into the event's data ($.data.field)",
            {"key": key},
        )
    if key in RESERVED_ATTRIBUTES:
        raise PydanticCustomError(
            "CPL-S004",
            "'{key}' cannot be filtered on: source and type are the trigger's own fields; "
            "id, specversion and time differ on every event; filter data with $.data paths",
            {"key": key},
        )
    return key


def _event_path(path: DataPath) -> DataPath:
    parts = path.parts
    if any(isinstance(part, int) for part in parts):
        raise PydanticCustomError(
            "CPL-S004",
            "'{path}' indexes a list: a trigger's input paths name keys only ($.data.field)",
            {"path": path.text},
        )
    if not parts or not isinstance(parts[0], str):
        raise PydanticCustomError(
            "CPL-S004",
            "'{path}' does not name a part of the event: use $.data, $.data.field or an "
            "attribute such as $.subject",
            {"path": path.text},
        )
    if parts[0] != "data" and (len(parts) > 1 or not _ATTRIBUTE.match(parts[0])):
        raise PydanticCustomError(
            "CPL-S004",
            "'{path}' is not a path into the event: a CloudEvents attribute ($.subject) or "
            "its data ($.data.field)",
            {"path": path.text},
        )
    return path


FilterKey = Annotated[str, AfterValidator(_filter_key)]
Scalar = Annotated[str | int | float | bool, Field(union_mode="left_to_right")]
EventPath = Annotated[DataPath, AfterValidator(_event_path)]
InputField = Annotated[str, Field(pattern=INPUT_FIELD_PATTERN)]


class PrefixMatch(Model):
    """`{prefix: web-}`: the value is a string that starts with `prefix`."""

    prefix: str = Field(min_length=1)


def _matcher_tag(value: Any) -> str:
    if isinstance(value, dict | PrefixMatch):
        return "prefix"
    return "any-of" if isinstance(value, list) else "equal"


FilterMatcher = Annotated[
    Annotated[Scalar, Tag("equal")]
    | Annotated[list[Scalar], Field(min_length=1), Tag("any-of")]
    | Annotated[PrefixMatch, Tag("prefix")],
    Discriminator(_matcher_tag),
]


class Trigger(Model):
    name: StepName
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    filters: dict[FilterKey, FilterMatcher] = Field(default_factory=dict)
    input: dict[InputField, EventPath] | None = None
    authenticated: bool = False


class Defaults(Model):
    timeout: Duration | None = None
    heartbeat: Duration | None = None
    retry: Retry | None = None


class OnError(Model):
    dead_letter: str | None = None
    compensate: bool = False


class CompletionTime(Model):
    p50: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None


class Slo(Model):
    completion_time: CompletionTime | None = None
    success_rate: float | None = Field(default=None, gt=0, le=1)


# --- alerts ---------------------------------------------------------------------------
# `above` is typed by the metric (docs/alerts.md): a duration for `duration`, a ratio for
# `failureRate`, a count for `pendingTasks` and `retries`. The normalized document holds
# seconds, a number from 0 to 1, and an integer.

Count = Annotated[int, Field(strict=True, ge=0)]


class _Alert(Model):
    """The check every alert shares; subclasses set `metric` and the type of `above`."""

    _threshold: ClassVar[str]
    _threshold_code: ClassVar[str] = "CPL-S004"

    @field_validator("above", mode="wrap", check_fields=False)
    @classmethod
    def _typed_threshold(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        try:
            return handler(value)
        except ValidationError:
            # Say what this metric's threshold is, not which Python type failed.
            metric = info.data.get("metric", "this")
            raise PydanticCustomError(
                cls._threshold_code,
                "a {metric} alert's threshold is {threshold}, not {value}",
                {"metric": metric, "threshold": cls._threshold, "value": shown(value)},
            ) from None


class FailureRateAlert(_Alert):
    """Fires when the share of failed runs in `window` exceeds `above`."""

    _threshold = "a ratio from 0 to 1 (0.02) or a percentage (2%)"

    metric: Literal["failureRate"]
    above: Ratio = Field(description="A ratio from 0 to 1 (`0.02`) or a percentage (`2%`).")
    window: Duration | None = None


class DurationAlert(_Alert):
    """Fires when a run takes longer than `above`."""

    _threshold = "a duration such as 90s or 5h"
    _threshold_code = "CPL-S022"

    metric: Literal["duration"]
    above: Duration = Field(description="A duration such as `90s` or `5h`.")
    window: Duration | None = None


class CountAlert(_Alert):
    """Fires when the number of pending tasks, or of retries in `window`, exceeds `above`."""

    _threshold = "a count (a whole number, 0 or more)"

    metric: Literal["pendingTasks", "retries"]
    above: Count = Field(description="A whole number, 0 or more.")
    window: Duration | None = None


Alert = Annotated[FailureRateAlert | DurationAlert | CountAlert, Field(discriminator="metric")]


class Jit(Model):
    max_duration: Duration


class AccessRule(Model):
    roles: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    jit: Jit | None = None


class Access(Model):
    start: AccessRule | None = None
    signal: AccessRule | None = None
    admin: AccessRule | None = None


class Encryption(Model):
    key: str = Field(min_length=1)


class Security(Model):
    encryption: Encryption | None = None
    isolation: Literal["standard", "regulated"] = "standard"


class Offload(Model):
    store: str = Field(min_length=1)
    threshold: Size


class Payload(Model):
    offload: Offload | None = None


class WorkflowBody(Model):
    input: InputSpec | None = None
    timeout: Duration | None = None
    retention: Duration | None = None
    schedule: Schedule | None = None
    triggers: list[Trigger] = Field(default_factory=list)
    defaults: Defaults | None = None
    start: StepName | None = None
    steps: list[Step] = Field(min_length=1)
    on_error: OnError | None = None
    slo: Slo | None = None
    alerts: list[Alert] = Field(default_factory=list)
    access: Access | None = None
    security: Security | None = None
    payload: Payload | None = None

    @property
    def is_dag(self) -> bool:
        """DAG form: no `start`; steps order themselves with `dependsOn`."""
        return self.start is None


class Workflow(Model):
    api_version: Literal["cpl.dev/v1"]
    kind: Literal["Workflow"]
    metadata: Metadata
    spec: WorkflowBody

    @property
    def key(self) -> str:
        return self.metadata.key


for _model in (AllOf, AnyOf, NotOf, Branch, MapStep, ParallelStep, ChoiceRule, StepBase):
    _model.model_rebuild()
