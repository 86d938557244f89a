"""Argo Workflows: WorkflowTemplate and CronWorkflow manifests (translate, schema, client:
GitOps files or the Kubernetes API)."""

from __future__ import annotations

from pathlib import Path

from controlplane.engines.argo.translate import (
    PAYLOAD_LIMIT_BYTES,
    ArgoTranslator,
)
from controlplane.engines.base import Engine, Limits
from controlplane.engines.live import EngineClient
from controlplane.spec.environment import Environment, Target


def _connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    from controlplane.engines.argo.client import create_client

    return create_client(target, environment, repo=repo)


ENGINE = Engine(
    name="argo",
    translator=ArgoTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=_connect,
)
