"""The Argo translator: manifests per construct, Support records, the hera schema round trip
and golden files per example workflow.

No Kubernetes API server or Argo controller can run here: manifests are checked against
Argo's schema through hera's generated models (a round trip, since they drop unknown fields).
"""

from __future__ import annotations

import copy
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controlplane.engines.argo.schema import (  # noqa: E402
    ManifestSchemaError,
    validate_manifest,
)
from controlplane.engines.argo.translate import ArgoTranslator, condition_expression  # noqa: E402
from controlplane.engines.translator import Artifact, BindingError  # noqa: E402
from controlplane.spec.environment import Environment, Selector  # noqa: E402
from controlplane.spec.load import load_environment, load_repo  # noqa: E402
from controlplane.spec.model import Workflow  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "argo"
TRANSLATOR = ArgoTranslator()


@pytest.fixture(scope="module")
def argo_env() -> Environment:
    """The example `local` environment with its argo target selecting every workflow."""
    env = load_environment(ROOT, "local")
    targets = [
        t.model_copy(update={"select": Selector()}) if t.engine == "argo" else t
        for t in env.spec.targets
    ]
    return env.model_copy(update={"spec": env.spec.model_copy(update={"targets": targets})})


@pytest.fixture(scope="module")
def examples() -> list[Workflow]:
    result = load_repo(ROOT)
    assert result.ok, [d.format() for d in result.diagnostics]
    return [loaded.model for loaded in result.workflows]


def _workflow(spec: str, name: str = "demo", metadata: str = "") -> Workflow:
    text = (
        textwrap.dedent(
            """\
        apiVersion: cpl.dev/v1
        kind: Workflow
        metadata: {name: NAME, tenant: retail, version: 1.0.0, owner: team-a METADATA}
        spec:
        """
        )
        .replace("NAME", name)
        .replace(" METADATA", metadata)
    )
    text += textwrap.indent(textwrap.dedent(spec), "  ")
    return Workflow.model_validate(yaml.safe_load(text))


def _render(workflow: Workflow, env: Environment) -> Artifact:
    return TRANSLATOR.render(workflow, env.target("argo-local"), env)


def _manifest(artifact: Artifact) -> dict[str, Any]:
    manifest: dict[str, Any] = artifact.document["manifests"][0]
    return manifest


def _templates(artifact: Artifact) -> dict[str, dict[str, Any]]:
    manifest = _manifest(artifact)
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    return {t["name"]: t for t in spec["templates"]}


def _support(artifact: Artifact, feature: str) -> list[tuple[str, str]]:
    return [(s.support, s.path) for s in artifact.support if s.feature == feature]


SAGA = """\
timeout: 1h
retention: 7d
defaults:
  timeout: 30s
  retry: {maxAttempts: 3, initialInterval: 1s, backoffRate: 2.0, maxInterval: 20s, jitter: full}
start: reserve
steps:
  - name: reserve
    type: task
    activity: inventory.reserve
    idempotencyKey: $.orderId
    parameters: {orderId: $.orderId, qty: 2, tags: [a, $.tag]}
    resultPath: $.reservation.result
    compensation: release
    next: charge
  - name: charge
    type: task
    activity: payments.charge
    retry: {maxAttempts: 4, initialInterval: 2s, backoffRate: 1.5, nonRetryable: [CardDeclined]}
    compensation: refund
    catch:
      - {errors: [CardDeclined], next: declined, resultPath: $.error}
    end: true
  - name: declined
    type: fail
    error: Declined
    cause: The card was declined.
  - name: release
    type: task
    activity: inventory.release
    idempotencyKey: $.orderId
    end: true
  - name: refund
    type: task
    activity: payments.refund
    end: true
onError: {deadLetter: orders-dlq, compensate: true}
"""


