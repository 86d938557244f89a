"""The worker behind `cpl worker`: the interpreter workflow plus the activities cpl hosts.

User activities run on the task queues of their bindings, in the users' own workers; this
worker only needs the interpreter and `cpl.dead_letter` (scheduled on its own task queue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from controlplane.runtime.temporal.activities import DeadLetterRecorder
from controlplane.runtime.temporal.interpreter import CplInterpreter

DEFAULT_TASK_QUEUE = "cpl-interpreter"


def build_worker(
    client: Client,
    task_queue: str = DEFAULT_TASK_QUEUE,
    dead_letter_path: Path | str | None = None,
    activities: Sequence[Callable[..., Any]] = (),
    **options: Any,
) -> Worker:
    """A Worker running the interpreter and cpl's hosted activities on `task_queue`.

    `activities` adds more activities to the same worker (tests, single-process demos);
    `options` are passed to `temporalio.worker.Worker`.
    """
    recorder = DeadLetterRecorder(dead_letter_path)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CplInterpreter],
        activities=[recorder.record, *activities],
        **options,
    )


async def run_worker(
    client: Client, task_queue: str = DEFAULT_TASK_QUEUE, dead_letter_path: Path | str | None = None
) -> None:
    """Run the interpreter worker until cancelled (Ctrl-C in `cpl worker`)."""
    worker = build_worker(client, task_queue, dead_letter_path)
    await worker.run()
