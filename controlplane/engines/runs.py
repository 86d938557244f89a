"""The run contract: start a run of a deployed workflow, wait for how it ends, signal it.

`cpl run` and `cpl signal` reach an engine only through its bundle's `runner` (`base.py`);
`cpl worker` through its `worker`. Both are loaded when a command needs them, so the engine's
SDK is imported only then. An engine cpl starts no runs on has neither, and its bundle's
`run_hint` tells users how to start one by other means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NotRequired, Protocol, TypedDict

from controlplane.engines.faults import FaultPlan
from controlplane.engines.lowering import step_names
from controlplane.spec.check import iter_scopes
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


StepStatus = Literal["succeeded", "failed", "cancelled", "running"]


class StepTiming(TypedDict):
    """One start of a step (the `steps` of `cpl run`): when it started and ended, ISO 8601
    UTC (`ended` null while it runs), and how it ended (`failed` also when a `catch` then
    handled the failure). One record per trace entry, in the order the steps started."""

    name: str
    started: str
    ended: str | None
    status: StepStatus


class RunRecord(TypedDict):
    """A run as an engine lists it (`Runner.runs`): id, how it ended, when it started and
    ended (ISO 8601 UTC) and, where they were read, its step timings (null: not read or not
    known, e.g. a Temporal run the engine ended before the interpreter could report)."""

    runId: str
    status: RunState
    started: str
    ended: str | None
    steps: list[StepTiming] | None


MAX_LISTED_RUNS = 1000
"""The most runs `Runner.runs` returns (a bounded read of an engine's run list)."""


class RunOutcome(TypedDict):
    """Where a run stands, engine-neutral (the `status/output/error/trace` of `cpl run`).

    `error` is `{"error": name, "cause": text}` when the run failed; `trace` the step names in
    the order the run entered them; `steps`, where the engine reports them, when each of
    those entries started and ended; `events`, where the engine reports them, the retry,
    catch, compensation, circuit-breaker and injected-fault paths the run took, in order.
    """

    status: RunState
    output: Any
    error: dict[str, str] | None
    trace: list[str]
    events: NotRequired[list[RunEvent]]
    steps: NotRequired[list[StepTiming]]


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

    def runs(
        self,
        workflow: Workflow,
        target: Target,
        *,
        limit: int,
        since: dt.datetime | None = None,
        timings: int = 0,
    ) -> list[RunRecord]:
        """The finished runs of the workflow on `target` that started at or after `since`,
        newest first, at most `limit` (≤ MAX_LISTED_RUNS); the step timings of the newest
        `timings` of them are read too (the others have `steps` null). Runs cpl did not
        start by `cpl run` (or a replay) may be missing. EngineError when the engine cannot
        be read."""
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


def spec_steps(steps: list[StepTiming], workflow: Workflow) -> list[StepTiming]:
    """`steps` in the spec's terms, like `spec_trace`; a `fail` step that ended is `failed`
    on every engine (Step Functions may run one as a state that hands over to a dead letter
    and exits)."""
    names = step_names(workflow)
    fails = fail_step_names(workflow)
    kept: list[StepTiming] = []
    for step in steps:
        if step["name"] not in names:
            continue
        if step["name"] in fails and step["ended"] is not None:
            step = {**step, "status": "failed"}
        kept.append(step)
    return kept


def spec_trace(trace: list[str], workflow: Workflow) -> list[str]:
    """`trace` in the spec's terms: the states an engine adds around the steps (an input
    check, a circuit breaker's calls, the dead-letter hand-off) are not steps, so a trace
    reads the same on every engine."""
    steps = step_names(workflow)
    return [name for name in trace if name in steps]


def iso_utc(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z` (the times of `steps` and `runs`); a naive
    time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fail_step_names(workflow: Workflow) -> set[str]:
    """The names of the workflow's `fail` steps (all scopes)."""
    return {
        step.name for scope in iter_scopes(workflow) for step in scope.steps if step.type == "fail"
    }
