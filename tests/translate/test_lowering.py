"""Engine-neutral lowerings: DAG layering and saga planning."""

from __future__ import annotations

from collections.abc import Callable

from controlplane.engines.lowering import (
    dag_layers,
    fresh_name,
    lower_dag,
    plan_dag,
    plan_saga,
)
from controlplane.spec.check import check_workflow
from controlplane.spec.model import ChoiceStep, ParallelStep, SucceedStep, Workflow

MakeWorkflow = Callable[..., Workflow]  # the `make_workflow` fixture of conftest.py

DAG = """
steps:
  - {name: a, type: task, activity: x.a, resultPath: $.a}
  - {name: b, type: task, activity: x.b, dependsOn: [a], resultPath: $.b}
  - {name: c, type: task, activity: x.c, dependsOn: [a], when: {path: $.a.ok, eq: true}}
  - {name: d, type: task, activity: x.d, dependsOn: [b, c], compensation: undo-d}
  - {name: e, type: task, activity: x.e, dependsOn: [d], when: {path: $.a.n, gt: 1}}
  - {name: undo-d, type: task, activity: x.undo}
"""


def test_dag_layers_are_topological_and_skip_compensations(make_workflow: MakeWorkflow) -> None:
    layers = dag_layers(make_workflow(DAG))
    assert [[s.name for s in layer] for layer in layers] == [["a"], ["b", "c"], ["d"], ["e"]]


def test_lower_dag_builds_a_valid_state_machine(make_workflow: MakeWorkflow) -> None:
    plan = plan_dag(make_workflow(DAG))
    lowered = plan.workflow
    assert lowered.spec.start == "a"
    steps = {s.name: s for s in lowered.spec.steps}
    assert steps["a"].next == "stage-2"
    stage = steps["stage-2"]
    assert isinstance(stage, ParallelStep)
    assert [b.start for b in stage.branches] == ["b", "c-when"]
    c_branch = {s.name: s for s in stage.branches[1].steps}
    assert isinstance(c_branch["c-when"], ChoiceStep)
    assert c_branch["c-when"].default == "c-skipped"
    assert isinstance(c_branch["c-skipped"], SucceedStep)
    assert c_branch["c"].end and c_branch["c"].when is None
    assert plan.merges == {"stage-2": ("b", "c")}
    assert plan.skips == {"c-skipped"}
    # a single step with `when` in the last layer: choice to it or to an invented end
    when = steps["e-when"]
    assert isinstance(when, ChoiceStep)
    assert when.rules[0].next == "e" and when.default == "done"
    assert steps["d"].next == "e-when" and steps["e"].end
    assert "undo-d" in steps and steps["undo-d"].next is None
    # the lowered workflow passes the semantic checks of a state machine
    revalidated = Workflow.model_validate(lowered.model_dump(by_alias=True, exclude_none=True))
    assert check_workflow(revalidated) == []


def test_lower_dag_leaves_state_machines_alone(make_workflow: MakeWorkflow) -> None:
    workflow = make_workflow("start: a\nsteps: [{name: a, type: succeed}]")
    assert lower_dag(workflow) is workflow


def test_fresh_name_avoids_taken_names() -> None:
    assert fresh_name("stage-1", {"x"}) == "stage-1"
    assert fresh_name("stage-1", {"stage-1", "stage-1-2"}) == "stage-1-3"


SAGA = """
start: one
steps:
  - {name: one, type: task, activity: x.one, compensation: undo-one, next: route}
  - name: route
    type: choice
    rules: [{when: {path: $.fast, eq: true}, next: three}]
    default: two
  - {name: two, type: task, activity: x.two, compensation: undo-two, next: three}
  - {name: three, type: task, activity: x.three, compensation: undo-three, next: done}
  - {name: done, type: succeed}
  - {name: undo-one, type: task, activity: x.u1, end: true}
  - {name: undo-two, type: task, activity: x.u2, end: true}
  - {name: undo-three, type: task, activity: x.u3, end: true}
onError: {compensate: true}
"""


def test_plan_saga_gives_reverse_order_chains(make_workflow: MakeWorkflow) -> None:
    saga = plan_saga(make_workflow(SAGA))
    assert saga.chains["one"] == ()
    assert saga.chains["two"] == ("undo-one",)
    # `three` is reached with and without `two` having run: the longest chain, flagged
    assert saga.chains["three"] == ("undo-two", "undo-one")
    assert saga.chains["done"] == ("undo-three", "undo-two", "undo-one")
    assert saga.ambiguous == {"three", "done"}


def test_plan_saga_of_a_lowered_dag_records_layer_compensations(
    make_workflow: MakeWorkflow,
) -> None:
    saga = plan_saga(lower_dag(make_workflow(DAG)))
    assert saga.chains["stage-2"] == ()
    assert saga.chains["e-when"] == ("undo-d",)
