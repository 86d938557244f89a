"""AWS Step Functions: ASL state machines, their logs and schedules (translate, client, runner,
emulator)."""

from __future__ import annotations

from pathlib import Path

from controlplane.engines.base import Engine, Limits
from controlplane.engines.live import EngineClient
from controlplane.engines.stepfunctions.translate import (
    PAYLOAD_LIMIT_BYTES,
    StepFunctionsTranslator,
)
from controlplane.spec.environment import Environment, Target


def _connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    from controlplane.engines.stepfunctions.client import create_client

    return create_client(target, environment, repo=repo)


ENGINE = Engine(
    name="stepfunctions",
    translator=StepFunctionsTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=_connect,
)
