"""Audit events of a drift run (docs/security.md, "Audit integrity"): one `dev.cpl.drift.detected`
per drifted resource
and one `dev.cpl.drift.completed` per run.

Events carry identifiers, statuses, counts and the *paths* that differ, never the values
(a live value may be anything, including data of a regulated workflow).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controlplane.audit import DRIFT_COMPLETED, DRIFT_DETECTED, Auditor
from controlplane.drift.model import DriftReport
from controlplane.engines.translator import is_shared
from controlplane.spec.environment import Environment


def record_drift(
    repo: Path,
    environment: Environment,
    report: DriftReport,
    classifications: Mapping[str, str] | None = None,
) -> None:
    """Record the run in the environment's audit sinks (`classifications` by workflow key)."""
    auditor = Auditor.for_environment(repo, environment)
    known = classifications or {}
    # one S3 object for the whole run (file and HTTP sinks are written at once)
    with auditor.batch():
        for item in report.items:
            if not item.drifted:
                continue
            data: dict[str, Any] = {
                "environment": report.environment,
                "target": item.target,
                "engine": item.engine,
                "resource": item.resource,
                "id": item.id,
                "status": item.status,
                "compliant": item.compliant,
                "paths": [change["path"] for change in item.diff],
                "rules": sorted({v.rule for v in item.violations}),
            }
            shared = item.workflow is not None and is_shared(item.workflow)
            if shared:
                data["resourceKey"] = item.workflow
            auditor.emit(
                DRIFT_DETECTED,
                None if shared else item.workflow,
                data,
                classification=known.get(item.workflow or ""),
            )
        auditor.emit(
            DRIFT_COMPLETED,
            None,
            {
                "environment": report.environment,
                "tenants": list(report.tenants),
                "drifted": report.drifted,
                "partial": report.partial,
                "unreachable": report.unreachable,
                "counts": report.summary,
                "duration": round(report.duration, 3),
            },
        )