def test_task_renders_container_retry_and_deadline(argo_env: Environment) -> None:
    artifact = _render(_workflow(SAGA), argo_env)
    manifest = _manifest(artifact)
    assert manifest["kind"] == "WorkflowTemplate"
    assert manifest["metadata"]["name"] == "retail-demo"
    assert manifest["metadata"]["namespace"] == "workflows"
    assert manifest["metadata"]["labels"]["cpl.dev/managed"] == "true"
    spec = manifest["spec"]
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": 7 * 86400}
    assert spec["podGC"] == {"strategy": "OnPodCompletion"}
    task = _templates(artifact)["task-reserve"]
    assert task["container"]["image"] == "ghcr.io/acme/inventory-worker:1.4.2"
    assert task["container"]["command"] == ["inventory-worker", "reserve"]
    assert task["activeDeadlineSeconds"] == 30
    assert task["retryStrategy"] == {
        "limit": 2,
        "retryPolicy": "Always",
        "backoff": {"duration": "1s", "factor": 2, "cap": "20s"},
    }
    node = _templates(artifact)["node-reserve"]
    run = node["steps"][0][0]
    arguments = {p["name"]: p["value"] for p in run["arguments"]["parameters"]}
    assert arguments["input"] == (
        "{{=toJson({'orderId': jsonpath(inputs.parameters.document, '$.orderId'), 'qty': 2, "
        "'tags': ['a', jsonpath(inputs.parameters.document, '$.tag')]})}}"
    )
    assert "sprig.set" in node["steps"][1][0]["arguments"]["parameters"][0]["value"]


def test_retry_support_records(argo_env: Environment) -> None:
    artifact = _render(_workflow(SAGA), argo_env)
    assert ("approximated", "/spec/steps/0/retry/jitter") in _support(artifact, "retry.jitter")
    assert _support(artifact, "retry.maxInterval")[0][0] == "exact"
    assert ("approximated", "/spec/steps/1/retry/nonRetryable") in _support(
        artifact, "retry.nonRetryable"
    )
    assert _support(artifact, "retry.backoffRate.fraction") == [
        ("approximated", "/spec/steps/1/retry/backoffRate")
    ]
    charge = _templates(artifact)["task-charge"]
    assert charge["retryStrategy"]["backoff"]["factor"] == 2
    assert ("approximated", "/spec/steps/0/idempotencyKey") in _support(
        artifact, "task.idempotencyKey"
    )


def test_catch_continues_on_failure_and_routes_by_error_name(argo_env: Environment) -> None:
    artifact = _render(_workflow(SAGA), argo_env)
    node = _templates(artifact)["node-charge"]
    run, exits = node["steps"][0][0], node["steps"][1]
    assert run["continueOn"] == {"failed": True, "error": True}
    caught = exits[0]
    assert caught["template"] == "node-declined"
    assert "steps.run.outputs.parameters.error in ['CardDeclined']" in caught["when"]
    # Errors no catch names fail the run through cpl-fail.
    assert exits[1]["template"] == "cpl-fail"
    assert _support(artifact, "catch") == [("approximated", "/spec/steps/1/catch/0")]


def test_saga_on_exit_runs_compensations_in_reverse_then_dead_letter(
    argo_env: Environment,
) -> None:
    artifact = _render(_workflow(SAGA), argo_env)
    spec = _manifest(artifact)["spec"]
    assert spec["onExit"] == "cpl-on-exit"
    handler = _templates(artifact)["cpl-on-exit"]
    names = [row[0]["template"] for row in handler["steps"]]
    assert names == ["task-refund", "task-release", "cpl-dead-letter"]
    assert all(row[0]["when"] == "{{=workflow.status != 'Succeeded'}}" for row in handler["steps"])
    assert handler["steps"][0][0]["continueOn"] == {"failed": True, "error": True}
    assert "workflow.outputs.parameters['cpl-done-reserve']" in str(handler["steps"][1])
    export = _templates(artifact)["node-reserve"]["outputs"]["parameters"][0]
    assert export["globalName"] == "cpl-done-reserve"
    dead_letter = _templates(artifact)["cpl-dead-letter"]["container"]["env"]
    assert {"name": "CPL_QUEUE", "value": "orders-dlq"} in dead_letter
    assert _support(artifact, "task.compensation")[0][0] == "approximated"
    assert _support(artifact, "onError.deadLetter")[0][0] == "approximated"
    # Compensations are not on the main path: no node templates for them.
    assert "node-release" not in _templates(artifact)


def test_fail_step_exits_one_with_message(argo_env: Environment) -> None:
    artifact = _render(_workflow(SAGA), argo_env)
    run = _templates(artifact)["node-declined"]["steps"][0][0]
    assert run["template"] == "cpl-fail"
    assert run["arguments"]["parameters"] == [
        {"name": "error", "value": "Declined"},
        {"name": "cause", "value": "The card was declined."},
    ]
    assert "exit 1" in _templates(artifact)["cpl-fail"]["container"]["args"][0]


