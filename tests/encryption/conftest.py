"""A control repo whose Temporal target encrypts payloads, on the session's Temporal dev
server (a namespace of its own, so `cpl keys verify` reads only these runs) and the session's
moto server (KMS): the interpreter worker as `cpl worker` configures it, and an activity
worker of a user with the public `encryption_converter`.

Keys: `orders` is the KMS alias `alias/cpl-test-orders`, `payments` the local ring
`local:payments` of the repo. Workflows: retail/sealed (orders; its activity runs on the
user's worker), retail/ringed (payments), retail/approved (payments, waits for an approval
signal first), retail/open (no encryption).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.worker import Worker

from controlplane.cli import run as cpl_main
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.encryption import encryption_converter, target_converter
from controlplane.engines.temporal.keyring import KeyRef, LocalKeyring
from controlplane.engines.temporal.runner import connect
from controlplane.engines.temporal.runtime.worker import build_worker
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_workflows
from controlplane.spec.model import Workflow

T = TypeVar("T")

NAMESPACE = "cpl-keys"
INTERPRETER_QUEUE = "cpl-keys-interpreter"
USER_QUEUE = "keys-user-activities"
ALIAS = "alias/cpl-test-orders"
ENV = "enc"


@activity.defn(name="keys.stamp")
async def stamp(argument: dict[str, Any]) -> dict[str, str]:
    """A receipt derived from the secret: a result whose plaintext the test knows."""
    return {"receipt": f"RECEIPT-{argument['secret']}"}


@activity.defn(name="keys.local-stamp")
async def local_stamp(argument: dict[str, Any]) -> dict[str, str]:
    return {"receipt": f"RECEIPT-{argument['secret']}"}


def environment_document(endpoint: str, address: str, **changes: Any) -> dict[str, Any]:
    keys = changes.pop("keys", None) or {
        "orders": {"temporal": ALIAS},
        "payments": {"temporal": "local:payments"},
    }
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": changes.pop("name", ENV)},
        "spec": {
            "tier": changes.pop("tier", "development"),
            "targets": [
                {
                    "name": "temporal-keys",
                    "engine": "temporal",
                    "address": address,
                    "namespace": NAMESPACE,
                    "taskQueue": INTERPRETER_QUEUE,
                }
            ],
            "bindings": {
                "activities": {
                    "keys.stamp": {"temporal": {"activity": "keys.stamp", "taskQueue": USER_QUEUE}},
                    "keys.local": {
                        "temporal": {"activity": "keys.local-stamp", "taskQueue": INTERPRETER_QUEUE}
                    },
                },
                "keys": keys,
            },
            "aws": {"region": "us-east-1", "endpoint": endpoint},
        },
    }


def workflow_document(name: str, activity_name: str, key: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "timeout": "1m",
        "start": "stamp",
        "steps": [
            {
                "name": "stamp",
                "type": "task",
                "activity": activity_name,
                "timeout": "20s",
                "retry": {"maxAttempts": 1},
                "parameters": {"secret": "$.secret"},
                "resultPath": "$.stamped",
                "end": True,
            }
        ],
    }
    if key is not None:
        spec["security"] = {"encryption": {"key": key}}
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Workflow",
        "metadata": {"name": name, "tenant": "retail", "version": "1.0.0", "owner": "team-cpl"},
        "spec": spec,
    }


def write_repo(repo: Path, environment: dict[str, Any]) -> None:
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    (repo / "workflows" / "retail").mkdir(parents=True, exist_ok=True)
    name = environment["metadata"]["name"]
    (repo / "environments" / f"{name}.yaml").write_text(json.dumps(environment, indent=2))
    for name, activity_name, key in (
        ("sealed", "keys.stamp", "orders"),
        ("ringed", "keys.local", "payments"),
        ("open", "keys.local", None),
    ):
        document = workflow_document(name, activity_name, key)
        (repo / "workflows" / "retail" / f"{name}.yaml").write_text(json.dumps(document))
    approved = workflow_document("approved", "keys.local", "payments")
    approved["spec"]["start"] = "approve"
    approved["spec"]["steps"].insert(
        0,
        {
            "name": "approve",
            "type": "approval",
            "signal": "go-ahead",
            "timeout": "1m",
            "approvers": {"roles": ["lead"]},
            "next": "stamp",
        },
    )
    (repo / "workflows" / "retail" / "approved.yaml").write_text(json.dumps(approved))


def cpl(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    """Run `cpl ARGS --repo REPO` in this process; exit code, stdout, stderr."""
    capsys.readouterr()
    code = cpl_main([*args, "--repo", str(repo)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def kms(endpoint: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Keys:
    """The repo, its environment and workflows, and the workers' loop."""

    def __init__(
        self, repo: Path, server: DevServer, endpoint: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.repo = repo
        self.server = server
        self.endpoint = endpoint
        self.loop = loop
        self.environment: Environment = load_environment(repo, ENV)
        self.target = self.environment.target("temporal-keys")
        self.workflows: dict[str, Workflow] = {
            loaded.model.key: loaded.model for loaded in load_workflows(repo).workflows
        }
        self.kms = kms(endpoint)

    def on_loop(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def ring(self) -> LocalKeyring:
        return LocalKeyring(KeyRef("local", "payments"), self.repo / ".cpl" / "keys" / ENV)

    def history(self, workflow_id: str) -> list[Any]:
        """The raw history events of a run, read by a client without any codec."""

        async def read() -> list[Any]:
            client = await Client.connect(self.server.address, namespace=NAMESPACE)
            handle = client.get_workflow_handle(workflow_id)
            return [event async for event in handle.fetch_history_events()]

        return self.on_loop(read())


async def _register(server: DevServer) -> None:
    client = await server.connect()
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=NAMESPACE, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    # a new namespace reaches the frontend's cache after a moment: wait until it answers
    deadline = time.monotonic() + 30
    while True:
        try:
            scoped = await Client.connect(server.address, namespace=NAMESPACE)
            await scoped.count_workflows()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def keys(
    temporal_server: DevServer, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Keys]:
    repo = tmp_path_factory.mktemp("keys-repo")
    write_repo(repo, environment_document(moto_endpoint, temporal_server.address))
    client = kms(moto_endpoint)
    made = client.create_key(Description="cpl tests: orders")["KeyMetadata"]
    client.create_alias(AliasName=ALIAS, TargetKeyId=made["KeyId"])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="keys-workers", daemon=True)
    thread.start()
    state = Keys(repo, temporal_server, moto_endpoint, loop)
    state.ring().rotate()  # the ring's first version
    stopped = asyncio.Event()

    async def serve() -> list[asyncio.Task[None]]:
        await _register(temporal_server)
        converter = target_converter(
            state.environment, state.target, tuple(state.workflows.values()), repo=repo
        )
        cpl_client = await connect(temporal_server.address, NAMESPACE, data_converter=converter)
        # an activity worker of a user: the public converter, for the sealed workflow's runs
        user_client = await Client.connect(
            temporal_server.address,
            namespace=NAMESPACE,
            data_converter=encryption_converter(
                ALIAS, endpoint=moto_endpoint, workflows=["retail-sealed"]
            ),
        )
        workers = [
            build_worker(cpl_client, INTERPRETER_QUEUE, activities=[local_stamp]),
            Worker(user_client, task_queue=USER_QUEUE, activities=[stamp]),
        ]

        async def run_until_stopped(worker: Worker) -> None:
            async with worker:
                await stopped.wait()

        return [loop.create_task(run_until_stopped(worker)) for worker in workers]

    tasks = asyncio.run_coroutine_threadsafe(serve(), loop).result(90)
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stopped.set)
        gather = asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        asyncio.run_coroutine_threadsafe(gather, loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
