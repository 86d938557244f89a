"""The outages of a fault plan (`cpl run --inject FILE`): `stop: engine` stops the target's
`cpl local` server once step `after` has started, for `for`, then starts it again, while
`cpl run --wait` watches the run (docs/runtime.md, "Fault injection").

Only what cpl itself runs can be stopped truthfully: the engine's local server (its state is
kept, so runs resume). Workers are the users' processes (and `cpl worker` runs in its own),
so `stop: worker` is refused with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from controlplane.engines.faults import FaultPlan, Outage
from controlplane.engines.runs import Runner
from controlplane.errors import ConfigError
from controlplane.local import local_up, running_target_server, stop_target_server
from controlplane.spec.environment import Environment, Target

POLL_SECONDS = 0.2
"""How often the run's trace is read while waiting for an outage's step."""


def check_outages(
    plan: FaultPlan, source: str, repo: Path, environment: Environment, target: Target
) -> None:
    """ConfigError when an outage cannot be carried out: `stop: worker`, or no running `cpl
    local` server for the target."""
    for index, outage in enumerate(plan.outages):
        if outage.stop == "worker":
            raise ConfigError(
                f"{source}: outages/{index}/stop: `worker` cannot be injected: the workers "
                "that run a target's activities (and `cpl worker`) are processes cpl does not "
                "own; stop one yourself to watch the engine retry and resume the run"
            )
        running_target_server(repo, environment, target.name)


def carry_out_outages(
    plan: FaultPlan,
    runner: Runner,
    target: Target,
    repo: Path,
    environment: Environment,
    run_id: str,
    deadline: float,
    announce: Callable[[str], None],
) -> None:
    """Each outage in turn once its step has started (or not at all if the run ends before,
    or `deadline`, a time.monotonic() value, passes)."""

    for outage in plan.outages:
        if not _started(outage, runner, target, run_id, deadline):
            announce(f"outage after {outage.after}: the step did not start; nothing stopped")
            continue
        service = stop_target_server(repo, environment, target.name)
        announce(f"outage: stopped {service.describe()} for {outage.for_} after {outage.after}")
        time.sleep(outage.for_.seconds)
        local_up(repo, environment)
        announce(f"outage over: {service.describe()} is running again")


def _started(outage: Outage, runner: Runner, target: Target, run_id: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        outcome = runner.outcome(target, run_id, POLL_SECONDS)
        if outage.after in outcome["trace"]:
            return True
        if outcome["status"] != "running":
            return False
    return False
