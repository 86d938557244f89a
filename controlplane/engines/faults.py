"""Fault injection for runs on the local engines: `cpl run ... --inject FILE` (docs/runtime.md).

A fault plan names steps of the workflow and says what happens to their attempts: fail with
an error, time out, or start late. The engine's runner carries the plan into the run (on
Temporal in the run's payload, read by the interpreter; on Step Functions in a copy of the
state machine made for the run), so the spec's retry, catch, compensation and circuit
breaker paths run exactly as they would for a real failure. A plan is for development
environments only: the runner refuses it on staging and production.

    faults:
      - step: charge            # a task step of the workflow
        attempts: [1, 2]        # 1-based attempt numbers; omitted: every attempt
        error: PaymentDeclined  # the attempt fails with this error (and `cause`)
      - step: reserve
        timeout: true           # the attempt times out (error `Timeout`)
      - step: ship
        delay: 5s               # the attempt starts 5 s late, then runs
    outages:
      - after: reserve          # once step `reserve` has started
        stop: worker            # worker | engine
        for: 10s
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from controlplane.errors import ConfigError
from controlplane.spec.model import Model, StepName, TaskStep, Workflow
from controlplane.spec.types import Duration

MAX_FAULTS = 100
"""A fault plan is a test fixture, not data: bounded like every input."""


class Fault(Model):
    """What happens to the attempts of one step: exactly one of error, timeout, delay."""

    step: StepName
    attempts: list[int] | None = Field(default=None, max_length=100)
    error: str | None = Field(default=None, min_length=1, max_length=256)
    cause: str = Field(default="injected fault", max_length=1024)
    timeout: bool = False
    delay: Duration | None = None

    @model_validator(mode="after")
    def _one_effect(self) -> Fault:
        effects = [self.error is not None, self.timeout, self.delay is not None]
        if sum(effects) != 1:
            raise PydanticCustomError(
                "CPL-S050", "a fault sets exactly one of `error`, `timeout` and `delay`"
            )
        if self.attempts is not None and any(attempt < 1 for attempt in self.attempts):
            raise PydanticCustomError("CPL-S050", "attempts are numbered from 1")
        return self

    def applies_to(self, attempt: int) -> bool:
        """Whether this fault hits the 1-based `attempt`."""
        return self.attempts is None or attempt in self.attempts


class Outage(Model):
    """An outage of the worker hosting the run, or of the engine, once a step has started."""

    after: StepName
    stop: Literal["worker", "engine"]
    for_: Duration = Field(alias="for")


class FaultPlan(Model):
    faults: list[Fault] = Field(default_factory=list, max_length=MAX_FAULTS)
    outages: list[Outage] = Field(default_factory=list, max_length=10)

    def for_step(self, step: str) -> list[Fault]:
        return [fault for fault in self.faults if fault.step == step]

    def check(self, workflow: Workflow, source: str) -> None:
        """ConfigError (naming `source`) when a fault or outage names no step of the workflow,
        or a fault a step that is not a task (only tasks have attempts)."""
        from controlplane.spec.check import iter_scopes

        steps = {step.name: step for scope in iter_scopes(workflow) for step in scope.steps}
        for index, fault in enumerate(self.faults):
            step = steps.get(fault.step)
            if not isinstance(step, TaskStep):
                what = "is not a step" if step is None else f"is a {step.type} step, not a task"
                raise ConfigError(
                    f"{source}: faults/{index}/step: '{fault.step}' {what} of workflow "
                    f"'{workflow.key}'"
                )
        for index, outage in enumerate(self.outages):
            if outage.after not in steps:
                raise ConfigError(
                    f"{source}: outages/{index}/after: '{outage.after}' is not a step of "
                    f"workflow '{workflow.key}'"
                )


def load_fault_plan(path: Path) -> FaultPlan:
    """The fault plan in the YAML or JSON file `path`; ConfigError naming the file and field."""
    from controlplane.spec.load import parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the fault plan: {error}") from None
    document, problem = parse_yaml(str(path), text)
    if problem is not None:
        raise ConfigError(f"{problem.file}:{problem.line}:{problem.column}: {problem.message}")
    try:
        return FaultPlan.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = "/".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
