"""Demo activity worker: for every Temporal activity binding of an environment, an activity
that echoes its input (plus the few fields later steps read, see RESULTS), on the binding's
task queue; FAILURES make some inputs fail, as a real system would refuse them. Stands in for
the teams' real workers in `scripts/demo.sh`; stops on SIGTERM/SIGINT.

    python scripts/demo_activities.py [--repo DIR] [--env local]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from controlplane.engines.temporal.encryption import target_converter
from controlplane.spec.load import load_environment, load_workflows

# Fields a real activity would return and a later step of the demo workflows reads.
RESULTS: dict[str, dict[str, Any]] = {
    "PatientsRegister": {"patientId": "pat-0001", "status": "registered"},
}


def _duplicate_patient(payload: Any) -> None:
    """The master patient index already holds this patient (a registration whose MRN was
    not merged yet): the run fails, and its dead letter waits for a corrected input."""
    patient = payload.get("patient") if isinstance(payload, dict) else None
    if isinstance(patient, dict) and str(patient.get("mrn", "")).startswith("dup-"):
        raise ApplicationError("patient already registered", type="DuplicatePatient")


FAILURES = {"PatientsRegister": _duplicate_patient}


def _echo(name: str) -> Any:
    @activity.defn(name=name)
    async def echo(payload: Any) -> Any:
        FAILURES.get(name, lambda _: None)(payload)
        if isinstance(payload, dict):
            return {**payload, **RESULTS.get(name, {})}
        return payload

    return echo


async def main(repo: Path, env_name: str) -> None:
    environment = load_environment(repo, env_name)
    target = next(t for t in environment.spec.targets if t.engine == "temporal")
    queues: dict[str, list[str]] = {}
    for binding in environment.spec.bindings.activities.values():
        if binding.temporal:
            queue = binding.temporal["taskQueue"]
            queues.setdefault(queue, []).append(binding.temporal["activity"])
    # the worker's converter: activities read the payloads of encrypted runs too
    workflows = [loaded.model for loaded in load_workflows(repo).workflows]
    client = await Client.connect(
        target.address or "",
        namespace=target.namespace or "default",
        data_converter=target_converter(environment, target, workflows, repo=repo),
    )
    workers = [
        Worker(client, task_queue=queue, activities=[_echo(n) for n in sorted(set(names))])
        for queue, names in sorted(queues.items())
    ]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"demo activities: {sum(len(n) for n in queues.values())} on {len(queues)} queues")
    async with _WorkerGroup(workers):
        await stop.wait()


class _WorkerGroup:
    """Several workers as one async context."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def __aenter__(self) -> None:
        for worker in self.workers:
            await worker.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        for worker in reversed(self.workers):
            await worker.__aexit__(None, None, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--env", default="local")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.repo, arguments.env))
