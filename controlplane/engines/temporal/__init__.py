"""Temporal: cpl's interpreter payload, namespaces, schedules (translate, client, runner,
dev server, runtime)."""

from __future__ import annotations

from functools import partial
from typing import Any

from controlplane.engines.base import CompatSample, Engine, Limits, lazy, load
from controlplane.engines.temporal.rules import share_temporal, temporal_share_view
from controlplane.engines.temporal.translate import (
    PAYLOAD_LIMIT_BYTES,
    TemporalTranslator,
    engine_names,
)

# `lazy`/`load`: the engine's SDK (temporalio's client and worker) loads only when a client,
# runner, worker or emulator is asked for.


def _compat_activity(activity: str) -> dict[str, Any]:
    return {"activity": activity, "taskQueue": "compat"}


ENGINE = Engine(
    name="temporal",
    names=engine_names,
    title="Temporal",
    translator=TemporalTranslator(),
    limits=Limits(payload_bytes=PAYLOAD_LIMIT_BYTES),
    connect=lazy("controlplane.engines.temporal.client:create_client"),
    share=share_temporal,
    share_view=temporal_share_view,
    spec_digest_paths=frozenset({"/spec/digest", "/spec/payload", "/schedule/payload"}),
    compat=CompatSample(
        target={
            "address": "127.0.0.1:7233",
            "namespace": "compat",
            "taskQueue": "compat",
            "prometheus": {"rulesDir": "compat"},  # slo and alerts as delivered rules
        },
        activity=_compat_activity,
    ),
    # no thread_safe_client: a client drives its own event loop, one per drift worker thread
    runner=lazy("controlplane.engines.temporal.runner:TemporalRunner"),
    worker=partial(load, "controlplane.engines.temporal.runner:serve_worker"),
    emulator=lazy("controlplane.engines.temporal.devserver:TemporalEmulator"),
    proven_on="the Temporal dev server",
)
