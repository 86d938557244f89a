"""What proves each `exact` claim of the engines cpl runs here (docs/runtime.md, "Proof").

A construct is `exact` on an engine only when a test shows it on the real engine: the
Temporal dev server, or the Step Functions emulator. Most proofs are conformance scenarios:
a scenario proves construct F on engine E when rendering it for E records F as exact and it
runs as expected on E (`scenario_proofs`, derived, never listed by hand). The rest are the
dedicated tests below, each with what it shows; tests/conformance/test_truth.py checks that
every exact claim has one or the other, and that every test named here exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlplane.engines import ENGINES
from controlplane.spec.environment import EngineName, Environment
from controlplane.spec.model import Workflow

from .scenarios import RUN_ENGINES, SCENARIOS, TARGETS, Scenario


@dataclass(frozen=True)
class Proof:
    """A test (pytest node id, from the repo root) and what it shows on the engine."""

    test: str
    shows: str


_BACKOFF = Proof(
    "tests/conformance/test_retry_delays.py::test_backoff_doubles_the_delay_up_to_max_interval",
    "the delays between attempts double from initialInterval and stop growing at maxInterval",
)

DEDICATED: Mapping[EngineName, Mapping[str, tuple[Proof, ...]]] = {
    "temporal": {
        "task.idempotencyKey": (
            Proof(
                "tests/runtime/test_controls.py::test_idempotency_key_is_the_activity_id_on_every_retry_and_run",
                "an activity reads <step>:<key> as its activity id on a retry and in a second run",
            ),
        ),
        "retry.jitter": (
            Proof(
                "tests/runtime/test_controls.py::test_full_jitter_delays_are_random_within_the_backoff",
                "the interpreter's timers between attempts lie within the backoff and differ "
                "between runs",
            ),
        ),
        "task.circuitBreaker": (
            Proof(
                "tests/runtime/test_controls.py::test_circuit_breaker_is_shared_by_runs_fails_fast_and_recovers",
                "failing runs open the breaker, the next run fails with CircuitOpen without "
                "calling the activity, and a trial call after resetTimeout closes it",
            ),
        ),
        "retry.backoff": (_BACKOFF,),
        "retry.maxInterval": (_BACKOFF,),
        "tracing": (
            Proof(
                "tests/runtime/test_tracing.py::test_a_traced_run_has_a_span_per_step_under_the_run_span",
                "a `cpl worker` exporting to a file writes one span per executed step with the "
                "workflow, version, tenant, run id, step and outcome, under the run's start "
                "span, and none again when a query replays the run",
            ),
        ),
        "security.encryption": (
            Proof(
                "tests/encryption/test_temporal_encryption.py::test_encrypted_run_works_and_its_history_holds_no_plaintext",
                "a run of an encrypting workflow succeeds through cpl's and a user's worker, and "
                "its raw history holds neither input nor result, only payloads encoded "
                "binary/cpl-encrypted",
            ),
        ),
        "input.schema": (
            Proof(
                "tests/runtime/test_interpreter.py::test_input_schema_rejection_fails_with_input_invalid",
                "the interpreter fails a run whose input breaks the schema with InputInvalid",
            ),
        ),
        "retention": (
            Proof(
                "tests/engine_modules/test_temporal.py::test_namespace_is_a_shared_resource_derived_from_its_workflows",
                "the namespace is registered with the retention and read back from the server",
            ),
        ),
        "schedule": (
            Proof(
                "tests/engine_modules/test_temporal.py::test_lifecycle_create_read_diff_update_delete",
                "the schedule is created on the server, read back, updated and deleted",
            ),
        ),
        "schedule.timezone": (
            Proof(
                "tests/engine_modules/test_temporal.py::test_lifecycle_create_read_diff_update_delete",
                "the schedule's time zone is created on the server and read back",
            ),
        ),
        "schedule.overlap": (
            Proof(
                "tests/engine_modules/test_temporal.py::test_lifecycle_create_read_diff_update_delete",
                "the overlap policy is updated on the server and read back",
            ),
        ),
    },
    "stepfunctions": {
        "task.idempotencyKey": (
            Proof(
                "tests/controls/test_stepfunctions_controls.py::test_idempotency_key_travels_with_the_lambda_invocation",
                "the resolved key is in the Lambda invocation's client context of every "
                "attempt, read from the execution history",
            ),
        ),
        "task.circuitBreaker": (
            Proof(
                "tests/controls/test_stepfunctions_controls.py::test_circuit_breaker_opens_fails_fast_and_recovers_after_the_reset_timeout",
                "failing runs open the circuit in DynamoDB, the next run fails with "
                "CircuitOpen without calling the activity, a trial after resetTimeout "
                "re-opens or closes it",
            ),
        ),
        "retry.maxInterval": (_BACKOFF,),
        "schedule": (
            Proof(
                "tests/engine_modules/test_stepfunctions.py::test_lifecycle_create_read_diff_update_delete",
                "the EventBridge Scheduler schedule is created, read back, updated and deleted",
            ),
        ),
        "schedule.timezone": (
            Proof(
                "tests/engine_modules/test_stepfunctions.py::test_lifecycle_create_read_diff_update_delete",
                "the schedule's time zone is created and read back",
            ),
        ),
        "security.encryption": (
            Proof(
                "tests/engine_modules/test_stepfunctions.py::test_lifecycle_create_read_diff_update_delete",
                "the state machine's encryptionConfiguration is deployed and read back",
            ),
        ),
        "retry.jitter": (
            Proof(
                "tests/conformance/test_retry_delays.py::test_stepfunctions_full_jitter_spreads_retry_delays",
                "the delays between attempts stay within the backoff and are spread at random",
            ),
        ),
    },
}
"""Exact claims proven by a dedicated test instead of a scenario (deploy-time settings,
behaviour a scenario cannot observe)."""


def scenario_proofs(
    environment: Environment, scenarios: Iterable[Scenario] = SCENARIOS
) -> dict[EngineName, dict[str, list[str]]]:
    """Per engine, each construct that some scenario proves, with the scenarios' ids."""
    proofs: dict[EngineName, dict[str, list[str]]] = {engine: {} for engine in RUN_ENGINES}
    for scenario in scenarios:
        workflow = scenario.workflow()
        for engine in RUN_ENGINES:
            if engine in scenario.diverges:
                continue
            for feature in exact_features(workflow, engine, environment) - scenario.unobserved:
                ids = proofs[engine].setdefault(feature, [])
                if scenario.id not in ids:
                    ids.append(scenario.id)
    return proofs


