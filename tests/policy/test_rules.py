"""Each built-in rule fires exactly where it should on small hand-built workflows (real OPA),
and the example control repo raises exactly the violations its workflows own up to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.policy.decision import evaluate
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.inputs import build_inputs, rendered
from controlplane.policy.library import policy_config
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_repo
from tests.policy.cases import CASES, Case, _compat
from tests.policy.conftest import (
    ENVIRONMENT,
    PROJECT,
    TODAY,
    WORKFLOW,
    WORKFLOW_FILE,
    Decide,
    fired,
    mutate,
    spec_only,
)


def test_the_base_workflow_is_compliant(decide: Decide) -> None:
    decision = decide()
    assert fired(decision) == set()
    assert decision.ok and decision.exit_code == 0
    assert [(r.workflow, r.target) for r in decision.results] == [("retail/orders", "sfn")]


def test_every_rule_has_a_case(engine: EmbeddedOpa) -> None:
    assert {case.id for case in CASES} == set(engine.rules)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_rule_fires_exactly_where_expected(decide: Decide, case: Case) -> None:
    workflow = mutate(WORKFLOW, case.change) if case.change else WORKFLOW
    environment = mutate(ENVIRONMENT, case.environment) if case.environment else ENVIRONMENT
    previous = {WORKFLOW_FILE: WORKFLOW} if case.previous else None
    decision = decide({WORKFLOW_FILE: workflow}, environment, previous=previous, render=case.render)
    assert fired(decision) == case.expected
    assert decision.denied and decision.exit_code == 3
    assert not decision.diagnostics


def test_violations_point_at_the_yaml_node(decide: Decide) -> None:
    workflow = mutate(WORKFLOW, lambda d: d["spec"].__setitem__("retention", "400d"))
    decision = decide({WORKFLOW_FILE: workflow})
    (violation,) = decision.violations
    line = workflow.splitlines().index(next(x for x in workflow.splitlines() if "retention" in x))
    assert (violation.file, violation.line, violation.column) == (WORKFLOW_FILE, line + 1, 3)
    assert violation.severity == "high" and violation.enforcement == "mandatory"


def test_inherited_defaults_are_located_at_spec_defaults(decide: Decide) -> None:
    workflow = mutate(WORKFLOW, lambda d: d["spec"]["defaults"]["retry"].update(jitter="none"))
    decision = decide({WORKFLOW_FILE: workflow})
    assert fired(decision) == {
        ("CPL-P002", "/spec/steps/0/retry/jitter"),
        ("CPL-P002", "/spec/steps/2/retry/jitter"),
    }
    lines = workflow.splitlines()
    jitter_line = next(i for i, x in enumerate(lines) if "jitter: none" in x) + 1
    assert {v.line for v in decision.violations} == {jitter_line}


def test_approximated_constructs_warn_on_production(decide: Decide) -> None:
    decision = decide(render=_compat("approximated"))
    (violation,) = decision.violations
    assert (violation.rule, violation.kind, violation.denies) == ("CPL-P020", "warn", False)
    assert decision.ok and decision.summary["warnings"] == 1


def test_unsupported_constructs_only_warn_below_production(decide: Decide) -> None:
    staging = ENVIRONMENT.replace("tier: production", "tier: staging")
    decision = decide(environment=staging, render=_compat("unsupported"))
    assert [(v.rule, v.kind) for v in decision.violations] == [("CPL-P020", "warn")]
    assert decision.exit_code == 0


def test_policy_data_configures_the_library(decide: Decide) -> None:
    strict = ENVIRONMENT + "  policy:\n    data: {maxRetention: 7d, maxJit: 30m}\n"
    decision = decide(environment=strict)
    assert fired(decision) == {
        ("CPL-P011", "/spec/retention"),
        ("CPL-P016", "/spec/access/admin/jit/maxDuration"),
    }


# --- the example control repo ----------------------------------------------------------

# What the example workflows' descriptions say they violate, per environment.
EXPECTED_EXAMPLES = {
    "prod": {
        ("finance/fx-rates-refresh", "CPL-P008", "denied"),
        ("finance/fx-rates-refresh", "CPL-P016", "denied"),
        ("health/lab-results-ingest", "CPL-P012", "denied"),
        ("health/lab-results-ingest", "CPL-P015", "warning"),
        ("retail/legacy-catalog-import", "CPL-P002", "waived"),
        ("retail/legacy-catalog-import", "CPL-P011", "denied"),
    },
}


@pytest.mark.parametrize("env_name", sorted(EXPECTED_EXAMPLES))
def test_example_repo_raises_exactly_the_documented_violations(
    engine: EmbeddedOpa, env_name: str
) -> None:
    repo = PROJECT
    environment = load_environment(repo, env_name)
    loaded = load_repo(repo, [repo / "workflows", repo / "waivers"])
    assert loaded.ok
    inputs, problems = build_inputs(loaded, environment, render=spec_only)
    assert not problems
    with EmbeddedOpa(engine.library, _config(environment)) as opa:
        decision = evaluate(
            inputs, environment, loaded.waivers, TODAY, engine=opa, locate=loaded.locate
        )
    found = set()
    for result in decision.results:
        for v in result.violations:
            outcome = "waived" if v.waived else ("denied" if v.denies else "warning")
            found.add((result.workflow, v.rule, outcome))
    assert found == EXPECTED_EXAMPLES[env_name]
    assert decision.exit_code == 3


def _config(environment: Environment) -> dict[str, Any]:
    return policy_config(environment)


def test_example_workflows_without_findings_are_the_compliant_ones(engine: EmbeddedOpa) -> None:
    repo: Path = PROJECT
    environment = load_environment(repo, "prod")
    loaded = load_repo(repo, [repo / "workflows"])
    inputs, _ = build_inputs(loaded, environment, render=spec_only)
    outcomes = engine.evaluate([i.document for i in inputs])
    noisy = {i.workflow for i, findings in zip(inputs, outcomes, strict=True) if findings}
    assert noisy == {
        "finance/fx-rates-refresh",
        "health/lab-results-ingest",
        "retail/legacy-catalog-import",
    }


def test_translators_feed_rendered_and_compat() -> None:
    """Policy inputs carry the rendered artifact and its Support records."""
    environment = load_environment(PROJECT, "prod")
    loaded = load_repo(PROJECT, [PROJECT / "workflows"])
    inputs, problems = build_inputs(loaded, environment)
    assert not problems and inputs
    first = next(i for i in inputs if i.document["target"]["engine"] == "stepfunctions")
    workflow = next(w.model for w in loaded.workflows if w.model.key == first.workflow)
    target = environment.target(first.target)
    assert first.document["rendered"] == rendered(workflow, target, environment).document
    assert first.document["rendered"] and isinstance(first.document["compat"], list)
