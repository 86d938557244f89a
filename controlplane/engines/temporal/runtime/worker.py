"""The worker behind `cpl worker`: the interpreter workflow plus the activities cpl hosts.

User activities run on the task queues of their bindings, in the users' own workers; this
worker only needs the interpreter, the circuit-breaker workflow and the activities cpl hosts
(`cpl.dead_letter`, the breaker and fault activities), all on its own task queue.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from controlplane.engines.fanout import DriftHost
from controlplane.engines.temporal.drift.activities import DriftActivities
from controlplane.engines.temporal.drift.workflow import CplDriftWorkflow
from controlplane.engines.temporal.runtime.activities import AuditRecorder, DeadLetterHandOff
from controlplane.engines.temporal.runtime.breaker import CircuitBreakerWorkflow
from controlplane.engines.temporal.runtime.hosted import HOSTED_ACTIVITIES
from controlplane.engines.temporal.runtime.interpreter import CplInterpreter

DEFAULT_TASK_QUEUE = "cpl-interpreter"


def build_worker(
    client: Client,
    task_queue: str = DEFAULT_TASK_QUEUE,
    dead_letters: DeadLetterHandOff | Path | str | None = None,
    activities: Sequence[Callable[..., Any]] = (),
    drift: DriftHost | None = None,
    audit: AuditRecorder | None = None,
    **options: Any,
) -> Worker:
    """A Worker running the interpreter and cpl's hosted activities on `task_queue`.

    `dead_letters` hosts `cpl.dead_letter` (a path: a spool file alone, for tests that run
    without an environment); `activities` adds more activities to the same worker (tests,
    single-process demos); `drift` hosts the shards of `cpl drift --on temporal` (the drift
    workflow runs on every worker, its activities where a host is given); `options` are
    passed to `temporalio.worker.Worker`. `audit` records the interpreter's signal events
    (without one they are logged).
    """
    audit = audit or AuditRecorder()
    hosted = DriftActivities(drift).all() if drift is not None else []
    if not isinstance(dead_letters, DeadLetterHandOff):
        dead_letters = DeadLetterHandOff(spool=dead_letters)
    options.setdefault("workflow_runner", sandbox_runner())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CplInterpreter, CircuitBreakerWorkflow, CplDriftWorkflow],
        activities=[
            dead_letters.hand_off,
            audit.record,
            *HOSTED_ACTIVITIES,
            *hosted,
            *activities,
        ],
        **options,
    )


RUNTIME_PACKAGE = __name__.rsplit(".", 1)[0]


def sandbox_runner() -> SandboxedWorkflowRunner:
    """Temporal's sandbox, re-importing only the interpreter's own runtime package per run.

    Importing the runtime imports its parent packages, and with them the engine registry and
    every translator; none of that runs inside a workflow. Passing those modules through (the
    sandbox matches passthrough names by prefix, so only modules off the runtime's own line
    of packages are listed) keeps the interpreter itself sandboxed and a run's start cheap.
    """
    parents = {RUNTIME_PACKAGE.rsplit(".", depth)[0] for depth in range(RUNTIME_PACKAGE.count("."))}
    passthrough = [
        name
        for name in list(sys.modules)
        if name.startswith("controlplane.")
        and name not in parents
        and not name.startswith(RUNTIME_PACKAGE)
    ]
    # the token library's cryptography is a native extension: it loads once, outside the
    # sandbox (signals.py verifies approval and admin signals with it)
    passthrough += ["joserfc", "cryptography"]
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*passthrough)
    return SandboxedWorkflowRunner(restrictions=restrictions)
