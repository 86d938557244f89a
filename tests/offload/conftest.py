"""An environment whose Temporal target offloads payloads to a bucket on the session's moto
server, the interpreter worker with cpl's codec, and a user activity worker with the public
`claim_check_converter`, all on the session's Temporal dev server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import boto3
import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from controlplane.engines.temporal.codec import claim_check_converter, target_converter
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runner import connect
from controlplane.engines.temporal.runtime.worker import build_worker
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow

T = TypeVar("T")

BUCKET = "cpl-offload-tests"
PREFIX = "runs"
INTERPRETER_QUEUE = "cpl-offload-interpreter"
ACTIVITY_QUEUE = "offload-activities"
PLAIN_QUEUE = "plain-activities"
MIB = 1024 * 1024


@activity.defn(name="offload.grow")
async def grow(argument: dict[str, Any]) -> dict[str, Any]:
    """Returns `mib` MiB of text: a result above Temporal's payload limit."""
    return {"blob": "r" * int(float(argument["mib"]) * MIB)}


@activity.defn(name="plain.grow")
async def plain_grow(argument: dict[str, Any]) -> dict[str, Any]:
    """`offload.grow` on a worker without the codec."""
    return {"blob": "p" * int(float(argument["mib"]) * MIB)}


@activity.defn(name="offload.measure")
async def measure(argument: dict[str, Any]) -> dict[str, int]:
    """The sizes of the large values it was handed (so the test sees what arrived)."""
    return {name: len(value) for name, value in sorted(argument.items())}


def environment(
    endpoint: str, address: str, namespace: str, url: str = f"s3://{BUCKET}/{PREFIX}"
) -> Environment:
    return Environment.model_validate(environment_document(endpoint, address, namespace, url))


def environment_document(
    endpoint: str,
    address: str,
    namespace: str,
    url: str = f"s3://{BUCKET}/{PREFIX}",
    task_queue: str = INTERPRETER_QUEUE,
) -> dict[str, Any]:
    """An environment whose one Temporal target offloads to `url` (S3 on `endpoint`)."""
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": "offload"},
        "spec": {
            "tier": "development",
            "targets": [
                {
                    "name": "temporal-offload",
                    "engine": "temporal",
                    "address": address,
                    "namespace": namespace,
                    "taskQueue": task_queue,
                }
            ],
            "bindings": {
                "activities": {
                    "offload.grow": {
                        "temporal": {"activity": "offload.grow", "taskQueue": ACTIVITY_QUEUE}
                    },
                    "offload.measure": {
                        "temporal": {"activity": "offload.measure", "taskQueue": ACTIVITY_QUEUE}
                    },
                    "plain.grow": {
                        "temporal": {"activity": "plain.grow", "taskQueue": PLAIN_QUEUE}
                    },
                },
                "stores": {
                    "artifacts": {"url": url},
                    "elsewhere": {"url": f"s3://{BUCKET}-other/x"},
                },
            },
            "aws": {"region": "us-east-1", "endpoint": endpoint},
        },
    }


def workflow(name: str, offload: dict[str, str] | None) -> Workflow:
    return Workflow.model_validate(workflow_document(name, offload))


def workflow_document(name: str, offload: dict[str, str] | None) -> dict[str, Any]:
    """grow (a 2.5 MiB result at $.grown) → measure (sees the input's blob and the result)."""
    spec: dict[str, Any] = {
        "timeout": "2m",
        "start": "grow",
        "steps": [
            {
                "name": "grow",
                "type": "task",
                "activity": "offload.grow",
                "parameters": {"mib": "$.mib"},
                "resultPath": "$.grown",
                "next": "measure",
            },
            {
                "name": "measure",
                "type": "task",
                "activity": "offload.measure",
                "parameters": {"input": "$.blob", "grown": "$.grown.blob"},
                "resultPath": "$.measured",
                "end": True,
            },
        ],
    }
    if offload is not None:
        spec["payload"] = {"offload": offload}
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Workflow",
        "metadata": {"name": name, "tenant": "retail", "version": "1.0.0", "owner": "team-cpl"},
        "spec": spec,
    }


OFFLOADED = workflow("offloaded", {"store": "artifacts", "threshold": "256KiB"})
PLAIN = Workflow.model_validate(
    {
        "apiVersion": "cpl.dev/v1",
        "kind": "Workflow",
        "metadata": {"name": "plain", "tenant": "retail", "version": "1.0.0", "owner": "team-cpl"},
        "spec": {
            "timeout": "1m",
            "start": "grow",
            "payload": {"offload": {"store": "artifacts", "threshold": "256KiB"}},
            "steps": [
                {
                    "name": "grow",
                    "type": "task",
                    "activity": "plain.grow",
                    "timeout": "10s",
                    "retry": {"maxAttempts": 1},
                    "resultPath": "$.grown",
                    "end": True,
                }
            ],
        },
    }
)
INLINE = workflow("inline", None)


def s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Offload:
    """The environment, its S3 bucket and a way to run coroutines on the workers' loop."""

    def __init__(self, env: Environment, bucket: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.environment = env
        self.target = env.target("temporal-offload")
        self.s3 = bucket
        self.loop = loop

    def on_loop(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def claim_checks(self) -> dict[str, int]:
        """key → size of every offloaded payload in the store."""
        answer = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/claim-checks/")
        return {item["Key"]: item["Size"] for item in answer.get("Contents", [])}


@pytest.fixture(scope="session")
def offload(temporal_server: DevServer, moto_endpoint: str) -> Iterator[Offload]:
    """The interpreter worker as `cpl worker` configures it (the target's workflows:
    OFFLOADED and INLINE) and the activities on a worker with `claim_check_converter`."""
    env = environment(moto_endpoint, temporal_server.address, temporal_server.namespace)
    bucket = s3(moto_endpoint)
    bucket.create_bucket(Bucket=BUCKET)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="offload-workers", daemon=True)
    thread.start()
    stopped = asyncio.Event()
    target = env.target("temporal-offload")

    async def serve() -> list[asyncio.Task[None]]:
        cpl_client = await connect(
            temporal_server.address,
            temporal_server.namespace,
            data_converter=target_converter(env, target, (OFFLOADED, INLINE)),
        )
        user_client = await Client.connect(
            temporal_server.address,
            namespace=temporal_server.namespace,
            data_converter=claim_check_converter(
                f"s3://{BUCKET}/{PREFIX}", "256KiB", endpoint=moto_endpoint
            ),
        )
        workers = [
            build_worker(cpl_client, INTERPRETER_QUEUE),
            Worker(user_client, task_queue=ACTIVITY_QUEUE, activities=[grow, measure]),
            # an activity worker of your own that did not install the codec
            Worker(
                await temporal_server.connect(), task_queue=PLAIN_QUEUE, activities=[plain_grow]
            ),
        ]

        async def run_until_stopped(worker: Worker) -> None:
            async with worker:
                await stopped.wait()

        return [loop.create_task(run_until_stopped(worker)) for worker in workers]

    tasks = asyncio.run_coroutine_threadsafe(serve(), loop).result(60)
    try:
        yield Offload(env, bucket, loop)
    finally:
        loop.call_soon_threadsafe(stopped.set)
        gather = asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        asyncio.run_coroutine_threadsafe(gather, loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
