"""Prometheus text-format metrics of a drift run (`cpl drift --metrics FILE`).

Written for node_exporter's textfile collector or a Pushgateway: the resources per status
and target, the non-compliant live states, coverage, duration, the failed reads per target
and whether each target could be read.

Coverage is computed on the targets that could be read (`cpl_drift_target_up` 1). When it is
unknown (reads failed and nothing was found on the targets that were read) the sample is
`NaN`, as Prometheus' instrumentation guidelines recommend for a value that cannot be
computed: the series does not vanish, and a threshold alert such as
`cpl_drift_coverage_ratio < 0.9` stays silent, so alert on `cpl_drift_target_up == 0` too.
"""

from __future__ import annotations

import math
from collections import Counter

from controlplane.drift.model import STATUSES, DriftReport

PREFIX = "cpl_drift"


def drift_metrics(report: DriftReport) -> str:
    """The exposition text (version 0.0.4) of one run, ending with a newline."""
    env = {"environment": report.environment}
    if report.tenants:
        env["tenants"] = ",".join(report.tenants)
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {PREFIX}_{name} {help_text}")
        lines.append(f"# TYPE {PREFIX}_{name} {kind}")

    def sample(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{PREFIX}_{name}{{{text}}} {_number(value)}")

    by_status = Counter((i.target, i.engine, i.status) for i in report.items)
    engines = {t.target: t.engine for t in report.targets}
    family("resources", "gauge", "Resources found by the last drift run, by target and status.")
    for target, engine in sorted(engines.items()):
        for status in STATUSES:
            labels = {**env, "target": target, "engine": engine, "status": status}
            sample("resources", labels, by_status[(target, engine, status)])
    family("drifted_resources", "gauge", "Modified, missing or unmanaged resources.")
    drifted = Counter(i.target for i in report.items if i.drifted)
    for target, engine in sorted(engines.items()):
        sample("drifted_resources", {**env, "target": target, "engine": engine}, drifted[target])
    family("noncompliant_resources", "gauge", "Resources whose live state a mandatory rule denies.")
    noncompliant = Counter(i.target for i in report.items if i.compliant is False)
    for target, engine in sorted(engines.items()):
        labels = {**env, "target": target, "engine": engine}
        sample("noncompliant_resources", labels, noncompliant[target])
    family("read_failures", "gauge", "Reads that failed after retries in the last run.")
    for stats in report.targets:
        labels = {**env, "target": stats.target, "engine": stats.engine}
        sample("read_failures", labels, stats.failures)
    family("target_up", "gauge", "1 when the target could be read, 0 when it was unreachable.")
    down = set(report.unreachable)
    for stats in report.targets:
        labels = {**env, "target": stats.target, "engine": stats.engine}
        sample("target_up", labels, 0 if stats.target in down else 1)
    family(
        "coverage_ratio",
        "gauge",
        "Managed resources over all live resources found on the targets that could be read; "
        "NaN when unknown (nothing could be read).",
    )
    coverage = report.coverage
    sample("coverage_ratio", env, math.nan if coverage is None else coverage)
    family("drifted", "gauge", "1 when the last run found drift.")
    sample("drifted", env, 1 if report.drifted else 0)
    family("duration_seconds", "gauge", "Wall time of the last drift run.")
    sample("duration_seconds", env, round(report.duration, 3))
    family("last_run_timestamp_seconds", "gauge", "When the last drift run started (Unix time).")
    sample("last_run_timestamp_seconds", env, round(report.started.timestamp(), 3))
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"  # the exposition format's spelling
    return str(int(value)) if float(value).is_integer() else repr(float(value))
