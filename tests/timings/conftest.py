"""A control repo whose workflows run on both real engines, and the runs the tests read.

`perf/checkout` (with an `slo`) waits `WAIT_SECONDS` in its `settle` step, fails and catches
its `charge` step, and ends in its `rejected` fail step when the input says so. It goes to
two targets of environment `perf`: the session's Temporal dev server (the interpreter and
the `perf-*` activities run in this process, on the target's task queue) and the session's
moto server (the rendered state machine created there, as `cpl apply` would). `perf/idle`
declares an SLO and never runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import git
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from controlplane.cli import run
from controlplane.engines import ENGINES
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runtime.worker import build_worker
from controlplane.spec.load import load_environment, load_workflows

T = TypeVar("T")

TASK_QUEUE = "cpl-perf"
WAIT_SECONDS = 1
TARGETS = {"temporal": "temporal-perf", "stepfunctions": "sfn-perf"}
RUNS = [{"reject": False}, {"reject": False}, {"reject": True}]
"""The runs made on each target, in this order: two succeed, the last one fails."""

CHECKOUT = f"""
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {{name: checkout, tenant: perf, version: 1.0.0, owner: team-perf}}
spec:
  start: reserve
  steps:
    - {{name: reserve, type: task, activity: perf.echo, resultPath: $.reserved, next: settle}}
    - {{name: settle, type: wait, duration: {WAIT_SECONDS}s, next: route}}
    - name: route
      type: choice
      rules: [{{when: {{path: $.reject, eq: true}}, next: rejected}}]
      default: charge
    - name: charge
      type: task
      activity: perf.fail
      parameters:
        QueueUrl: https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue
        MessageBody: charge
      catch: [{{errors: ["*"], next: notify, resultPath: $.failure}}]
      next: done
    - {{name: notify, type: task, activity: perf.echo, resultPath: $.notified, next: done}}
    - {{name: done, type: succeed}}
    - {{name: rejected, type: fail, error: Rejected, cause: the order was rejected}}
  slo:
    completionTime: {{p50: 30s, p95: 1m}}
    successRate: 0.99
"""

FANOUT = f"""
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {{name: fanout, tenant: perf, version: 1.0.0, owner: team-perf}}
spec:
  start: split
  steps:
    - name: split
      type: parallel
      resultPath: $.branches
      branches:
        - start: slow-branch
          steps: [{{name: slow-branch, type: wait, duration: {WAIT_SECONDS}s, end: true}}]
        - start: quick-branch
          steps: [{{name: quick-branch, type: task, activity: perf.echo, end: true}}]
      next: each
    - name: each
      type: map
      items: $.items
      maxConcurrency: 2
      resultPath: $.each
      start: item
      steps: [{{name: item, type: task, activity: perf.echo, end: true}}]
      next: finish
    - {{name: finish, type: succeed}}
"""
"""Parallel branches and map iterations (their steps' records: docs/runtime.md)."""

SIGN_OFF = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: sign-off, tenant: perf, version: 1.0.0, owner: team-perf}
spec:
  start: approve
  steps:
    - {name: approve, type: approval, signal: approve, timeout: 1s, onTimeout: escalate,
       next: done}
    - {name: escalate, type: task, activity: perf.echo, resultPath: $.escalated, end: true}
    - {name: done, type: succeed}
"""
"""An approval nobody answers: its timeout hands over to `escalate` (Temporal target only)."""

IDLE = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: idle, tenant: perf, version: 1.0.0, owner: team-perf}
spec:
  start: only
  steps:
    - {name: only, type: succeed}
  slo:
    successRate: 0.9
"""


def environment_yaml(name: str, address: str, endpoint: str | None) -> str:
    targets = [
        {
            "name": TARGETS["temporal"],
            "engine": "temporal",
            "address": address,
            "namespace": "default",
            "taskQueue": TASK_QUEUE,
        }
    ]
    if endpoint is not None:
        targets.append(
            {
                "name": TARGETS["stepfunctions"],
                "engine": "stepfunctions",
                "region": "us-east-1",
                "endpoint": endpoint,
                "roleArn": "arn:aws:iam::123456789012:role/cpl-sfn",
                "select": {"names": ["checkout", "fanout", "idle"]},
            }
        )
    document = {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": name},
        "spec": {
            "tier": "development",
            "targets": targets,
            "bindings": {
                "activities": {
                    "perf.echo": {
                        "temporal": {"activity": "perf-echo"},
                        "stepfunctions": {
                            "resource": "arn:aws:lambda:us-east-1:123456789012:function:perf-echo"
                        },
                    },
                    "perf.fail": {
                        "temporal": {"activity": "perf-fail"},
                        "stepfunctions": {"resource": "arn:aws:states:::sqs:sendMessage"},
                    },
                }
            },
        },
    }
    return json.dumps(document, indent=2)