def exact_features(workflow: Workflow, engine: EngineName, environment: Environment) -> set[str]:
    """The constructs the engine's translator records as exact for `workflow`."""
    target = environment.target(TARGETS[engine])
    artifact = ENGINES[engine].translator.render(workflow, target, environment)
    return {record.feature for record in artifact.support if record.support == "exact"}


def proofs_markdown(environment: Environment) -> str:
    """The "Proof" section of docs/portability.md: what proves each exact claim."""
    derived = scenario_proofs(environment)
    lines = [
        "## Proof of exact claims",
        "",
        "Each construct a table above calls `exact` on an engine cpl runs here is proven on "
        "that engine: by the conformance scenarios that use it (they run on the Temporal dev "
        "server and on the Step Functions emulator), or by the test named. "
        "`tests/conformance/test_truth.py` fails when a claim has no proof. Argo manifests are "
        "rendered and validated against Argo's schema, not run: no Kubernetes API server can "
        "run here.",
        "",
    ]
    for engine in RUN_ENGINES:
        lines.extend([f"### {engine}", "", "| construct | proven by |", "|---|---|"])
        features = sorted(set(derived[engine]) | set(DEDICATED.get(engine, {})))
        for feature in features:
            cells = [f"scenario `{id_}`" for id_ in derived[engine].get(feature, [])[:4]]
            more = len(derived[engine].get(feature, [])) - 4
            if more > 0:
                cells.append(f"{more} more scenarios")
            cells.extend(
                f"`{proof.test.split('::')[-1]}` ({proof.shows})"
                for proof in DEDICATED.get(engine, {}).get(feature, ())
            )
            lines.append(f"| `{feature}` | {'; '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)
