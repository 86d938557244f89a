"""Temporal: cpl's interpreter payload, namespaces, schedules (translate, client, runner,
dev server, runtime)."""

from __future__ import annotations

from pathlib import Path

from controlplane.engines.base import Engine, Limits
from controlplane.engines.live import EngineClient
from controlplane.engines.temporal.namespaces import share_namespaces
from controlplane.engines.temporal.translate import (
    PAYLOAD_LIMIT_BYTES,
    TemporalTranslator,
)
from controlplane.spec.environment import Environment, Target


def _connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    from controlplane.engines.temporal.client import create_client

    return create_client(target, environment, repo=repo)


ENGINE = Engine(
    name="temporal",
    translator=TemporalTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=_connect,
    share=share_namespaces,
    spec_digest_paths=frozenset({"/spec/digest", "/spec/payload", "/schedule/payload"}),
)
