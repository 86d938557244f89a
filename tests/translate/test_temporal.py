"""The Temporal translator: artifact shape, Support records, bindings, namespace retention
conflicts, deterministic output and golden files for every example."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from controlplane.engines.temporal.namespaces import namespace_conflicts, with_namespace_conflicts
from controlplane.engines.temporal.translate import TemporalTranslator, spec_payload
from controlplane.engines.translator import Artifact, BindingError, Support, digest_of
from controlplane.spec.environment import Environment, Selector, Target
from controlplane.spec.load import load_environment, load_workflows
from controlplane.spec.model import Workflow
from controlplane.spec.normalize import to_data, to_document
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "temporal"
REGENERATE = os.environ.get("CPL_REGENERATE") == "1" and not os.environ.get("CI")

translator = TemporalTranslator()


@pytest.fixture(scope="module")
def workflows() -> dict[str, Workflow]:
    result = load_workflows(ROOT)
    assert result.ok, result.diagnostics
    return {loaded.model.key: loaded.model for loaded in result.workflows}


@pytest.fixture(scope="module")
def local() -> Environment:
    return load_environment(ROOT, "local")


def temporal_target(environment: Environment, **changes: Any) -> Target:
    target = environment.target("temporal-local")
    return target.model_copy(update=changes) if changes else target


def everything(environment: Environment) -> Environment:
    """The environment with its temporal target selecting every workflow."""
    targets = [
        t.model_copy(update={"select": Selector()}) if t.engine == "temporal" else t
        for t in environment.spec.targets
    ]
    return environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"targets": targets})}
    )


def variant(workflow: Workflow, **spec: Any) -> Workflow:
    """The workflow with spec fields replaced (given as document values)."""
    data = to_data(workflow)
    data["spec"].update(spec)
    return Workflow.model_validate(data)


def renamed(workflow: Workflow, name: str, **spec: Any) -> Workflow:
    data = to_data(variant(workflow, **spec))
    data["metadata"]["name"] = name
    return Workflow.model_validate(data)


def supports(artifact: Artifact, feature: str) -> list[Support]:
    return [s for s in artifact.support if s.feature == feature]


# --- artifact shape --------------------------------------------------------------------------


def test_artifact_carries_spec_payload_namespace_and_schedule(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    workflow = workflows["finance/fx-rates-refresh"]
    artifact = translator.render(workflow, temporal_target(local), local)

    assert (artifact.engine, artifact.target, artifact.resource) == (
        "temporal",
        "temporal-local",
        "finance-fx-rates-refresh",
    )
    document = artifact.document
    assert document["kind"] == "temporal"
    assert document["namespace"] == {"name": "cpl-local", "retention": 30 * 86400}
    assert document["searchAttributes"] == {
        "CplWorkflow": "Keyword",
        "CplVersion": "Keyword",
        "CplTenant": "Keyword",
    }
    assert document["schedule"] == {
        "id": "finance-fx-rates-refresh",
        "cron": "0 * * * 1-5",
        "timezone": "Europe/London",
        "overlap": "SKIP",
        "taskQueue": "cpl-interpreter",
        "workflowType": "cpl-interpreter",
    }
    assert document["taskQueue"] == "cpl-interpreter"
    assert document["tracing"]["enabled"] is False  # a development environment
    assert document["limits"] == {"payloadBytes": 2 * 1024 * 1024}

    spec = spec_payload(artifact)
    assert spec["workflow"] == to_document(workflow)
    assert spec["version"] == "1.1.0"
    assert spec["digest"] == digest_of(to_document(workflow))
    assert spec["activities"] == {
        "fx.fetch-rates": {"activity": "FxFetchRates", "taskQueue": "fx"},
        "fx.store-rates": {"activity": "FxStoreRates", "taskQueue": "fx"},
    }
    assert spec["deadLetter"] == {"queue": "finance-dlq"}
    assert list(artifact.files) == ["finance-fx-rates-refresh.json"]
    assert json.loads(artifact.files["finance-fx-rates-refresh.json"]) == document


def test_unscheduled_workflow_has_no_schedule_and_nested_bindings_are_resolved(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    artifact = translator.render(workflows["health/patient-intake"], temporal_target(local), local)
    assert artifact.document["schedule"] is None
    # activities inside parallel branches, including a catch target, are bound too
    assert set(spec_payload(artifact)["activities"]) == {
        "patients.register",
        "insurance.verify-eligibility",
        "insurance.queue-manual-check",
        "charts.create",
        "consent.record",
        "care-team.notify",
    }
    assert artifact.document["encryption"] == {"codec": "local:health"}


@pytest.mark.parametrize(
    ("overlap", "policy"),
    [("skip", "SKIP"), ("buffer-one", "BUFFER_ONE"), ("allow-all", "ALLOW_ALL")],
)
def test_schedule_overlap_maps_to_temporal_policies(
    workflows: dict[str, Workflow], local: Environment, overlap: str, policy: str
) -> None:
    workflow = variant(
        workflows["finance/fx-rates-refresh"],
        schedule={"cron": "0 2 * * *", "timezone": "Europe/Berlin", "overlap": overlap},
    )
    schedule = translator.render(workflow, temporal_target(local), local).document["schedule"]
    assert (schedule["overlap"], schedule["timezone"]) == (policy, "Europe/Berlin")


def test_schedule_without_timezone_or_overlap_uses_temporals_defaults(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    workflow = variant(workflows["finance/fx-rates-refresh"], schedule={"cron": "0 2 * * *"})
    artifact = translator.render(workflow, temporal_target(local), local)
    assert artifact.document["schedule"]["timezone"] == "UTC"
    assert artifact.document["schedule"]["overlap"] == "SKIP"
    assert not supports(artifact, "schedule.timezone")
    assert supports(artifact, "schedule")[0].support == "exact"


def test_tracing_is_on_outside_development(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    production = local.model_copy(
        update={"spec": local.spec.model_copy(update={"tier": "production"})}
    )
    artifact = translator.render(
        workflows["health/patient-intake"], temporal_target(production), production
    )
    assert artifact.document["tracing"]["enabled"] is True


# --- support records -------------------------------------------------------------------------


def test_support_records_say_what_temporal_cannot_do_exactly(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    target = temporal_target(local)
    fx = translator.render(workflows["finance/fx-rates-refresh"], target, local)
    jitter = supports(fx, "retry.jitter")
    assert [s.path for s in jitter] == ["/spec/steps/0/retry/jitter", "/spec/steps/2/retry/jitter"]
    assert all(s.support == "exact" and "workflow.random()" in s.reason for s in jitter)
    assert supports(fx, "task.idempotencyKey")[0].support == "exact"
    assert supports(fx, "schedule.overlap")[0].support == "exact"
    assert supports(fx, "retention")[0].support == "exact"

    intake = translator.render(workflows["health/patient-intake"], target, local)
    (breaker,) = supports(intake, "task.circuitBreaker")
    assert breaker.support == "exact"
    assert breaker.path == "/spec/steps/1/branches/0/steps/1/circuitBreaker"
    assert supports(intake, "security.encryption")[0].support == "exact"
    assert supports(intake, "input.schema")[0].support == "exact"

    close = translator.render(workflows["finance/month-end-close"], target, local)
    assert [s.support for s in supports(close, "approval")] == ["exact"]
    assert supports(close, "approval.approvers")[0].support == "approximated"

    claims = translator.render(workflows["health/claims-batch-adjudication"], target, local)
    assert supports(claims, "map.batchSize")[0].support == "exact"
    assert supports(claims, "access")[0].support == "approximated"


def test_every_example_renders_with_exact_control_flow(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    environment = everything(local)
    target = temporal_target(environment)
    control_flow = {"task", "choice", "parallel", "map", "wait.duration", "wait.until", "dag"}
    control_flow |= {"approval", "succeed", "fail", "catch", "task.compensation", "dag.when"}
    for workflow in workflows.values():
        artifact = translator.render(workflow, target, environment)
        gaps = [s for s in artifact.support if s.feature in control_flow and s.support != "exact"]
        assert gaps == [], workflow.key
    cart = translator.render(workflows["retail/abandoned-cart-reminder"], target, environment)
    assert supports(cart, "wait.until")[0].support == "exact"


# --- bindings --------------------------------------------------------------------------------


def without_binding(environment: Environment, activity: str, engine: str) -> Environment:
    activities = dict(environment.spec.bindings.activities)
    activities[activity] = activities[activity].model_copy(update={engine: None})
    bindings = environment.spec.bindings.model_copy(update={"activities": activities})
    return environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"bindings": bindings})}
    )


def test_missing_temporal_binding_names_workflow_step_and_environment(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    environment = without_binding(local, "consent.record", "temporal")
    with pytest.raises(BindingError) as caught:
        translator.render(
            workflows["health/patient-intake"], temporal_target(environment), environment
        )
    message = str(caught.value)
    assert "'health/patient-intake'" in message
    assert "step 'record-consents'" in message
    assert "environment 'local'" in message
    assert "spec.bindings.activities.consent.record.temporal" in message


def test_binding_without_activity_type_is_a_binding_error(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    activities = dict(local.spec.bindings.activities)
    activities["fx.store-rates"] = activities["fx.store-rates"].model_copy(
        update={"temporal": {"taskQueue": "fx"}}
    )
    bindings = local.spec.bindings.model_copy(update={"activities": activities})
    environment = local.model_copy(
        update={"spec": local.spec.model_copy(update={"bindings": bindings})}
    )
    with pytest.raises(BindingError, match=r"step 'store-rates'.*names no activity type"):
        translator.render(
            workflows["finance/fx-rates-refresh"], temporal_target(environment), environment
        )


def test_missing_dead_letter_queue_binding_is_a_binding_error(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    queues = {k: v for k, v in local.spec.bindings.queues.items() if k != "finance-dlq"}
    bindings = local.spec.bindings.model_copy(update={"queues": queues})
    environment = local.model_copy(
        update={"spec": local.spec.model_copy(update={"bindings": bindings})}
    )
    with pytest.raises(BindingError, match="queue 'finance-dlq'"):
        translator.render(
            workflows["finance/fx-rates-refresh"], temporal_target(environment), environment
        )


# --- namespace retention ---------------------------------------------------------------------


def test_different_retentions_in_one_namespace_are_reported_on_every_workflow(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    target = temporal_target(local)
    base = workflows["finance/fx-rates-refresh"]
    artifacts = [
        translator.render(base, target, local),  # 30d
        translator.render(renamed(base, "ledger-evidence", retention="365d"), target, local),
        translator.render(renamed(base, "no-retention", retention=None), target, local),
    ]
    (conflict,) = namespace_conflicts(artifacts)
    assert (conflict.target, conflict.namespace) == ("temporal-local", "cpl-local")
    assert conflict.retentions == {
        "finance/fx-rates-refresh": 30 * 86400,
        "finance/ledger-evidence": 365 * 86400,
    }

    updated = with_namespace_conflicts(artifacts)
    for artifact in updated[:2]:
        (record,) = [s for s in supports(artifact, "retention") if s.support == "unsupported"]
        assert record.path == "/spec/retention"
        assert "30d (finance/fx-rates-refresh)" in record.reason
        assert "365d (finance/ledger-evidence)" in record.reason
        assert "a namespace per retention class" in record.reason
    # the workflow without retention accepts the namespace's: nothing to report
    assert updated[2].support == artifacts[2].support


def test_same_retention_or_separate_namespaces_do_not_conflict(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    base = workflows["finance/fx-rates-refresh"]
    target = temporal_target(local)
    same = [
        translator.render(base, target, local),
        translator.render(renamed(base, "other"), target, local),
    ]
    assert namespace_conflicts(same) == []
    regulated = temporal_target(local, name="temporal-sox", namespace="cpl-sox")
    separate = [
        translator.render(base, target, local),
        translator.render(renamed(base, "evidence", retention="365d"), regulated, local),
    ]
    assert namespace_conflicts(separate) == []
    assert with_namespace_conflicts(separate) == separate


def test_the_local_examples_share_one_retention(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    artifacts = [
        translator.render(workflow, target, local)
        for workflow in workflows.values()
        for target in local.targets_for(workflow)
        if target.engine == "temporal"
    ]
    assert len(artifacts) == 7
    assert namespace_conflicts(artifacts) == []


def test_retention_below_one_day_is_approximated(
    workflows: dict[str, Workflow], local: Environment
) -> None:
    workflow = variant(workflows["finance/fx-rates-refresh"], retention="6h")
    artifact = translator.render(workflow, temporal_target(local), local)
    assert supports(artifact, "retention.minimum")[0].support == "approximated"


# --- determinism and golden files ------------------------------------------------------------


def test_rendering_is_deterministic(workflows: dict[str, Workflow], local: Environment) -> None:
    environment = everything(local)
    target = temporal_target(environment)
    for workflow in workflows.values():
        first = translator.render(workflow, target, environment)
        second = translator.render(workflow, target, environment)
        assert first.files == second.files
        assert first.digest == second.digest
        assert first.support == second.support


def test_golden_files(workflows: dict[str, Workflow], local: Environment) -> None:
    """Every example rendered for a temporal target selecting all of them.

    Regenerate with CPL_REGENERATE=1 (ignored when CI is set).
    """
    environment = everything(local)
    target = temporal_target(environment)
    expected_files: set[Path] = set()
    mismatched: list[str] = []
    for key, workflow in sorted(workflows.items()):
        artifact = translator.render(workflow, target, environment)
        (text,) = artifact.files.values()
        golden = GOLDEN / f"{key}.json"
        expected_files.add(golden)
        if REGENERATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        elif not golden.is_file() or golden.read_text(encoding="utf-8") != text:
            mismatched.append(key)
    assert mismatched == [], f"golden files differ (CPL_REGENERATE=1 to update): {mismatched}"
    stale = set(GOLDEN.glob("*/*.json")) - expected_files
    assert not stale, f"golden files without an example: {sorted(map(str, stale))}"
