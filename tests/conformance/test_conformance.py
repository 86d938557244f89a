"""Cross-engine conformance: every scenario of scenarios.py, from one spec, on two real engines.

Each scenario's spec is rendered by the translators for a Temporal target (and run by cpl's
interpreter on the session's Temporal dev server) and for a Step Functions target (created
and executed on the session's moto server). Each engine must produce the scenario's trace and
output (or error); a difference passes only when the scenario declares it for that engine
*and* the engine's artifact carries a non-exact Support record for the declared construct. A
declared difference that no longer happens fails too, so the table (and the "Conformance"
section of docs/portability.md generated from it) stays true.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controlplane.engines import ENGINES
from controlplane.engines.lowering import step_names
from controlplane.engines.runs import RunOutcome
from controlplane.engines.temporal.translate import spec_payload
from controlplane.engines.translator import Artifact
from controlplane.spec.check import check_workflow
from controlplane.spec.environment import EngineName, Environment
from controlplane.spec.model import Workflow

from .conftest import Observed, StepFunctionsEngine, TemporalEngine, take_dead_letters
from .scenarios import RUN_ENGINES, SCENARIOS, TARGETS, Scenario, environment

pytestmark = pytest.mark.integration

Rendered = dict[str, tuple[Workflow, dict[EngineName, Artifact]]]


@pytest.fixture(scope="module")
def conformance_environment(moto_endpoint: str) -> Environment:
    return environment(moto_endpoint)


@pytest.fixture(scope="module")
def rendered(conformance_environment: Environment) -> Rendered:
    """Every scenario's workflow and its artifact per engine (Argo included: rendered only)."""
    result: Rendered = {}
    for scenario in SCENARIOS:
        workflow = scenario.workflow()
        artifacts = {
            engine: ENGINES[engine].translator.render(
                workflow, conformance_environment.target(target), conformance_environment
            )
            for engine, target in TARGETS.items()
        }
        result[scenario.id] = (workflow, artifacts)
    return result


@pytest.fixture(scope="module")
def deployed(
    rendered: Rendered, sfn_engine: StepFunctionsEngine, conformance_environment: Environment
) -> Rendered:
    """The scenarios' state machines, created on moto."""
    role = conformance_environment.target(TARGETS["stepfunctions"]).role_arn
    assert role is not None
    for _, artifacts in rendered.values():
        sfn_engine.deploy(artifacts["stepfunctions"], role)
    return rendered


def test_scenarios_are_valid_distinct_workflows(rendered: Rendered) -> None:
    assert len({scenario.id for scenario in SCENARIOS}) == len(SCENARIOS)
    for scenario in SCENARIOS:
        workflow, _ = rendered[scenario.id]
        assert check_workflow(workflow) == [], scenario.id
        assert set(scenario.trace) <= step_names(workflow), scenario.id
        for engine in scenario.diverges:
            assert engine in RUN_ENGINES and scenario.note, scenario.id


def _observed(run: Observed, workflow: Workflow, scenario: Scenario) -> dict[str, Any]:
    """What a run did, in the scenario's terms: its trace without helper states, how it
    ended (the output when it succeeded, the error name when it failed) and the attempts of
    the steps whose attempts the scenario counts."""
    outcome = run.outcome
    names = step_names(workflow)
    trace = [name for name in outcome["trace"] if name in names]
    observed: dict[str, Any] = {
        "status": outcome["status"],
        "trace": sorted(trace) if scenario.concurrent else trace,
    }
    if outcome["status"] == "succeeded":
        observed["output"] = outcome["output"]
    else:
        observed["error"] = (outcome["error"] or {}).get("error")
    if scenario.attempts:
        observed["attempts"] = {step: run.attempts[step] for step in scenario.attempts}
    return observed


def _expected(scenario: Scenario) -> dict[str, Any]:
    trace = list(scenario.trace)
    expected: dict[str, Any] = {
        "status": "failed" if scenario.error else "succeeded",
        "trace": sorted(trace) if scenario.concurrent else trace,
    }
    if scenario.error:
        expected["error"] = scenario.error
    else:
        expected["output"] = scenario.output
    if scenario.attempts:
        expected["attempts"] = dict(scenario.attempts)
    return expected


def _run(
    engine: EngineName,
    scenario: Scenario,
    workflow: Workflow,
    artifact: Artifact,
    environment: Environment,
    temporal_engine: TemporalEngine,
    sfn_engine: StepFunctionsEngine,
) -> Observed:
    if engine == "temporal":
        workflow_id = f"conformance-{scenario.id}-{uuid.uuid4().hex[:8]}"
        return temporal_engine.run(spec_payload(artifact), scenario.input, workflow_id)
    target = environment.target(TARGETS["stepfunctions"])
    return sfn_engine.run(target, workflow, scenario.input)


@pytest.mark.parametrize("engine", RUN_ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_runs_alike_on_every_engine(
    scenario: Scenario,
    engine: EngineName,
    deployed: Rendered,
    conformance_environment: Environment,
    temporal_engine: TemporalEngine,
    sfn_engine: StepFunctionsEngine,
    moto_endpoint: str,
) -> None:
    workflow, artifacts = deployed[scenario.id]
    artifact = artifacts[engine]
    run = _run(
        engine,
        scenario,
        workflow,
        artifact,
        conformance_environment,
        temporal_engine,
        sfn_engine,
    )
    observed, expected = _observed(run, workflow, scenario), _expected(scenario)

    declared = scenario.diverges.get(engine)
    if declared is None:
        assert observed == expected, run
        if scenario.dead_letter:
            _assert_dead_lettered(scenario, workflow, artifact, run.outcome, engine, moto_endpoint)
        return
    assert observed != expected, (
        f"{scenario.id} now runs as expected on {engine}: remove its declared divergence"
    )
    records = [record for record in artifact.support if record.feature == declared]
    assert records, f"{engine} renders {scenario.id} without a `{declared}` Support record"
    assert all(record.support != "exact" for record in records), records


def _assert_dead_lettered(
    scenario: Scenario,
    workflow: Workflow,
    artifact: Artifact,
    outcome: RunOutcome,
    engine: EngineName,
    moto_endpoint: str,
) -> None:
    """The run's dead-letter CloudEvent is in the real queue with every field; its trace is
    the run's where the engine's `onError.deadLetter` record is exact (else it may be null)."""
    [event] = take_dead_letters(moto_endpoint, workflow.key, TARGETS[engine])
    assert (event["specversion"], event["type"]) == ("1.0", "dev.cpl.run.deadlettered")
    assert event["id"] and event["time"] and event["subject"] == workflow.key
    data = event["data"]
    assert data["version"] == workflow.metadata.version and data["runId"]
    assert data["input"] == scenario.input
    assert outcome["error"] is not None
    assert (data["error"], data["cause"]) == (scenario.error, outcome["error"]["cause"])
    [record] = [r for r in artifact.support if r.feature == "onError.deadLetter"]
    if record.support == "exact":
        assert data["trace"] == list(scenario.trace)
    else:
        assert data["trace"] is None
