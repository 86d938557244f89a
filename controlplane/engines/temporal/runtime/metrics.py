"""The interpreter's own metrics: one series per workflow, where Temporal's have none.

Every spec runs as the one interpreter workflow type, so the SDK's and the server's metrics
cannot tell two workflows apart. When a run ends, the interpreter records, through
`workflow.metric_meter()` (which records nothing while a history is replayed, so a run counts
once however often it is replayed):

- `cpl_runs_total{namespace, tenant, workflow, version, status}`: finished runs, `status`
  `completed` or `failed`. Each run also adds 0 to the other status, so both series exist
  from the first run on and a ratio of the two is defined;
- `cpl_run_duration_seconds{..., status}`: a histogram of run durations (start to end);
- `cpl_retries_total{namespace, tenant, workflow, version}`: the retries the interpreter
  scheduled (`retry` events: jittered retries, injected faults).

`cpl worker` exports them on its Prometheus endpoint (`telemetry_runtime`), with duration
buckets that include every threshold of the repo's workflows, so the rules compare
durations on exact bucket bounds (controlplane/monitoring/rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from temporalio import workflow

if TYPE_CHECKING:
    from temporalio.runtime import Runtime

RUNS = "cpl_runs"
"""Exported as `cpl_runs_total` (the exporter adds `_total` to counters)."""
DURATION = "cpl_run_duration_seconds"
RETRIES = "cpl_retries"
STATUSES = ("completed", "failed")


def record_run(
    payload: Mapping[str, Any], status: str, events: Iterable[Mapping[str, Any]]
) -> None:
    """Count a run that ended with `status`, its duration and its retries."""
    info = workflow.info()
    metadata = (payload.get("workflow") or {}).get("metadata") or {}
    labels = {
        "namespace": info.namespace,
        "tenant": str(metadata.get("tenant", "")),
        "workflow": str(metadata.get("name", "")),
        "version": str(payload.get("version", "")),
    }
    meter = workflow.metric_meter()
    runs = meter.create_counter(RUNS, "Runs of cpl workflows that ended, by status")
    for each in STATUSES:
        runs.add(1 if each == status else 0, {**labels, "status": each})
    seconds = max(0.0, (workflow.now() - info.start_time).total_seconds())
    meter.create_histogram_float(
        DURATION, "Durations of the runs of cpl workflows, start to end", "s"
    ).record(seconds, {**labels, "status": status})
    retries = sum(1 for event in events if event.get("kind") == "retry")
    meter.create_counter(RETRIES, "Retries the interpreter scheduled").add(retries, labels)


def telemetry_runtime(bind_address: str, buckets: Sequence[float]) -> Runtime:
    """A temporalio Runtime serving Prometheus metrics on `bind_address` (`host:port`), the
    run-duration histogram with `buckets` (seconds)."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    config = PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        histogram_bucket_overrides={DURATION: list(buckets)},
    )
    return Runtime(telemetry=TelemetryConfig(metrics=config))