CHOICE = """\
start: route
steps:
  - name: route
    type: choice
    rules:
      - when: {all: [{path: $.total, gt: 1000}, {not: {path: $.vip, eq: true}}]}
        next: review
      - when: {any: [{path: $.country, in: [DE, FR]}, {path: $.code, matches: "^X"}]}
        next: done
    default: done
  - name: review
    type: wait
    duration: 90s
    next: route
  - name: done
    type: succeed
"""


def test_choice_rules_are_exclusive_when_expressions(argo_env: Environment) -> None:
    artifact = _render(_workflow(CHOICE), argo_env)
    exits = _templates(artifact)["node-route"]["steps"][0]
    first = (
        "((jsonpath(inputs.parameters.document, '$.total') > 1000) && "
        "!(jsonpath(inputs.parameters.document, '$.vip') == true))"
    )
    assert exits[0]["when"] == "{{=" + first + "}}"
    assert exits[1]["when"].startswith("{{=!" + first + " && ((jsonpath")
    assert exits[2]["template"] == "node-done"
    assert exits[2]["when"].startswith("{{=!" + first + " && !(")
    # The loop back to `route` is a recursive template call.
    assert _templates(artifact)["node-review"]["steps"][1][0]["template"] == "node-route"
    assert _templates(artifact)["wait-review"]["suspend"] == {"duration": "90s"}
    assert _support(artifact, "condition.matches") == [
        ("approximated", "/spec/steps/0/rules/1/when/any/1")
    ]
    assert _support(artifact, "choice") == [("exact", "/spec/steps/0")]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"path": "$.a", "eq": "x'y"}, "(jsonpath(D, '$.a') == 'x\\'y')"),
        ({"path": "$.a", "ne": None}, "(jsonpath(D, '$.a') != nil)"),
        ({"path": "$.a[0].b", "le": 2.5}, "(jsonpath(D, '$.a[0].b') <= 2.5)"),
        ({"path": "$.a", "in": [1, "two"]}, "(jsonpath(D, '$.a') in [1, 'two'])"),
        (
            {"path": "$.a.b", "exists": True},
            "(sprig.dig('a', 'b', '__cpl_missing__', jsonpath(D, '$')) != '__cpl_missing__')",
        ),
        ({"not": {"path": "$.a", "ge": 1}}, "!(jsonpath(D, '$.a') >= 1)"),
    ],
)
def test_condition_mapping(condition: dict[str, Any], expected: str) -> None:
    workflow = _workflow(
        """\
        start: c
        steps:
          - {name: c, type: choice, rules: [{when: RULE, next: s}], default: s}
          - {name: s, type: succeed}
        """.replace("RULE", yaml.safe_dump(condition, default_flow_style=True).strip())
    )
    step = workflow.spec.steps[0]
    assert step.type == "choice"
    assert condition_expression(step.rules[0].when, "D") == expected


PARALLEL_MAP = """\
start: fan
steps:
  - name: fan
    type: parallel
    resultPath: $.branches
    branches:
      - start: a
        steps: [{name: a, type: task, activity: inventory.reserve, end: true}]
      - start: b
        steps: [{name: b, type: task, activity: payments.charge, end: true}]
    next: each
  - name: each
    type: map
    items: $.lines
    maxConcurrency: 4
    batchSize: 10
    resultPath: $.results
    start: one
    steps: [{name: one, type: task, activity: inventory.release, end: true}]
    end: true
"""


def test_parallel_branches_run_in_one_row_and_collect_documents(argo_env: Environment) -> None:
    artifact = _render(_workflow(PARALLEL_MAP), argo_env)
    node = _templates(artifact)["node-fan"]
    assert [s["template"] for s in node["steps"][0]] == ["node-fan-b0-a", "node-fan-b1-b"]
    branch = _templates(artifact)["node-fan-b0-a"]
    assert branch["outputs"]["parameters"][0]["name"] == "document"
    assert (
        "steps.branch1.outputs.parameters.document"
        in node["steps"][1][0]["arguments"]["parameters"][0]["value"]
    )


def test_map_uses_with_param_and_parallelism(argo_env: Environment) -> None:
    artifact = _render(_workflow(PARALLEL_MAP), argo_env)
    node = _templates(artifact)["node-each"]
    assert node["parallelism"] == 4
    iterate = node["steps"][0][0]
    assert iterate["template"] == "node-each-one"
    assert iterate["withParam"] == (
        "{{=toJson(map(sprig.chunk(10, jsonpath(inputs.parameters.document, '$.lines')), "
        "{toJson(#)}))}}"
    )
    assert iterate["arguments"]["parameters"] == [{"name": "document", "value": "{{item}}"}]
    assert _support(artifact, "map.batchSize") == [("approximated", "/spec/steps/1/batchSize")]
    assert _support(artifact, "map.maxConcurrency") == [("exact", "/spec/steps/1/maxConcurrency")]


