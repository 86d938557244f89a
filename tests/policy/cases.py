"""Per-rule fixtures: a mutation of the compliant workflow (or environment) and exactly the
(rule, pointer) pairs it must fire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.policy.inputs import Rendered

Doc = dict[str, Any]


def _steps(d: Doc) -> list[Doc]:
    steps: list[Doc] = d["spec"]["steps"]
    return steps


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def change(d: Doc) -> None:
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(path: str) -> Callable[[Doc], None]:
    def change(d: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


def _all(*changes: Callable[[Doc], object]) -> Callable[[Doc], None]:
    def change(d: Doc) -> None:
        for one in changes:
            one(d)

    return change


def _no_compensation(d: Doc) -> None:
    del _steps(d)[0]["compensation"]
    del _steps(d)[2]


def _map_step(d: Doc) -> None:
    _steps(d)[0]["next"] = "each"
    _steps(d).insert(
        1,
        {
            "name": "each",
            "type": "map",
            "items": "$.items",
            "start": "item",
            "steps": [
                {
                    "name": "item",
                    "type": "task",
                    "activity": "orders.item",
                    "idempotencyKey": "$.id",
                    "end": True,
                }
            ],
            "next": "done",
        },
    )


@dataclass(frozen=True)
class Case:
    id: str
    change: Callable[[Doc], None] | None
    expected: set[tuple[str, str]]
    environment: Callable[[Doc], None] | None = None
    render: Callable[..., Rendered] | None = None
    previous: Callable[[Doc], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _compat(support: str) -> Callable[..., Rendered]:
    def render(*_: Any) -> Rendered:
        record = {
            "feature": "retry.jitter",
            "support": support,
            "path": "/spec/defaults/retry",
            "reason": "no jitter setting",
        }
        return Rendered(
            {"kind": "stepfunctions", "configuration": {"tracingConfiguration": {"enabled": True}}},
            [record],
        )

    return render


def _sfn_logging(*_: Any) -> Rendered:
    return Rendered(
        {
            "kind": "stepfunctions",
            "configuration": {
                "loggingConfiguration": {"level": "ALL", "includeExecutionData": True},
                "tracingConfiguration": {"enabled": True},
            },
        },
        [],
    )


CASES = [
    Case(
        "CPL-P001",
        _set(
            "spec.steps.0.retry",
            {"maxAttempts": 3, "initialInterval": "1s", "maxInterval": "1m", "jitter": "full"},
        ),
        {("CPL-P001", "/spec/steps/0/retry")},
    ),
    Case(
        "CPL-P002",
        _set(
            "spec.steps.0.retry",
            {
                "maxAttempts": 3,
                "initialInterval": "1s",
                "backoffRate": 2.0,
                "maxInterval": "1m",
                "jitter": "none",
            },
        ),
        {("CPL-P002", "/spec/steps/0/retry/jitter")},
    ),
    Case(
        "CPL-P003",
        _set("spec.defaults.retry.maxAttempts", 20),
        {
            ("CPL-P003", "/spec/steps/0/retry/maxAttempts"),
            ("CPL-P003", "/spec/steps/2/retry/maxAttempts"),
        },
    ),
    Case("CPL-P004", _drop("spec.steps.0.idempotencyKey"), {("CPL-P004", "/spec/steps/0")}),
    Case("CPL-P005", _drop("spec.timeout"), {("CPL-P005", "/spec")}),
    Case("CPL-P006", _drop("spec.onError.deadLetter"), {("CPL-P006", "/spec/onError")}),
    Case("CPL-P007", _no_compensation, {("CPL-P007", "/spec/onError/compensate")}),
    Case(
        "CPL-P008", _set("spec.steps.0.activity", "partner.call"), {("CPL-P008", "/spec/steps/0")}
    ),
    Case("CPL-P009", _drop("spec.security"), {("CPL-P009", "/spec")}),
    Case(
        "CPL-P010",
        None,
        {("CPL-P010", "/metadata/classification")},
        environment=_set("spec.targets.0.regulated", False),
    ),
    Case("CPL-P011", _set("spec.retention", "400d"), {("CPL-P011", "/spec/retention")}),
    Case("CPL-P012", _drop("spec.input.schema"), {("CPL-P012", "/spec/input")}),
    Case(
        "CPL-P013",
        _set("spec.input.maxInlineBytes", "512KiB"),
        {("CPL-P013", "/spec/input/maxInlineBytes")},
    ),
    Case(
        "CPL-P014", _set("spec.schedule", {"cron": "0 2 * * *"}), {("CPL-P014", "/spec/schedule")}
    ),
    Case("CPL-P015", _drop("spec.slo"), {("CPL-P015", "/spec")}),
    Case(
        "CPL-P016",
        _set("spec.access.admin.jit.maxDuration", "8h"),
        {("CPL-P016", "/spec/access/admin/jit/maxDuration")},
    ),
    Case(
        "CPL-P017",
        _all(
            _set("metadata.version", "1.1.0"),
            _drop("spec.steps.0.compensation"),
            _set("spec.onError.compensate", False),
            lambda d: _steps(d).pop(2),
        ),
        {("CPL-P017", "/metadata/version")},
        previous=lambda d: None,
    ),
    Case(
        "CPL-P018",
        _set("spec.steps.0.parameters", {"password": "hunter2", "id": "$.orderId"}),
        {("CPL-P018", "/spec/steps/0/parameters/password")},
    ),
    Case("CPL-P019", _map_step, {("CPL-P019", "/spec/steps/1")}),
    Case("CPL-P020", None, {("CPL-P020", "/spec/defaults/retry")}, render=_compat("unsupported")),
    Case("CPL-P021", None, {("CPL-P021", "/metadata/classification")}, render=_sfn_logging),
    Case(
        "CPL-P022",
        _set(
            "spec.triggers",
            [
                {"name": "web", "source": "com.acme.shop", "type": "t", "authenticated": False},
                {"name": "partner", "source": "com.acme.partner", "type": "t"},
                {"name": "signed", "source": "com.acme.bank", "type": "t", "authenticated": True},
            ],
        ),
        {("CPL-P022", "/spec/triggers/0/authenticated"), ("CPL-P022", "/spec/triggers/1")},
    ),
]
