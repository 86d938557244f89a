"""Engine-neutral spec→spec rewrites that run before a translator generates its artifact.

Each function is pure (a workflow in, a new workflow or a plan out; nothing is mutated) and
has its own test. Translators for engines that only know state machines (Step Functions)
use `plan_dag`/`lower_dag` to turn the DAG form into the state-machine form, and
`plan_saga` to learn, for every step on the main path, which compensations have been
recorded when that step fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from controlplane.spec.check import compensation_targets, iter_scopes, transitions
from controlplane.spec.model import (
    Branch,
    ChoiceRule,
    ChoiceStep,
    ParallelStep,
    Step,
    SucceedStep,
    TaskStep,
    Workflow,
)

_MAX_NAME = 63
WRITING_TYPES = frozenset({"task", "parallel", "map"})
"""Step types whose result is written at their `resultPath` (docs/runtime.md)."""


def step_names(workflow: Workflow) -> set[str]:
    """Every step name used anywhere in the workflow (all scopes)."""
    return {step.name for scope in iter_scopes(workflow) for step in scope.steps}


def fresh_name(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3`… whichever is not taken (valid as a step name)."""
    used = set(taken)
    base = base[:_MAX_NAME]
    if base not in used:
        return base
    counter = 2
    while True:
        suffix = f"-{counter}"
        candidate = base[: _MAX_NAME - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        counter += 1


# --- DAG → state machine -----------------------------------------------------------------


def dag_layers(workflow: Workflow) -> list[list[Step]]:
    """The DAG's main-path steps by topological layer (longest path from a root).

    Layer 0 holds the steps without `dependsOn`; a step sits one layer below its deepest
    dependency. Steps keep document order inside a layer. Compensation targets are not on
    the main path and are left out. The workflow must be a valid (acyclic) DAG.
    """
    steps = [
        s for s in workflow.spec.steps if s.name not in compensation_targets(workflow.spec.steps)
    ]
    by_name = {s.name: s for s in steps}
    depth: dict[str, int] = {}

    def depth_of(name: str, trail: tuple[str, ...] = ()) -> int:
        if name in depth:
            return depth[name]
        if name in trail:
            raise ValueError(f"dependency cycle through '{name}'")
        deps = [d for d in (by_name[name].depends_on or []) if d in by_name]
        depth[name] = 1 + max((depth_of(d, (*trail, name)) for d in deps), default=-1)
        return depth[name]

    layers: dict[int, list[Step]] = {}
    for step in steps:
        layers.setdefault(depth_of(step.name), []).append(step)
    return [layers[index] for index in sorted(layers)]


@dataclass(frozen=True)
class DagPlan:
    """A DAG lowered to the state-machine form, with what the lowering invented.

    `merges` maps each invented parallel step (one per layer with more than one step) to
    the DAG step each of its branches runs, in branch order: the branches share one data
    document on the DAG's engines, so a translator must write every branch step's result
    back at that step's own `resultPath` rather than store the list of branch results.
    `skips` are the invented `succeed` steps standing for a step whose `when` was false;
    `synthetic` is every invented name.
    """

    workflow: Workflow
    layers: tuple[tuple[str, ...], ...]
    merges: dict[str, tuple[str, ...]]
    skips: frozenset[str]
    synthetic: frozenset[str]


def plan_dag(workflow: Workflow) -> DagPlan:
    """Lower a DAG workflow to the state-machine form by topological layering.

    Layers run one after the other. A layer with one step runs it directly; a layer with
    more steps becomes a `parallel` step with one branch per step. A step with `when`
    becomes a `choice` (`<step>-when`) that runs the step or skips it (to the next layer, or
    inside a branch to a `succeed` step `<step>-skipped`). A run ends after the last layer.
    `catch` on DAG steps is dropped (a DAG has no transitions to catch into; the Temporal
    interpreter ignores it as well). Compensation targets stay, unchanged, off the main path.
    A workflow already in state-machine form comes back as is.
    """
    if not workflow.spec.is_dag:
        return DagPlan(workflow, (), {}, frozenset(), frozenset())
    layers = dag_layers(workflow)
    taken = step_names(workflow)
    synthetic: set[str] = set()
    skips: set[str] = set()

    def invent(base: str) -> str:
        name = fresh_name(base, taken)
        taken.add(name)
        synthetic.add(name)
        return name

    entries: list[str] = []
    for layer in layers:
        if len(layer) > 1:
            entries.append(invent(f"stage-{len(entries) + 1}"))
        elif layer[0].when is not None:
            entries.append(invent(f"{layer[0].name[: _MAX_NAME - 5]}-when"))
        else:
            entries.append(layer[0].name)
    done: str | None = None

    lowered: list[Step] = []
    merges: dict[str, tuple[str, ...]] = {}
    for index, layer in enumerate(layers):
        after = entries[index + 1] if index + 1 < len(layers) else None
        if len(layer) == 1:
            step = layer[0]
            if step.when is not None:
                if after is None and done is None:
                    done = invent("done")
                target = after or done
                assert target is not None
                lowered.append(_when_choice(entries[index], step, target))
            lowered.append(_chained(step, after))
            continue
        branches = []
        for step in layer:
            branch_steps: list[Step] = []
            start = step.name
            if step.when is not None:
                skipped = invent(f"{step.name[: _MAX_NAME - 8]}-skipped")
                skips.add(skipped)
                start = invent(f"{step.name[: _MAX_NAME - 5]}-when")
                branch_steps.append(_when_choice(start, step, skipped))
                branch_steps.append(_chained(step, None))
                branch_steps.append(SucceedStep(name=skipped, type="succeed"))
            else:
                branch_steps.append(_chained(step, None))
            branches.append(Branch(start=start, steps=branch_steps))
        merges[entries[index]] = tuple(step.name for step in layer)
        parallel = ParallelStep(name=entries[index], type="parallel", branches=branches)
        lowered.append(parallel.model_copy(update=_link(after)))
    if done is not None:
        lowered.append(SucceedStep(name=done, type="succeed"))
    targets = compensation_targets(workflow.spec.steps)
    lowered.extend(s for s in workflow.spec.steps if s.name in targets)

    spec = workflow.spec.model_copy(update={"start": entries[0], "steps": lowered})
    return DagPlan(
        workflow=workflow.model_copy(update={"spec": spec}),
        layers=tuple(tuple(s.name for s in layer) for layer in layers),
        merges=merges,
        skips=frozenset(skips),
        synthetic=frozenset(synthetic),
    )


def lower_dag(workflow: Workflow) -> Workflow:
    """The DAG workflow in state-machine form (see `plan_dag`); others unchanged."""
    return plan_dag(workflow).workflow


def _when_choice(name: str, step: Step, otherwise: str) -> ChoiceStep:
    assert step.when is not None
    return ChoiceStep(
        name=name,
        type="choice",
        rules=[ChoiceRule(when=step.when, next=step.name)],
        default=otherwise,
    )


def _link(after: str | None) -> dict[str, object]:
    return {"next": after, "end": None} if after else {"next": None, "end": True}


def _chained(step: Step, after: str | None) -> Step:
    update: dict[str, object] = {"depends_on": None, "when": None}
    if step.type not in ("succeed", "fail"):
        update.update(_link(after))
    if hasattr(step, "catch"):
        update["catch"] = []
    return step.model_copy(update=update)


# --- saga ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SagaPlan:
    """For each main-path step of the top-level state machine: the compensations recorded
    when it starts, in the order they must run when it fails (most recent first).

    `ambiguous` names steps reached with different recorded compensations on different
    paths (a choice joining branches, a loop): their chain is the longest one seen, so it
    may undo a step that did not run (compensations are idempotent by policy CPL-P004).
    """

    chains: dict[str, tuple[str, ...]]
    ambiguous: frozenset[str]


def plan_saga(workflow: Workflow) -> SagaPlan:
    """The reverse-order compensation chain of every failure point of a state machine.

    A task's compensation is recorded when the task completes, so a step that fails runs
    the compensations recorded by the steps completed before it. A parallel step records
    the compensations of the tasks its branches run directly (lowered DAG layers). A
    compensation is recorded once per run (a loop does not record it again).
    """
    spec = workflow.spec
    if spec.start is None:
        return SagaPlan({}, frozenset())
    targets = compensation_targets(spec.steps)
    by_name = {s.name: s for s in spec.steps if s.name not in targets}
    seen: dict[str, set[tuple[str, ...]]] = {}
    stack: list[tuple[str, tuple[str, ...]]] = [(spec.start, ())]
    while stack:
        name, recorded = stack.pop()
        step = by_name.get(name)
        if step is None or recorded in seen.setdefault(name, set()):
            continue
        seen[name].add(recorded)
        after = recorded
        for compensation in _recorded_by(step, targets):
            if compensation not in after:
                after = (*after, compensation)
        for suffix, target in transitions(step):
            # a caught failure continues with what was recorded before the step failed
            stack.append((target, recorded if suffix.startswith("catch") else after))
    chains: dict[str, tuple[str, ...]] = {}
    ambiguous: set[str] = set()
    for name, variants in seen.items():
        longest = max(variants, key=lambda v: (len(v), v))
        chains[name] = tuple(reversed(longest))
        if len(variants) > 1:
            ambiguous.add(name)
    return SagaPlan(chains, frozenset(ambiguous))


def _recorded_by(step: Step, targets: set[str]) -> Iterator[str]:
    if isinstance(step, TaskStep) and step.compensation in targets:
        assert step.compensation is not None
        yield step.compensation
    elif isinstance(step, ParallelStep):
        for branch in step.branches:
            for inner in branch.steps:
                if isinstance(inner, TaskStep) and inner.compensation in targets:
                    assert inner.compensation is not None
                    yield inner.compensation
