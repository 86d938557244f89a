"""Benchmark of `detect_drift` over 500 Step Functions state machines and 500 Temporal schedules.

    python -m bench.drift [--count 500] [--concurrency 8,16,32]

Starts a fresh moto server and a fresh Temporal dev server (in memory), writes a control repo
with `count` tenants each holding two example workflows (retail/order-fulfillment on Step
Functions, finance/month-end-close on Temporal: a state machine + log group per tenant, a
schedule + published version per tenant), creates every resource with the engine modules
(not timed), then times `detect_drift` — every read, diff, the unmanaged listing and the
policy evaluation of every live state — once per concurrency level. A few resources are
changed by hand first so the diff path is exercised. Target: under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from controlplane.collector import tune_for_batch
from controlplane.drift import detect_drift, load_ignore
from controlplane.drift.compliance import LiveCompliance
from controlplane.engines import EngineClient, ResourceError, engine_client
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.engines.stepfunctions.emulator import start_moto_server
from controlplane.engines.temporal.devserver import start_dev_server
from controlplane.engines.translator import Artifact
from controlplane.pipeline import render_all
from controlplane.policy.engine import open_engine
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_workflows

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
WORKFLOWS = (("retail", "order-fulfillment"), ("finance", "month-end-close"))


def write_repo(root: Path, count: int, moto: str, temporal: str) -> None:
    env = (ROOT / "environments" / "local.yaml").read_text()
    env = env.replace("metadata: {name: local}", "metadata: {name: bench}")
    env = env.replace("http://127.0.0.1:4566", moto).replace("127.0.0.1:7233", temporal)
    env = env.replace("namespace: cpl-local", "namespace: cpl-bench")
    lines = env.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "name: argo-local" in line)
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("      "))
    (root / "environments").mkdir(parents=True)
    (root / "environments" / "bench.yaml").write_text("".join(lines[:start] + lines[end:]))
    for index in range(count):
        tenant = f"t{index:04d}"
        for old, name in WORKFLOWS:
            text = (ROOT / "workflows" / old / f"{name}.yaml").read_text()
            path = root / "workflows" / tenant / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace(f"tenant: {old}", f"tenant: {tenant}", 1))


def create_all(environment: Environment, artifacts: list[Artifact], workers: int) -> float:
    """Create every resource (per-thread engine clients); the seconds it took."""
    local = threading.local()
    made: list[EngineClient] = []

    def create(artifact: Artifact) -> None:
        clients = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {}
        if artifact.target not in clients:
            clients[artifact.target] = engine_client(
                environment.target(artifact.target), environment
            )
            made.append(clients[artifact.target])
        for attempt in range(10):  # the dev server rate-limits namespace updates
            try:
                clients[artifact.target].create(artifact)
                return
            except ResourceError as error:
                if not error.transient or attempt == 9:
                    raise
                time.sleep(0.5 * (attempt + 1))

    started = time.monotonic()
    # one Temporal create first: it registers the namespace (and waits until it is usable)
    first = next(a for a in artifacts if a.engine == "temporal")
    create(first)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(create, [a for a in artifacts if a is not first]))
    for client in made:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", default="8,16,32")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    tune_for_batch()  # as `cpl drift` does (controlplane.cli.main)

    moto = start_moto_server()
    temporal = asyncio.run(start_dev_server())
    directory = Path(tempfile.mkdtemp(prefix="cpl-bench-drift-"))
    try:
        write_repo(directory, args.count, moto.url, temporal.address)
        environment = load_environment(directory, "bench")
        loaded = load_workflows(directory)
        desired = render_all([w.model for w in loaded.workflows], environment)
        counts = {
            e: sum(1 for a in desired if a.engine == e) for e in ("stepfunctions", "temporal")
        }
        print(f"setup: {counts['stepfunctions']} state machines, {counts['temporal']} schedules")
        seconds = create_all(environment, desired, workers=16)
        print(f"setup: created in {seconds:.1f}s (not timed)")
        _edit_some(environment, desired)
        policy = open_engine(environment, directory)
        try:
            for level in levels:
                started = time.monotonic()
                report = detect_drift(
                    environment,
                    desired,
                    repo=directory,
                    ignore=load_ignore(directory),
                    concurrency=level,
                    assess=LiveCompliance(loaded, environment, policy, desired),
                )
                wall = time.monotonic() - started
                s = report.summary
                per_target = ", ".join(f"{t.target} {t.seconds:.1f}s" for t in report.targets)
                print(
                    f"concurrency {level:>3}: {wall:6.1f}s wall for {len(report.items)} items "
                    f"({s['in_sync']} in sync, {s['modified']} modified, {s['missing']} missing, "
                    f"{s['unmanaged']} unmanaged, {s['noncompliant']} non-compliant, "
                    f"{len(report.failures)} failed reads; busy per target: {per_target}) "
                    f"{'OK' if wall < TARGET_SECONDS else 'OVER TARGET'}"
                )
        finally:
            policy.close()
    finally:
        temporal.stop()
        moto.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def _edit_some(environment: Environment, desired: list[Artifact]) -> None:
    """Change three state machines by hand (one so its live state is non-compliant)."""
    sfn = aws_client(environment.target("sfn-local"), "stepfunctions")
    machines = [a for a in desired if a.engine == "stepfunctions"][:3]
    for index, artifact in enumerate(machines):
        arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"].rsplit(":", 1)[0]
        arn = f"{arn}:{artifact.resource}"
        described: dict[str, Any] = sfn.describe_state_machine(stateMachineArn=arn)
        if index == 0:
            logging = {**described["loggingConfiguration"], "includeExecutionData": True}
            sfn.update_state_machine(stateMachineArn=arn, loggingConfiguration=logging)
        else:
            definition = json.loads(described["definition"])
            definition["Comment"] = "edited by hand"
            sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))


if __name__ == "__main__":
    sys.exit(main())
