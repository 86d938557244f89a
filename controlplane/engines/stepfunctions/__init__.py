"""AWS Step Functions: ASL state machines, their logs and schedules (translate, client, runner,
emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controlplane.engines.base import LAZY_IMPORTS, CompatSample, Engine, Limits
from controlplane.engines.emulation import Emulator
from controlplane.engines.live import EngineClient
from controlplane.engines.runs import Runner
from controlplane.engines.stepfunctions.translate import (
    PAYLOAD_LIMIT_BYTES,
    StepFunctionsTranslator,
    engine_names,
)
from controlplane.spec.environment import Environment, Target

# The engine's SDK (boto3) loads only when a client, runner or emulator is asked for.


def _connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    with LAZY_IMPORTS:
        from controlplane.engines.stepfunctions.client import create_client

    return create_client(target, environment, repo=repo)


def _runner() -> Runner:
    with LAZY_IMPORTS:
        from controlplane.engines.stepfunctions.runner import StepFunctionsRunner

    return StepFunctionsRunner()


def _emulator() -> Emulator:
    with LAZY_IMPORTS:
        from controlplane.engines.stepfunctions.emulator import StepFunctionsEmulator

    return StepFunctionsEmulator()


def _compat_activity(activity: str) -> dict[str, Any]:
    return {"resource": f"arn:aws:lambda:us-east-1:000000000000:function:{activity}"}


ENGINE = Engine(
    name="stepfunctions",
    title="Step Functions",
    translator=StepFunctionsTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=_connect,
    compat=CompatSample(
        target={"region": "us-east-1", "roleArn": "arn:aws:iam::000000000000:role/x"},
        activity=_compat_activity,
    ),
    # boto3 clients are thread-safe, and building one set costs about a second
    thread_safe_client=True,
    names=engine_names,
    runner=_runner,
    emulator=_emulator,
)
