"""Temporal: cpl's interpreter payload, namespaces, schedules (translate, client, runner,
dev server, runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controlplane.engines.base import LAZY_IMPORTS, CompatSample, Engine, Limits
from controlplane.engines.emulation import Emulator
from controlplane.engines.live import EngineClient
from controlplane.engines.runs import Runner, Worker
from controlplane.engines.temporal.namespaces import share_namespaces
from controlplane.engines.temporal.translate import (
    PAYLOAD_LIMIT_BYTES,
    TemporalTranslator,
    engine_names,
)
from controlplane.spec.environment import Environment, Target

# The engine's SDK (temporalio's client and worker) loads only when a client, runner, worker
# or emulator is asked for.


def _connect(target: Target, environment: Environment, *, repo: Path | None = None) -> EngineClient:
    with LAZY_IMPORTS:
        from controlplane.engines.temporal.client import create_client

    return create_client(target, environment, repo=repo)


def _runner() -> Runner:
    with LAZY_IMPORTS:
        from controlplane.engines.temporal.runner import TemporalRunner

    return TemporalRunner()


def _worker() -> Worker:
    with LAZY_IMPORTS:
        from controlplane.engines.temporal.runner import serve_worker

    return serve_worker


def _emulator() -> Emulator:
    with LAZY_IMPORTS:
        from controlplane.engines.temporal.devserver import TemporalEmulator

    return TemporalEmulator()


def _compat_activity(activity: str) -> dict[str, Any]:
    return {"activity": activity, "taskQueue": "compat"}


ENGINE = Engine(
    name="temporal",
    names=engine_names,
    title="Temporal",
    translator=TemporalTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=_connect,
    share=share_namespaces,
    spec_digest_paths=frozenset({"/spec/digest", "/spec/payload", "/schedule/payload"}),
    compat=CompatSample(
        target={"address": "127.0.0.1:7233", "namespace": "compat", "taskQueue": "compat"},
        activity=_compat_activity,
    ),
    # no thread_safe_client: a client drives its own event loop, one per drift worker thread
    runner=_runner,
    worker=_worker,
    emulator=_emulator,
)