APPROVAL = """\
start: sign
steps:
  - name: sign
    type: approval
    signal: sign-off
    timeout: 72h
    onTimeout: late
    approvers: {roles: [controller]}
    catch: [{errors: [ApprovalRejected], next: late, resultPath: $.rejection}]
    next: done
  - {name: late, type: fail, error: Late}
  - {name: done, type: succeed}
"""


def test_approval_is_a_suspend_with_supplied_outcome(argo_env: Environment) -> None:
    artifact = _render(_workflow(APPROVAL), argo_env)
    suspend = _templates(artifact)["approval-sign"]
    assert suspend["suspend"] == {"duration": "259200s"}
    approved = suspend["outputs"]["parameters"][0]
    assert approved["valueFrom"] == {"supplied": {}, "default": "timeout"}
    exits = _templates(artifact)["node-sign"]["steps"][1]
    assert [e["template"] for e in exits] == ["node-done", "node-late", "node-late"]
    assert "== 'true'" in exits[0]["when"]
    assert "== 'false'" in exits[1]["when"]
    assert "ApprovalRejected" in exits[1]["arguments"]["parameters"][0]["value"]
    assert _support(artifact, "approval") == [("approximated", "/spec/steps/0")]
    assert _support(artifact, "approval.approvers")[0][0] == "unsupported"


def test_wait_until_computes_seconds_then_suspends(argo_env: Environment) -> None:
    workflow = _workflow(
        """\
        start: w
        steps:
          - {name: w, type: wait, until: $.at, next: s}
          - {name: s, type: succeed}
        """
    )
    artifact = _render(workflow, argo_env)
    node = _templates(artifact)["node-w"]
    assert node["steps"][0][0]["template"] == "cpl-seconds-until"
    assert node["steps"][1][0]["arguments"]["parameters"][0]["value"] == (
        "{{steps.delay.outputs.result}}"
    )
    assert _support(artifact, "wait.until") == [("approximated", "/spec/steps/0/until")]


DAG = """\
steps:
  - {name: a, type: task, activity: inventory.reserve, resultPath: $.a}
  - {name: b, type: task, activity: payments.charge, resultPath: $.b}
  - name: c
    type: task
    activity: payments.refund
    dependsOn: [a, b]
    when: {path: $.a.ok, eq: true}
"""


def test_dag_form_uses_dependencies_and_merges_documents(argo_env: Environment) -> None:
    artifact = _render(_workflow(DAG), argo_env)
    tasks = {t["name"]: t for t in _templates(artifact)["main"]["dag"]["tasks"]}
    assert "dependencies" not in tasks["a"]
    assert tasks["c"]["dependencies"] == ["a", "b"]
    assert "sprig.mergeOverwrite" in tasks["c"]["arguments"]["parameters"][0]["value"]
    node = _templates(artifact)["node-c"]
    assert node["steps"][0][0]["when"] == (
        "{{=(jsonpath(inputs.parameters.document, '$.a.ok') == true)}}"
    )
    assert "'Skipped'" in node["outputs"]["parameters"][0]["valueFrom"]["expression"]
    assert _support(artifact, "dag.when") == [("exact", "/spec/steps/2/when")]


@pytest.mark.parametrize(
    ("overlap", "policy", "support"),
    [("skip", "Forbid", "exact"), ("allow-all", "Allow", "exact"), ("buffer-one", "Allow", None)],
)
def test_schedule_renders_cron_workflow(
    argo_env: Environment, overlap: str, policy: str, support: str | None
) -> None:
    workflow = _workflow(
        f"""\
        schedule: {{cron: "0 2 * * *", timezone: Europe/Berlin, overlap: {overlap}}}
        start: s
        steps: [{{name: s, type: succeed}}]
        """
    )
    artifact = _render(workflow, argo_env)
    manifest = _manifest(artifact)
    assert manifest["kind"] == "CronWorkflow"
    spec = manifest["spec"]
    assert spec["schedules"] == ["0 2 * * *"]
    assert spec["timezone"] == "Europe/Berlin"
    assert spec["concurrencyPolicy"] == policy
    assert spec["workflowSpec"]["entrypoint"] == "main"
    assert spec["workflowMetadata"]["labels"]["cpl.dev/workflow"] == "demo"
    if support is None:
        assert spec["workflowSpec"]["synchronization"] == {"mutexes": [{"name": "retail-demo"}]}
        assert _support(artifact, "schedule.overlap.buffer-one")[0][0] == "approximated"
    else:
        assert _support(artifact, "schedule.overlap") == [(support, "/spec/schedule/overlap")]


