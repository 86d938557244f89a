"""`spec.alerts` and `spec.slo` on Step Functions: one CloudWatch metric alarm per alert and
per SLO objective, on the state machine's metrics (namespace AWS/States, dimension
StateMachineArn; docs/alerts.md).

- a failureRate alert: metric math `(ExecutionsFailed + ExecutionsTimedOut) /
  ExecutionsStarted` (each a Sum over the window) above the ratio;
- a duration alert: ExecutionTime's Maximum over the window above the threshold in ms;
- slo.completionTime.pNN: ExecutionTime's pNN over a day above the threshold in ms;
- slo.successRate: `1 - ` that failure ratio over a day below the rate;
- pendingTasks and retries alerts: none, Step Functions publishes no such metric.

The alarms are part of the state machine's artifact (`document["alarms"]`, keyed by alarm
name): planned, applied, drifted and deleted with it. The live alarms are the ones named
`cpl-<tenant>-<name>-...` whose metrics are the state machine's, so an alarm removed from the
spec is deleted and one edited by hand shows as drift.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.engines.live import MANAGED_TAG, ResourceError
from controlplane.engines.translator import Feature, RenderContext
from controlplane.spec.model import CountAlert, DurationAlert, FailureRateAlert, Workflow

NAMESPACE = "AWS/States"
DIMENSION = "StateMachineArn"

DEFAULT_ALERT_WINDOW = 300
"""Seconds an alert without `window` is measured over (CloudWatch's usual 5 minutes)."""
SLO_WINDOW = 86400
"""Seconds an SLO objective is measured over: one day, CloudWatch's longest alarm period."""
_PERIODS_BELOW_A_MINUTE = (10, 20, 30)

# The fields of describe_alarms that carry configuration (the rest is state and history).
_FIELDS = (
    "AlarmDescription",
    "ActionsEnabled",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Metrics",
)
_QUERY_FIELDS = ("Id", "Expression", "MetricStat", "ReturnData", "Label")

Call = Callable[[str, Callable[[], Any]], Any]

_NOT_EVALUATED = (
    "; cpl deploys and drifts the alarm, CloudWatch evaluates it (its evaluation is not "
    "exercised by cpl's tests) and it has no actions: route its state changes from EventBridge"
)
_NO_METRIC = (
    "Step Functions publishes no metric of {what}: no alarm is rendered, the alert travels "
    "with the spec to monitoring"
)

ALARM_FEATURES: dict[str, Feature] = {
    "alerts": Feature(
        "approximated",
        "a CloudWatch metric alarm on the state machine's AWS/States metrics (failureRate: "
        "failed and timed-out runs over runs started in the window; duration: ExecutionTime, "
        "published when a run ends)" + _NOT_EVALUATED,
    ),
    "alerts.pendingTasks": Feature(
        "approximated", _NO_METRIC.format(what="pending tasks (executions waiting for a task)")
    ),
    "alerts.retries": Feature("approximated", _NO_METRIC.format(what="retried attempts")),
    "slo": Feature(
        "approximated",
        "a CloudWatch metric alarm per objective over a day (completionTime: the ExecutionTime "
        "percentile; successRate: 1 - failed and timed-out runs over runs started)"
        + _NOT_EVALUATED,
    ),
}
"""The Step Functions verdicts on `alerts` and `slo` (they replace the governance ones)."""


@dataclass(frozen=True)
class Rendered:
    """One alarm of a workflow (`body` in put_metric_alarm's shape, without the name) and
    how well it carries the spec's entry: `path` in the spec, `note` when approximated."""

    name: str
    path: str
    body: dict[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A spec entry no alarm can carry, with why."""

    path: str
    metric: str


def alarm_prefix(resource: str) -> str:
    """What every alarm name of state machine `resource` starts with."""
    return f"cpl-{resource}-"


def render_alarms(
    workflow: Workflow, resource: str, machine_arn: str, environment: str
) -> tuple[list[Rendered], list[Skipped]]:
    """The alarms of the workflow's alerts and SLO objectives, and the alerts without one."""
    tags = {
        MANAGED_TAG: "true",
        "cpl:workflow": workflow.key,
        "cpl:environment": environment,
    }
    prefix = alarm_prefix(resource)
    rendered: list[Rendered] = []
    skipped: list[Skipped] = []
    for index, alert in enumerate(workflow.spec.alerts):
        path = f"/spec/alerts/{index}"
        name = f"{prefix}alert{index}-{alert.metric}"
        window = int(alert.window.seconds) if alert.window is not None else DEFAULT_ALERT_WINDOW
        period, note = _period(window)
        if isinstance(alert, FailureRateAlert):
            body = _ratio_alarm(machine_arn, period, float(alert.above.value), failure=True)
            what = f"failure rate above {alert.above} over {_shown(window)}"
        elif isinstance(alert, DurationAlert):
            body = _execution_time(machine_arn, period, "Maximum", alert.above.seconds)
            what = f"a run longer than {alert.above} (over {_shown(window)})"
        else:
            assert isinstance(alert, CountAlert)
            skipped.append(Skipped(path, alert.metric))
            continue
        body["AlarmDescription"] = f"cpl alert {index} of {workflow.key}: {what}"
        body["Tags"] = dict(tags)
        rendered.append(Rendered(name, path, body, note))
    slo = workflow.spec.slo
    if slo is not None and slo.completion_time is not None:
        for percentile in ("p50", "p95", "p99"):
            limit = getattr(slo.completion_time, percentile)
            if limit is None:
                continue
            body = _execution_time(machine_arn, SLO_WINDOW, percentile, limit.seconds)
            body["AlarmDescription"] = (
                f"cpl SLO of {workflow.key}: {percentile} completion time within {limit} over a day"
            )
            body["Tags"] = dict(tags)
            path = f"/spec/slo/completionTime/{percentile}"
            rendered.append(Rendered(f"{prefix}slo-completionTime-{percentile}", path, body))
    if slo is not None and slo.success_rate is not None:
        body = _ratio_alarm(machine_arn, SLO_WINDOW, float(slo.success_rate), failure=False)
        body["AlarmDescription"] = (
            f"cpl SLO of {workflow.key}: success rate at least {slo.success_rate:g} over a day"
        )
        body["Tags"] = dict(tags)
        rendered.append(Rendered(f"{prefix}slo-successRate", "/spec/slo/successRate", body))
    return rendered, skipped


def record_alarms(
    workflow: Workflow, resource: str, machine_arn: str, ctx: RenderContext
) -> dict[str, dict[str, Any]]:
    """The alarms of the artifact (by name), each spec entry recorded with its verdict."""
    rendered, skipped = render_alarms(workflow, resource, machine_arn, ctx.environment.name)
    for entry in skipped:
        ctx.record(f"alerts.{entry.metric}", entry.path)
    for alarm in rendered:
        feature = "alerts" if alarm.path.startswith("/spec/alerts/") else "slo"
        reason = ctx.features[feature].reason
        ctx.record(feature, alarm.path, f"{reason}; {alarm.note}" if alarm.note else None)
    return {alarm.name: alarm.body for alarm in rendered}


def _period(window: int) -> tuple[int, str | None]:
    """CloudWatch's alarm period for a window of `window` seconds: the window itself when
    CloudWatch takes it (10, 20, 30 s or whole minutes up to a day), else the next it takes."""
    if window in _PERIODS_BELOW_A_MINUTE or (window % 60 == 0 and 60 <= window <= SLO_WINDOW):
        return window, None
    if window < 60:
        period = next((p for p in _PERIODS_BELOW_A_MINUTE if p >= window), 60)
    else:
        period = min(math.ceil(window / 60) * 60, SLO_WINDOW)
    return period, (
        f"CloudWatch alarm periods are 10, 20, 30 seconds or whole minutes up to a day: "
        f"the {_shown(window)} window is measured over {_shown(period)}"
    )


def _shown(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dimensions(machine_arn: str) -> list[dict[str, str]]:
    return [{"Name": DIMENSION, "Value": machine_arn}]


def _execution_time(
    machine_arn: str, period: int, statistic: str, seconds: float
) -> dict[str, Any]:
    """ExecutionTime (milliseconds) above `seconds`, by `statistic` (Maximum or a pNN)."""
    body: dict[str, Any] = {
        "ActionsEnabled": True,
        "Namespace": NAMESPACE,
        "MetricName": "ExecutionTime",
        "Dimensions": _dimensions(machine_arn),
        "Period": period,
        "EvaluationPeriods": 1,
        "Threshold": float(round(seconds * 1000)),
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if statistic.startswith("p"):
        body["ExtendedStatistic"] = statistic
    else:
        body["Statistic"] = statistic
    return body


def _ratio_alarm(
    machine_arn: str, period: int, threshold: float, *, failure: bool
) -> dict[str, Any]:
    """The share of failed (failed or timed out) among started runs, above `threshold`; or,
    with `failure` false, the share of the others below it (a success rate)."""
    queries: list[dict[str, Any]] = [
        _metric_query(query_id, metric, machine_arn, period)
        for query_id, metric in (
            ("failed", "ExecutionsFailed"),
            ("timedout", "ExecutionsTimedOut"),
            ("started", "ExecutionsStarted"),
        )
    ]
    failed = "(FILL(failed, 0) + FILL(timedout, 0)) / started"
    expression = failed if failure else f"1 - {failed}"
    label = "failure rate" if failure else "success rate"
    queries.append({"Id": "rate", "Expression": expression, "Label": label, "ReturnData": True})
    return {
        "ActionsEnabled": True,
        "Metrics": queries,
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold" if failure else "LessThanThreshold",
        "TreatMissingData": "notBreaching",
    }


def _metric_query(query_id: str, metric: str, machine_arn: str, period: int) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": _dimensions(machine_arn),
            },
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def _on_machine(alarm: dict[str, Any], machine_arn: str) -> bool:
    """Whether the alarm watches a metric of the machine (directly or in its metric math)."""
    dimensions = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:
        dimensions += (query.get("MetricStat") or {}).get("Metric", {}).get("Dimensions") or []
    return any(d.get("Name") == DIMENSION and d.get("Value") == machine_arn for d in dimensions)


def _shape(alarm: dict[str, Any]) -> dict[str, Any]:
    """A described alarm in the artifact's shape: configuration fields only, none empty."""
    body = {key: alarm[key] for key in _FIELDS if alarm.get(key) not in (None, [], "")}
    if "Metrics" in body:
        body["Metrics"] = [
            {key: query[key] for key in _QUERY_FIELDS if query.get(key) not in (None, "")}
            for query in body["Metrics"]
        ]
    return body


class CloudWatchAlarms:
    """Reads and writes the CloudWatch alarms of one state machine through `call`, the
    client's retrying call (`call(action, operation)`), on the `cloudwatch` boto3 client."""

    def __init__(self, cloudwatch: Any, call: Call) -> None:
        self.cloudwatch = cloudwatch
        self.call = call

    def read(self, resource: str, machine_arn: str) -> dict[str, dict[str, Any]]:
        """The machine's alarms by name, in the artifact's shape (tags included)."""
        return {name: body for name, (body, _) in self._live(resource, machine_arn).items()}

    def _live(self, resource: str, machine_arn: str) -> dict[str, tuple[dict[str, Any], str]]:
        """The machine's alarms by name: the artifact's shape and the alarm's ARN."""
        found: dict[str, tuple[dict[str, Any], str]] = {}
        options: dict[str, Any] = {}
        while True:
            page = self.call(
                "describe the alarms of the state machine",
                functools.partial(
                    self.cloudwatch.describe_alarms,
                    AlarmNamePrefix=alarm_prefix(resource),
                    AlarmTypes=["MetricAlarm"],
                    **options,
                ),
            )
            for alarm in page.get("MetricAlarms", []):
                if _on_machine(alarm, machine_arn):
                    body = _shape(alarm)
                    body["Tags"] = self._tags(alarm["AlarmName"], alarm["AlarmArn"])
                    found[alarm["AlarmName"]] = (body, alarm["AlarmArn"])
            if not page.get("NextToken"):
                break
            options = {"NextToken": page["NextToken"]}
        return {name: found[name] for name in sorted(found)}

    def _tags(self, name: str, arn: str) -> dict[str, str]:
        answer = self.call(
            f"list the tags of alarm {name}",
            lambda: self.cloudwatch.list_tags_for_resource(ResourceARN=arn),
        )
        return {tag["Key"]: tag["Value"] for tag in answer.get("Tags", [])}

    def put(self, resource: str, machine_arn: str, alarms: dict[str, dict[str, Any]]) -> None:
        """Make the live alarms of the machine exactly `alarms`."""
        live = self._live(resource, machine_arn)
        for name, body in alarms.items():
            self._put(name, body, live.get(name))
        stale = sorted(name for name in live if name not in alarms)
        if stale:
            self.delete(stale)

    def delete_all(self, resource: str, machine_arn: str) -> None:
        """Delete every alarm of the machine (the workflow is going)."""
        names = list(self._live(resource, machine_arn))
        if names:
            self.delete(names)

    def _put(
        self, name: str, body: dict[str, Any], live: tuple[dict[str, Any], str] | None
    ) -> None:
        wanted = dict(body.get("Tags") or {})
        arguments = {key: value for key, value in body.items() if key != "Tags"}
        tags = [{"Key": key, "Value": value} for key, value in sorted(wanted.items())]
        self.call(
            f"put alarm {name}",
            lambda: self.cloudwatch.put_metric_alarm(AlarmName=name, **arguments, Tags=tags),
        )
        if live is None:
            return
        # put_metric_alarm ignores Tags on an existing alarm: tag and untag it instead.
        live_body, arn = live
        stale = [key for key in live_body.get("Tags", {}) if key not in wanted]
        if stale:
            self.call(
                f"untag alarm {name}",
                lambda: self.cloudwatch.untag_resource(ResourceARN=arn, TagKeys=stale),
            )
        if tags:
            self.call(
                f"tag alarm {name}",
                lambda: self.cloudwatch.tag_resource(ResourceARN=arn, Tags=tags),
            )

    def delete(self, names: list[str]) -> None:
        """Delete the alarms (100 names a call, CloudWatch's limit); gone ones are no error."""
        for start in range(0, len(names), 100):
            batch = names[start : start + 100]
            try:
                self.call(
                    f"delete alarms {', '.join(batch)}",
                    functools.partial(self.cloudwatch.delete_alarms, AlarmNames=batch),
                )
            except ResourceError as error:
                if "ResourceNotFound" not in error.message:
                    raise
