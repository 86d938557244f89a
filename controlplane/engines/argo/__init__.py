"""Argo Workflows: WorkflowTemplate and CronWorkflow manifests (translate, schema, client:
GitOps files or the Kubernetes API)."""

from __future__ import annotations

from typing import Any

from controlplane.engines.argo.metrics import argo_share_view, share_argo
from controlplane.engines.argo.translate import (
    PAYLOAD_LIMIT_BYTES,
    ArgoTranslator,
    engine_names,
)
from controlplane.engines.base import CompatSample, Engine, Limits, lazy
from controlplane.spec.model import Workflow


def _run_hint(workflow: Workflow) -> str:
    """cpl starts no Argo runs (no cluster API here): Argo's own CLI does."""
    resource = f"{workflow.metadata.tenant}-{workflow.metadata.name}"
    return f"submit the WorkflowTemplate with `argo submit --from workflowtemplate/{resource}`"


def _compat_activity(activity: str) -> dict[str, Any]:
    return {"image": "compat:latest", "command": [activity]}


ENGINE = Engine(
    name="argo",
    names=engine_names,
    title="Argo Workflows",
    translator=ArgoTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=lazy("controlplane.engines.argo.metrics:connect"),
    share=share_argo,
    share_view=argo_share_view,
    compat=CompatSample(
        target={
            "delivery": "gitops",
            "path": "compat",
            "namespace": "compat",
            "prometheus": {"rulesDir": "compat"},  # slo and alerts as delivered rules
        },
        activity=_compat_activity,
    ),
    # file reads and the Kubernetes API client are thread-safe
    thread_safe_client=True,
    run_hint=_run_hint,
)