def test_circuit_breaker_and_heartbeat_support(argo_env: Environment) -> None:
    workflow = _workflow(
        """\
        start: t
        steps:
          - name: t
            type: task
            activity: fx.fetch-rates
            heartbeat: 10s
            circuitBreaker: {failureThreshold: 3, resetTimeout: 1m}
            end: true
        """
    )
    artifact = _render(workflow, argo_env)
    assert _support(artifact, "task.circuitBreaker") == [
        ("approximated", "/spec/steps/0/circuitBreaker")
    ]
    assert _support(artifact, "task.heartbeat") == [("approximated", "/spec/steps/0/heartbeat")]
    assert all(s.feature in TRANSLATOR.FEATURES for s in artifact.support)


def test_missing_binding_names_workflow_step_and_environment(argo_env: Environment) -> None:
    workflow = _workflow(
        """\
        start: t
        steps: [{name: t, type: task, activity: nowhere.bound, end: true}]
        """
    )
    with pytest.raises(BindingError) as caught:
        _render(workflow, argo_env)
    message = str(caught.value)
    assert "retail/demo" in message
    assert "'t'" in message
    assert "'local'" in message
    assert "nowhere.bound" in message


def test_every_example_survives_the_hera_round_trip(
    argo_env: Environment, examples: list[Workflow]
) -> None:
    assert len(examples) >= 15
    for workflow in examples:
        artifact = _render(workflow, argo_env)
        for manifest in artifact.document["manifests"]:
            validate_manifest(manifest)  # raises on any dropped or changed field
        assert artifact.resource == f"{workflow.metadata.tenant}-{workflow.metadata.name}"
        assert list(artifact.files) == [
            f"workflows/{artifact.resource}.yaml",
            f"workflows/{artifact.resource}.identity.yaml",
        ]
        assert (
            yaml.safe_load(artifact.files[f"workflows/{artifact.resource}.yaml"])
            == (artifact.document["manifests"][0])
        )


def test_rendering_is_deterministic(argo_env: Environment, examples: list[Workflow]) -> None:
    for workflow in examples:
        assert _render(workflow, argo_env).files == _render(workflow, argo_env).files


@pytest.mark.parametrize(
    ("where", "pointer"),
    [
        (lambda m: m["spec"].__setitem__("retryStrategyy", {}), "/spec/retryStrategyy"),
        (
            lambda m: m["spec"]["templates"][0].__setitem__("bogus", 1),
            "/spec/templates/0/bogus",
        ),
        (lambda m: m["metadata"].__setitem__("tenant", "x"), "/metadata/tenant"),
    ],
)
def test_unknown_field_is_rejected(argo_env: Environment, where: Any, pointer: str) -> None:
    manifest = copy.deepcopy(_manifest(_render(_workflow(SAGA), argo_env)))
    where(manifest)
    with pytest.raises(ManifestSchemaError) as caught:
        validate_manifest(manifest)
    assert pointer in caught.value.problems[0]


def test_wrong_type_is_rejected(argo_env: Environment) -> None:
    manifest = copy.deepcopy(_manifest(_render(_workflow(SAGA), argo_env)))
    manifest["spec"]["podGC"] = {"strategy": ["not", "a", "string"]}
    with pytest.raises(ManifestSchemaError, match="podGC"):
        validate_manifest(manifest)


def _golden_cases() -> list[Path]:
    return sorted((ROOT / "workflows").rglob("*.yaml"))


@pytest.mark.parametrize("file", _golden_cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(file: Path, argo_env: Environment, examples: list[Workflow]) -> None:
    """Regenerate with CPL_REGENERATE=1 (never when CI is set)."""
    workflow = next(w for w in examples if w.metadata.name == file.stem)
    artifact = _render(workflow, argo_env)
    text = next(iter(artifact.files.values()))
    golden = GOLDEN / workflow.metadata.tenant / f"{workflow.metadata.name}.yaml"
    if os.environ.get("CPL_REGENERATE") and not os.environ.get("CI"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"missing golden {golden}; run with CPL_REGENERATE=1"
    assert text == golden.read_text(encoding="utf-8")
