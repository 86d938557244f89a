"""The run contract: start a run of a deployed workflow, wait for how it ends, signal it.

`cpl run` and `cpl signal` reach an engine only through its bundle's `runner` (`base.py`);
`cpl worker` through its `worker`. Both are loaded when a command needs them, so the engine's
SDK is imported only then. An engine cpl starts no runs on has neither, and its bundle's
`run_hint` tells users how to start one by other means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NotRequired, Protocol, TypedDict

from controlplane.engines.faults import FaultPlan
from controlplane.engines.lowering import step_names
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

if TYPE_CHECKING:
    from pathlib import Path

    from controlplane.deadletters.outbox import Outbox
    from controlplane.engines.fanout import DriftHost

RunState = Literal["running", "succeeded", "failed", "cancelled"]

EventKind = Literal["fault", "attempt-failed", "retry", "caught", "compensated", "circuit-open"]


class RunEvent(TypedDict):
    """A path a run took that its trace does not show: an injected `fault`, an
    `attempt-failed`, a `retry` (attempt: the one about to start), a failure `caught`, a step
    `compensated`, a call refused by an open circuit (`circuit-open`). `attempt` (1-based)
    and `error` (the error name) are null where they do not apply."""

    step: str
    kind: EventKind
    attempt: int | None
    error: str | None


class RunOutcome(TypedDict):
    """Where a run stands, engine-neutral (the `status/output/error/trace` of `cpl run`).

    `error` is `{"error": name, "cause": text}` when the run failed; `trace` the step names in
    the order the run entered them; `events`, where the engine reports them, the retry,
    catch, compensation, circuit-breaker and injected-fault paths the run took, in order.
    """

    status: RunState
    output: Any
    error: dict[str, str] | None
    trace: list[str]
    events: NotRequired[list[RunEvent]]


RUNNING: RunOutcome = {"status": "running", "output": None, "error": None, "trace": []}
"""The outcome of a run that was started and not waited for."""


class Runner(Protocol):
    """Runs of deployed workflows on one engine (errors are EngineError naming the target).

    The bundle's `runner(environment)` makes one for the environment the runs belong to
    (Temporal clients resolve offloaded payloads in its stores)."""

    signals: bool
    """Whether runs take signals (`cpl signal`: approvals, pause, resume, skip)."""

    def start(
        self,
        workflow: Workflow,
        target: Target,
        environment: Environment,
        run_input: Any,
        *,
        faults: FaultPlan | None = None,
    ) -> str:
        """Start a run of the workflow as deployed to `target` with `run_input`; its run id.

        With `faults` (`cpl run --inject`), the run carries out the fault plan; a runner that
        cannot inject a plan, or part of it, raises EngineError saying why.
        """
        ...

    def outcome(self, target: Target, run_id: str, timeout: float) -> RunOutcome:
        """Wait up to `timeout` seconds for the run to end; how it stands then (a run still
        open is `running`, with its trace so far)."""
        ...

    def signal(self, target: Target, run_id: str, name: str, args: list[Any]) -> None:
        """Send signal `name` with `args` to a running run (EngineError when no such run runs)."""
        ...


class Worker(Protocol):
    """cpl's side of an engine's runs, where cpl provides one (Temporal: the interpreter)."""

    def __call__(
        self,
        target: Target,
        *,
        dead_letters: Outbox | None,
        announce: Callable[[str], None],
        environment: Environment | None = None,
        workflows: tuple[Workflow, ...] = (),
        drift: DriftHost | None = None,
        repo: Path | None = None,
        metrics: str | None = None,
        audit: Callable[[str, str | None, dict[str, Any], str | None], Any] | None = None,
    ) -> None:
        """Serve the target until SIGINT or SIGTERM, then let running work finish and return.

        `announce` receives one line once serving (and one when stopping); `dead_letters`
        hands dead letters to the environment's queues (`controlplane.deadletters`).
        `environment` and the repo's `workflows` configure payload offload (Temporal's codec);
        `drift` computes the shards of a fanned-out drift run (`engines/fanout.py`); `repo`
        holds the local key rings of payload encryption; `metrics` (`host:port`) serves the
        worker's Prometheus metrics there; `audit(type, subject, data, classification)`
        records the runtime's access events (signals accepted or refused) in the
        environment's audit trail.
        """
        ...


def spec_trace(trace: list[str], workflow: Workflow) -> list[str]:
    """`trace` in the spec's terms: the states an engine adds around the steps (an input
    check, a circuit breaker's calls, the dead-letter hand-off) are not steps, so a trace
    reads the same on every engine."""
    steps = step_names(workflow)
    return [name for name in trace if name in steps]
