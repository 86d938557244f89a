"""Argo: the custom metrics a workflow's slo and alerts need, and the rules on them.

Argo's controller metrics count workflows by phase, not by template, so a template with `slo`
or `alerts` declares Argo custom Prometheus metrics of its own (`spec.metrics`, emitted when a
run ends): `cpl_runs` (a counter) and `cpl_run_duration_seconds` (a histogram of
`{{workflow.duration}}`), labelled like the Temporal interpreter's: namespace, tenant,
workflow, version and status (`{{workflow.status}}`: Succeeded, Failed, Error). Argo 3.6
exposes custom metrics with the `argo_workflows_` prefix, counters with `_total`; the rules
read them under those names. Pending tasks are the controller's pending pods, shared by every
workflow of the cluster; retries have no metric per workflow, so no rule is rendered for them.

The template also carries its normalized slo and alerts in the annotation
`cpl.dev/monitoring`, from which the `share` hook renders the target's rules file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controlplane.engines.live import EngineClient
from controlplane.engines.translator import Artifact, Feature
from controlplane.monitoring.delivery import RulesAwareClient
from controlplane.monitoring.rules import MetricSource, Monitored, duration_buckets
from controlplane.monitoring.share import share_rules
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow
from controlplane.spec.normalize import to_document

ANNOTATION = "cpl.dev/monitoring"
PREFIX = "argo_workflows_"


def _pending(workflow: Monitored) -> str | None:
    return 'sum(argo_workflows_pods_gauge{phase="Pending"})'


METRICS = MetricSource(
    engine="argo",
    runs=f"{PREFIX}cpl_runs_total",
    duration=f"{PREFIX}cpl_run_duration_seconds",
    failed='status=~"Failed|Error"',
    completed='status="Succeeded"',
    retries=None,
    pending=_pending,
    notes={
        "failureRate": "the template's custom metric cpl_runs, emitted by Argo as a run ends",
        "duration": "the template's custom histogram of {{workflow.duration}}, as a run ends",
        "pendingTasks": "the controller's pending pods, shared by every workflow of the cluster",
    },
)


def monitoring_of(workflow: Workflow) -> dict[str, Any] | None:
    """The workflow's normalized slo and alerts; None when it declares neither."""
    spec = to_document(workflow).get("spec") or {}
    found = {key: spec[key] for key in ("slo", "alerts") if spec.get(key)}
    return found or None


def template_metrics(workflow: Workflow, namespace: str) -> dict[str, Any] | None:
    """The `spec.metrics` of the workflow's template, None when it has no slo nor alerts."""
    monitoring = monitoring_of(workflow)
    if monitoring is None:
        return None
    meta = workflow.metadata
    labels = [
        {"key": "namespace", "value": "{{workflow.namespace}}"},
        {"key": "tenant", "value": meta.tenant},
        {"key": "workflow", "value": meta.name},
        {"key": "version", "value": meta.version},
        {"key": "status", "value": "{{workflow.status}}"},
    ]
    monitored = Monitored.of({"metadata": {}, "spec": monitoring}, namespace)
    buckets = [float(b) for b in duration_buckets([monitored])]  # Argo's schema: numbers
    return {
        "prometheus": [
            {
                "name": "cpl_runs",
                "help": "Runs of cpl workflows that ended, by status",
                "labels": labels,
                "counter": {"value": "1"},
            },
            {
                "name": "cpl_run_duration_seconds",
                "help": "Durations of the runs of cpl workflows, start to end",
                "labels": labels,
                "histogram": {"value": "{{workflow.duration}}", "buckets": buckets},
            },
        ]
    }


def monitoring_annotation(workflow: Workflow) -> dict[str, str]:
    monitoring = monitoring_of(workflow)
    if monitoring is None:
        return {}
    return {ANNOTATION: json.dumps(monitoring, sort_keys=True, separators=(",", ":"))}


def monitored(artifact: Artifact, target: Target) -> Monitored | None:
    """The slo and alerts an Argo artifact's template carries (its annotation)."""
    for manifest in artifact.document.get("manifests") or ():
        metadata = manifest.get("metadata") or {}
        text = (metadata.get("annotations") or {}).get(ANNOTATION)
        if not text:
            continue
        tenant, _, name = artifact.workflow.partition("/")
        document = {"metadata": {"tenant": tenant, "name": name}, "spec": json.loads(text)}
        return Monitored.of(document, str(metadata.get("namespace") or "default"))
    return None


def argo_share_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What `share_argo` reads of a workflow's document (the engine's `share_view`, kept in
    the cache): each manifest's namespace and monitoring annotation."""
    manifests = []
    for manifest in document.get("manifests") or ():
        metadata = manifest.get("metadata") or {}
        text = (metadata.get("annotations") or {}).get(ANNOTATION)
        if text:
            namespace = {"namespace": metadata["namespace"]} if "namespace" in metadata else {}
            manifests.append({"metadata": {**namespace, "annotations": {ANNOTATION: text}}})
    return {"manifests": manifests} if manifests else {}


def share_argo(artifacts: list[Artifact], environment: Environment) -> list[Artifact]:
    """The bundle's `share` hook: the rules file of each Argo target that asks for one."""
    return share_rules(artifacts, environment, METRICS, monitored)


def connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    """The registry's factory: the Argo client, with the target's rules file when the target
    names where its Prometheus loads rules."""
    from controlplane.engines.argo.client import create_client

    client = create_client(target, environment, repo=repo)
    if target.prometheus is None:
        return client
    return RulesAwareClient(client, target, environment, repo)


_NEVER_RUN = "never run here (no Argo cluster)"
FEATURES = {
    "alerts": Feature("approximated", "rendered metric by metric: see the alerts.<metric> rows"),
    "slo": Feature("approximated", "rendered objective by objective: see the slo.<name> rows"),
    "alerts.failureRate": Feature(
        "approximated",
        "the template's custom metric cpl_runs and a Prometheus alerting rule on it; " + _NEVER_RUN,
    ),
    "alerts.duration": Feature(
        "approximated",
        "the template's custom histogram of {{workflow.duration}} and an alerting rule on the "
        "bucket at the threshold, measured when a run ends; " + _NEVER_RUN,
    ),
    "alerts.retries": Feature(
        "approximated",
        "no rule is rendered: Argo's metrics do not count retries per workflow, so the "
        "alert travels with the spec only",
    ),
    "alerts.pendingTasks": Feature(
        "approximated",
        "an alerting rule on the controller's pending pods, shared by every workflow of the "
        "cluster; " + _NEVER_RUN,
    ),
    "slo.successRate": Feature(
        "approximated",
        "recording and alerting rules on the template's custom metric cpl_runs; " + _NEVER_RUN,
    ),
    "slo.completionTime": Feature(
        "approximated",
        "recording and alerting rules on the template's custom duration histogram; " + _NEVER_RUN,
    ),
}
"""Support of slo and alerts on Argo: custom metrics and rules, never run here."""