@activity.defn(name="perf-echo")
async def perf_echo(argument: Any) -> Any:
    return argument


@activity.defn(name="perf-fail")
async def perf_fail(argument: Any) -> Any:
    raise ApplicationError("the queue does not exist", type="QueueMissing", non_retryable=True)


@pytest.fixture(scope="session")
def perf_repo(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: DevServer, moto_endpoint: str
) -> Path:
    """The control repo (a git repository, as `cpl report` expects one)."""
    root = tmp_path_factory.mktemp("perf-repo")
    (root / "workflows" / "perf").mkdir(parents=True)
    (root / "workflows" / "perf" / "checkout.yaml").write_text(CHECKOUT)
    (root / "workflows" / "perf" / "idle.yaml").write_text(IDLE)
    (root / "workflows" / "perf" / "fanout.yaml").write_text(FANOUT)
    (root / "workflows" / "perf" / "sign-off.yaml").write_text(SIGN_OFF)
    (root / "environments").mkdir()
    address = temporal_server.address
    (root / "environments" / "perf.yaml").write_text(
        environment_yaml("perf", address, moto_endpoint)
    )
    (root / ".gitignore").write_text(".cpl/\n")
    repo = git.Repo.init(root)
    repo.git.add(A=True)
    repo.index.commit("perf control repo")
    return root


@pytest.fixture(scope="session")
def perf_worker(temporal_server: DevServer) -> Iterator[None]:
    """The interpreter and the perf-* activities on TASK_QUEUE, in a background loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="perf-worker", daemon=True)
    thread.start()
    stopped = asyncio.Event()

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)

    async def serve() -> asyncio.Task[None]:
        client = await temporal_server.connect()
        worker = build_worker(client, TASK_QUEUE, activities=[perf_echo, perf_fail])

        async def until_stopped() -> None:
            async with worker:
                await stopped.wait()

        return loop.create_task(until_stopped())

    task = on_loop(serve())
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stopped.set)
        on_loop(asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 20))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(scope="session")
def perf_deployed(perf_repo: Path, moto_endpoint: str) -> None:
    """The state machines of perf/checkout and perf/fanout on moto, rendered as `cpl apply`
    renders them."""
    environment = load_environment(perf_repo, "perf")
    target = environment.target(TARGETS["stepfunctions"])
    client = boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for loaded in load_workflows(perf_repo).workflows:
        if loaded.model.key not in ("perf/checkout", "perf/fanout"):
            continue
        artifact = ENGINES["stepfunctions"].translator.render(loaded.model, target, environment)
        client.create_state_machine(
            name=artifact.resource,
            definition=json.dumps(artifact.document["definition"]),
            roleArn=str(target.role_arn),
            type="STANDARD",
        )


def cpl_run(repo: Path, workflow: str, target: str, run_input: Any, out: Path) -> tuple[int, Any]:
    """`cpl run WORKFLOW --wait --format json -o OUT`: exit code and run JSON."""
    code = run(
        [
            "run",
            workflow,
            "--env",
            "perf",
            "--target",
            target,
            "--repo",
            str(repo),
            "--input",
            json.dumps(run_input),
            "--wait",
            "--timeout",
            "60s",
            "--format",
            "json",
            "-o",
            str(out),
        ]
    )
    return code, json.loads(out.read_text())


@dataclass(frozen=True)
class Runs:
    """The run JSON of `cpl run --wait` for every run of RUNS, per engine."""

    reports: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def perf_runs(
    perf_repo: Path,
    perf_worker: None,
    perf_deployed: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    """Every run of RUNS on both targets, made with `cpl run --wait --format json -o FILE`."""
    out = tmp_path_factory.mktemp("perf-runs")
    reports: dict[str, list[dict[str, Any]]] = {}
    for engine, target in TARGETS.items():
        for index, run_input in enumerate(RUNS):
            path = out / f"{engine}-{index}.json"
            code, report = cpl_run(perf_repo, "perf/checkout", target, run_input, path)
            assert code == (1 if run_input["reject"] else 0), report
            reports.setdefault(engine, []).append(report)
    return Runs(reports)
