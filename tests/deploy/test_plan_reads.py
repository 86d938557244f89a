"""The planner reads targets concurrently, keeps its results in plan order and names every
resource it could not read.

The clients are stand-ins that take a fixed time per read (a real engine cannot be made slow
on demand, resource by resource); the frozen-engine tests run the same code on real engines.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from controlplane.deploy.plan import plan
from controlplane.deploy.state import State
from controlplane.engines import ResourceError
from controlplane.engines.translator import Artifact
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment

READ_SECONDS = 0.3

ENVIRONMENT = Environment.model_validate(
    {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": "dev"},
        "spec": {
            "tier": "development",
            "targets": [
                {"name": "sfn", "engine": "stepfunctions", "region": "us-east-1"},
                {
                    "name": "tmp",
                    "engine": "temporal",
                    "address": "127.0.0.1:1",
                    "namespace": "n",
                    "taskQueue": "q",
                },
            ],
        },
    }
)


class SlowClient:
    """Reads take READ_SECONDS; records the order of reads and how many overlapped."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.order: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def read(self, artifact: Artifact) -> Any:
        with self.lock:
            self.order.append(artifact.resource)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(READ_SECONDS)
        with self.lock:
            self.in_flight -= 1
        if artifact.resource in self.failing:
            raise ResourceError(
                f"{artifact.resource}: no answer",
                engine=artifact.engine,
                target=artifact.target,
                resource=artifact.resource,
                transient=True,
            )
        return None


def artifacts(target: str, engine: str, count: int) -> list[Artifact]:
    return [
        Artifact(f"acme/{target}-{n}", "1.0.0", target, engine, f"{target}-{n}", {}, ())
        for n in range(count)
    ]


def test_targets_are_read_concurrently_in_plan_order() -> None:
    sfn, temporal = SlowClient(), SlowClient()
    desired = artifacts("tmp", "temporal", 3) + artifacts("sfn", "stepfunctions", 4)
    began = time.monotonic()
    made = plan(
        ENVIRONMENT,
        list(reversed(desired)),
        State.new("dev"),
        clients={"sfn": sfn, "tmp": temporal},  # type: ignore[dict-item]
    )
    seconds = time.monotonic() - began
    # one after another it takes 7 reads; the Temporal target's 3 bound it now
    assert seconds < 5 * READ_SECONDS, seconds
    assert sfn.most_in_flight > 1
    # a Temporal client drives its own event loop: one read at a time, in plan order
    assert temporal.most_in_flight == 1
    assert temporal.order == ["tmp-0", "tmp-1", "tmp-2"]
    assert [c.resource for c in made.changes] == [
        *(f"sfn-{n}" for n in range(4)),
        *(f"tmp-{n}" for n in range(3)),
    ]
    assert {c.action for c in made.changes} == {"create"}


def test_every_unreadable_resource_is_named_in_plan_order() -> None:
    sfn, temporal = SlowClient({"sfn-3", "sfn-1"}), SlowClient({"tmp-0"})
    desired = artifacts("sfn", "stepfunctions", 4) + artifacts("tmp", "temporal", 2)
    with pytest.raises(EngineError) as raised:
        plan(
            ENVIRONMENT,
            desired,
            State.new("dev"),
            clients={"sfn": sfn, "tmp": temporal},  # type: ignore[dict-item]
        )
    message = raised.value.message
    named = [message.index(f"{r}: no answer") for r in ("sfn-1", "sfn-3", "tmp-0")]
    assert named == sorted(named)
    assert "sfn-0" not in message and "tmp-1" not in message
