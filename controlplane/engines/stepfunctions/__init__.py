"""AWS Step Functions: ASL state machines, their logs and schedules (translate, client, runner,
emulator)."""

from __future__ import annotations

from typing import Any

from controlplane.engines.base import CompatSample, Engine, Limits, lazy
from controlplane.engines.stepfunctions.translate import (
    PAYLOAD_LIMIT_BYTES,
    StepFunctionsTranslator,
    engine_names,
)

# `lazy`: the engine's SDK (boto3) loads only when a client, runner or emulator is asked for.


def _compat_activity(activity: str) -> dict[str, Any]:
    return {"resource": f"arn:aws:lambda:us-east-1:000000000000:function:{activity}"}


ENGINE = Engine(
    name="stepfunctions",
    title="Step Functions",
    translator=StepFunctionsTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=lazy("controlplane.engines.stepfunctions.client:create_client"),
    compat=CompatSample(
        target={"region": "us-east-1", "roleArn": "arn:aws:iam::000000000000:role/x"},
        activity=_compat_activity,
    ),
    # boto3 clients are thread-safe, and building one set costs about a second
    thread_safe_client=True,
    names=engine_names,
    runner=lazy("controlplane.engines.stepfunctions.runner:StepFunctionsRunner"),
    emulator=lazy("controlplane.engines.stepfunctions.emulator:StepFunctionsEmulator"),
    proven_on="the Step Functions emulator (moto)",
)
