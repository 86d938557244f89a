"""Temporal: the metrics cpl's rules read, and the `share` hook with the rules file.

Every spec runs as the one interpreter workflow type, so Temporal's own SDK and server metrics
cannot tell two workflows apart. The interpreter records its own (`runtime/metrics.py`), on the
`cpl worker` metrics endpoint (`prometheus.workerMetrics`): `cpl_runs_total` and the
`cpl_run_duration_seconds` histogram by namespace, tenant, workflow, version and status
(`completed`, `failed`), and `cpl_retries_total`. Pending tasks are the server's
`approximate_backlog_count` of the task queues the workflow's activities are bound to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from controlplane.engines.temporal.namespaces import namespace_view, share_namespaces
from controlplane.engines.translator import Artifact, Feature
from controlplane.monitoring.rules import MetricSource, Monitored
from controlplane.monitoring.share import share_rules
from controlplane.spec.environment import Environment, Target

RUNS = "cpl_runs_total"
DURATION = "cpl_run_duration_seconds"
RETRIES = "cpl_retries_total"


def _pending(workflow: Monitored) -> str | None:
    if not workflow.task_queues:
        return None
    namespace = json.dumps(workflow.namespace)
    queues = json.dumps("|".join(re.escape(queue) for queue in workflow.task_queues))
    return (
        f"sum(approximate_backlog_count{{namespace={namespace},"
        f'taskqueue=~{queues},task_type="Activity"}})'
    )


METRICS = MetricSource(
    engine="temporal",
    runs=RUNS,
    duration=DURATION,
    failed='status="failed"',
    completed='status="completed"',
    retries=RETRIES,
    pending=_pending,
    notes={
        "failureRate": "runs counted by cpl's interpreter as they end (cpl_runs_total)",
        "duration": (
            "measured when a run ends (cpl_run_duration_seconds): a run still going past "
            "the threshold is alerted on once it ends"
        ),
        "retries": (
            "the retries the interpreter schedules itself (jitter, injected faults); those "
            "Temporal's RetryPolicy makes inside one activity call are not counted"
        ),
        "pendingTasks": (
            "the server's activity backlog of the task queues the workflow's activities are "
            "bound to, shared with every other workflow using them"
        ),
    },
)


def monitored(artifact: Artifact, target: Target) -> Monitored | None:
    """The slo and alerts of a Temporal workflow artifact (its spec payload)."""
    payload: dict[str, Any] = artifact.document.get("spec") or {}
    document = payload.get("workflow")
    if not isinstance(document, dict):
        return None
    queues = [
        str(binding["taskQueue"])
        for binding in (payload.get("activities") or {}).values()
        if isinstance(binding, dict) and binding.get("taskQueue")
    ]
    namespace = (artifact.document.get("namespace") or {}).get("name") or "default"
    return Monitored.of(document, str(namespace), queues)


def temporal_share_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What `share_temporal` reads of a workflow's document (the engine's `share_view`, kept
    in the cache): the namespace's part, and the slo, alerts and task queues of `monitored`."""
    view = namespace_view(document)
    payload = document.get("spec")
    if isinstance(payload, dict) and isinstance(payload.get("workflow"), dict):
        workflow = payload["workflow"]
        spec = workflow.get("spec") or {}
        metadata = workflow.get("metadata") or {}
        view["spec"] = {
            "workflow": {
                "metadata": {k: metadata[k] for k in ("tenant", "name") if k in metadata},
                "spec": {k: spec[k] for k in ("slo", "alerts") if k in spec},
            },
            "activities": {
                name: {"taskQueue": binding["taskQueue"]}
                for name, binding in (payload.get("activities") or {}).items()
                if isinstance(binding, dict) and binding.get("taskQueue")
            },
        }
    return view


def share_temporal(artifacts: list[Artifact], environment: Environment) -> list[Artifact]:
    """The bundle's `share` hook: the namespaces (`namespaces.py`) and the rules files."""
    return share_rules(share_namespaces(artifacts, environment), environment, METRICS, monitored)


FEATURES = {
    "alerts": Feature("approximated", "rendered metric by metric: see the alerts.<metric> rows"),
    "slo": Feature("approximated", "rendered objective by objective: see the slo.<name> rows"),
    "alerts.failureRate": Feature(
        "approximated",
        "a Prometheus alerting rule on the interpreter's cpl_runs_total: runs that failed over "
        "all runs the interpreter ended in the window, above the ratio; runs the server ends "
        "(the workflow's timeout, termination) are not counted, so failures are undercounted",
    ),
    "alerts.duration": Feature(
        "approximated",
        "a Prometheus alerting rule on the interpreter's run-duration histogram, with a bucket "
        "at the threshold: a run is measured when it ends, so one still running past the "
        "threshold is alerted on only once it ends",
    ),
    "alerts.retries": Feature(
        "approximated",
        "a Prometheus alerting rule on cpl_retries_total, which counts the retries the "
        "interpreter schedules (jitter, injected faults), not those Temporal's RetryPolicy "
        "makes within one activity call",
    ),
    "alerts.pendingTasks": Feature(
        "approximated",
        "a Prometheus alerting rule on the server's approximate_backlog_count of the task "
        "queues the workflow's activities are bound to, shared with other workflows",
    ),
    "slo.successRate": Feature(
        "approximated",
        "a recording rule of the success ratio of the runs the interpreter ended in "
        "prometheus.sloWindow and an alerting rule when it falls below the objective; runs "
        "the server ends (the workflow's timeout, termination) are not counted",
    ),
    "slo.completionTime": Feature(
        "approximated",
        "an alerting rule when fewer than the quantile's share of the completed runs in "
        "prometheus.sloWindow took the objective or less (a histogram bucket at the "
        "objective), and a recording rule of the histogram_quantile; runs the server ends at "
        "the workflow's timeout, the slowest, are not counted",
    ),
}
"""Support of slo and alerts: rules on the interpreter's metrics (docs/alerts.md)."""
