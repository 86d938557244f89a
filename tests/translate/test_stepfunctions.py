"""The Step Functions translator: ASL per construct, Support records, configuration, statelint
and moto's ASL parser on every example, and golden files per example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.engines.stepfunctions.translate import (
    StepFunctionsTranslator,
    aws_cron,
    log_retention_days,
    pretty_json,
)
from controlplane.engines.translator import Artifact, BindingError
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
MakeWorkflow = Callable[..., Workflow]  # the `make_workflow` fixture of conftest.py
GOLDEN = ROOT / "tests" / "golden" / "stepfunctions"
TRANSLATOR = StepFunctionsTranslator()
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:"


def render(workflow: Workflow, environment: Environment) -> Artifact:
    return TRANSLATOR.render(workflow, environment.target("sfn-local"), environment)


def states(artifact: Artifact) -> dict[str, Any]:
    result: dict[str, Any] = artifact.document["definition"]["States"]
    return result


def support(artifact: Artifact) -> dict[str, str]:
    return {f"{s.feature}@{s.path}": s.support for s in artifact.support}


# --- constructs ---------------------------------------------------------------------------

TASKS = """
start: reserve
timeout: 1h
defaults:
  timeout: 30s
  retry: {maxAttempts: 3, initialInterval: 500ms, backoffRate: 2.0, maxInterval: 1m, jitter: full}
steps:
  - name: reserve
    type: task
    activity: inventory.reserve
    idempotencyKey: $.orderId
    parameters: {orderId: $.orderId, lines: [$.first, fixed, 3], mode: hold, nested: {id: $.id}}
    resultPath: $.reservation
    retry:
      {maxAttempts: 4, initialInterval: 2s, maxInterval: 1m, jitter: full,
       nonRetryable: [OutOfStock]}
    catch:
      - {errors: [OutOfStock, Timeout], next: sold-out, resultPath: $.error}
      - {errors: ["*"], next: sold-out}
    next: done
  - {name: sold-out, type: fail, error: SoldOut, cause: nothing left}
  - {name: done, type: succeed}
"""


def test_task_renders_lambda_parameters_retry_and_catch(
    make_workflow: MakeWorkflow, sfn_environment: Environment
) -> None:
    artifact = render(make_workflow(TASKS), sfn_environment)
    definition = artifact.document["definition"]
    assert definition["StartAt"] == "reserve" and definition["TimeoutSeconds"] == 3600
    task = states(artifact)["reserve"]
    # the idempotency key travels with the invocation: lambda:invoke, the event unchanged
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    parameters = task["Parameters"]
    assert parameters["FunctionName"] == LAMBDA + "inventory-reserve"
    assert parameters["Payload"] == {
        "orderId.$": "$.orderId",
        "lines.$": "States.Array($.first, 'fixed', 3)",
        "mode": "hold",
        "nested": {"id.$": "$.id"},
    }
    assert "States.JsonToString($.orderId)" in parameters["ClientContext.$"]
    assert task["ResultSelector"] == {"value.$": "$.Payload"}
    assert task["ResultPath"] == "$.reservation" and task["TimeoutSeconds"] == 30
    assert task["Retry"] == [
        {"ErrorEquals": ["OutOfStock"], "MaxAttempts": 0},
        {
            "ErrorEquals": ["States.ALL"],
            "MaxAttempts": 3,
            "IntervalSeconds": 2,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 60,
            "JitterStrategy": "FULL",
        },
    ]
    assert task["Catch"] == [
        {
            "ErrorEquals": ["OutOfStock", "States.Timeout"],
            "ResultPath": "$.error",
            "Next": "sold-out",
        },
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "sold-out"},
    ]
    # a Pass state lifts the function's result out of the integration's envelope
    assert states(artifact)[task["Next"]] == {
        "Type": "Pass",
        "InputPath": "$.reservation.value",
        "ResultPath": "$.reservation",
        "Next": "done",
    }
    assert states(artifact)["sold-out"] == {
        "Type": "Fail",
        "Error": "SoldOut",
        "Cause": "nothing left",
    }
    records = support(artifact)
    assert records["retry.jitter@/spec/steps/0/retry/jitter"] == "exact"
    assert records["task.idempotencyKey@/spec/steps/0/idempotencyKey"] == "exact"


CHOICE = """
start: route
steps:
  - name: route
    type: choice
    rules:
      - when:
          all:
            - {path: $.total, gt: 1000}
            - {path: $.tier, in: [gold, silver]}
            - not: {path: $.blocked, eq: true}
            - {path: $.email, exists: true}
        next: big
      - when: {path: $.currency, matches: "^(EUR|USD)$"}
        next: small
      - when: {path: $.ref, matches: "INV-[0-9]+"}
        next: small
      - when: {path: $.code, ne: null}
        next: small
    default: small
  - {name: big, type: succeed}
  - {name: small, type: succeed}
"""


def _guard(variable: str, kind: str, operator: str, operand: Any) -> dict[str, Any]:
    return {
        "And": [
            {"Variable": variable, "IsPresent": True},
            {"Variable": variable, kind: True},
            {"Variable": variable, operator: operand},
        ]
    }


def test_choice_conditions_become_guarded_asl_rules(
    make_workflow: MakeWorkflow, sfn_environment: Environment
) -> None:
    artifact = render(make_workflow(CHOICE), sfn_environment)
    choice = states(artifact)["route"]
    first, currency, regex, not_null = choice["Choices"]
    assert first["Next"] == "big"
    assert first["And"] == [
        _guard("$.total", "IsNumeric", "NumericGreaterThan", 1000),
        {
            "Or": [
                _guard("$.tier", "IsString", "StringEquals", "gold"),
                _guard("$.tier", "IsString", "StringEquals", "silver"),
            ]
        },
        {"Not": _guard("$.blocked", "IsBoolean", "BooleanEquals", True)},
        {"Variable": "$.email", "IsPresent": True},
    ]
    assert currency["Or"] == [
        _guard("$.currency", "IsString", "StringEquals", "EUR"),
        _guard("$.currency", "IsString", "StringEquals", "USD"),
    ]
    assert regex == {"Variable": "$$.Execution.Id", "IsNull": True, "Next": "small"}
    assert not_null["And"][0] == {"Variable": "$.code", "IsPresent": True}
    assert choice["Default"] == "small"
    records = support(artifact)
    assert records["condition.matches@/spec/steps/0/rules/1/when"] == "exact"
    assert records["condition.matches.regex@/spec/steps/0/rules/2/when"] == "unsupported"


FLOW = """
start: fan-out
steps:
  - name: fan-out
    type: parallel
    resultPath: $.checks
    branches:
      - start: left
        steps: [{name: left, type: wait, duration: 90s, end: true}]
      - start: right
        steps: [{name: right, type: wait, until: $.at, end: true}]
    next: each
  - name: each
    type: map
    items: $.lines
    maxConcurrency: 4
    batchSize: 10
    resultPath: $.results
    start: line
    steps: [{name: line, type: task, activity: inventory.update-stock, end: true}]
    catch: [{errors: [Broken], next: done, resultPath: $.mapError}]
    next: done
  - {name: done, type: succeed}
"""


def test_parallel_wait_and_batched_map(
    make_workflow: MakeWorkflow, sfn_environment: Environment
) -> None:
    artifact = render(make_workflow(FLOW), sfn_environment)
    all_states = states(artifact)
    parallel = all_states["fan-out"]
    assert parallel["Type"] == "Parallel" and parallel["ResultPath"] == "$.checks"
    assert [b["StartAt"] for b in parallel["Branches"]] == ["left", "right"]
    assert parallel["Branches"][0]["States"]["left"] == {"Type": "Wait", "Seconds": 90, "End": True}
    assert parallel["Branches"][1]["States"]["right"]["TimestampPath"] == "$.at"
    assert parallel["Next"] == "each-batches"
    assert all_states["each-batches"] == {
        "Type": "Pass",
        "Parameters": {"batches.$": "States.ArrayPartition($.lines, 10)", "document.$": "$"},
        "Next": "each",
    }
    mapped = all_states["each"]
    assert mapped["ItemsPath"] == "$.batches" and mapped["MaxConcurrency"] == 4
    assert mapped["ResultPath"] == "$.document.results" and mapped["OutputPath"] == "$.document"
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    assert mapped["ItemProcessor"]["StartAt"] == "line"
    catcher = mapped["Catch"][0]
    assert catcher["ResultPath"] == "$.document.mapError"
    assert all_states[catcher["Next"]] == {
        "Type": "Pass",
        "InputPath": "$.document",
        "Next": "done",
    }
    assert support(artifact)["map.batchSize@/spec/steps/1/batchSize"] == "approximated"


APPROVAL = """
start: sign-off
steps:
  - name: sign-off
    type: approval
    signal: manager-approval
    timeout: 48h
    onTimeout: escalate
    approvers: {roles: [manager]}
    catch: [{errors: [ApprovalRejected], next: rejected}]
    next: approved
  - {name: approved, type: succeed}
  - {name: escalate, type: succeed}
  - {name: rejected, type: fail, error: Rejected}
"""


def test_approval_is_a_callback_task_with_timeout(
    make_workflow: MakeWorkflow, sfn_environment: Environment
) -> None:
    artifact = render(make_workflow(APPROVAL), sfn_environment)
    task = states(artifact)["sign-off"]
    assert task["Resource"] == "arn:aws:states:::events:putEvents.waitForTaskToken"
    detail = task["Parameters"]["Entries"][0]["Detail"]
    assert detail["taskToken.$"] == "$$.Task.Token" and detail["approvers"] == ["manager"]
    assert detail["signal"] == "manager-approval"
    assert task["TimeoutSeconds"] == 48 * 3600 and task["ResultPath"] is None
    assert task["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "escalate"},
        {"ErrorEquals": ["ApprovalRejected"], "ResultPath": None, "Next": "rejected"},
    ]
    assert support(artifact)["approval@/spec/steps/0"] == "approximated"


def test_saga_runs_recorded_compensations_in_reverse_then_dead_letter(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> None:
    artifact = render(example_workflows["retail/order-fulfillment"], sfn_environment)
    all_states = states(artifact)
    handler = {name: s["Catch"][-1]["Next"] for name, s in all_states.items() if "Catch" in s}
    assert handler["reserve-inventory"] == "dead-letter"
    assert handler["charge-payment"] == "release-inventory"
    assert handler["ship-order"] == "refund-payment"
    assert all_states["refund-payment"]["Next"] == "release-inventory"
    assert all_states["release-inventory"]["Next"] == "dead-letter"
    # confirm-order catches everything itself, so cancel-shipment is never needed
    assert "cancel-shipment" not in all_states
    assert all_states["reject-unverified"]["Type"] == "Pass"
    assert all_states["reject-unverified"]["Next"] == "dead-letter"
    dead_letter = all_states["dead-letter"]
    assert dead_letter["Resource"] == "arn:aws:states:::sqs:sendMessage"
    body = dead_letter["Parameters"]["MessageBody"]
    assert dead_letter["Parameters"]["QueueUrl"].endswith("/orders-dlq")
    assert body["type"] == "dev.cpl.run.deadlettered"
    assert body["data"]["runId.$"] == "$$.Execution.Id"
    assert body["data"]["error.$"] == "$.cplError.Error"
    assert body["data"]["workflow"] == "retail/order-fulfillment"
    assert all_states[dead_letter["Next"]] == {
        "Type": "Fail",
        "ErrorPath": "$.cplError.Error",
        "CausePath": "$.cplError.Cause",
    }


def test_dag_layers_merge_branch_results(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> None:
    artifact = render(example_workflows["retail/price-feed-export"], sfn_environment)
    all_states = states(artifact)
    stage = all_states["stage-4"]
    assert [b["StartAt"] for b in stage["Branches"]] == [
        "stage-4-input",
        "publish-google-when",
        "publish-meta-when",
        "archive-feed",
    ]
    assert stage["ResultSelector"]["document.$"] == "$[0]"
    merge = all_states[stage["Next"]]
    assert merge == {
        "Type": "Pass",
        "InputPath": "$.result1",
        "ResultPath": "$.document.published.google",
        "Next": "stage-4-merge-2",
    }
    last = all_states["stage-4-merge-3"]
    assert last["OutputPath"] == "$.document" and last["End"] is True
    records = support(artifact)
    assert records["dag.when.layer@/spec/steps/4/when"] == "approximated"


def test_configuration_log_group_and_schedule(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> None:
    artifact = render(example_workflows["health/appointment-reminders"], sfn_environment)
    document = artifact.document
    assert artifact.resource == "health-appointment-reminders"
    config = document["configuration"]
    assert config["loggingConfiguration"]["includeExecutionData"] is False  # phi
    assert config["loggingConfiguration"]["level"] == "ALL"
    assert config["tracingConfiguration"] == {"enabled": False}  # development tier
    assert config["encryptionConfiguration"]["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert config["encryptionConfiguration"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert config["tags"]["cpl:workflow"] == "health/appointment-reminders"
    assert document["logGroup"] == {
        "name": "/cpl/local/health/appointment-reminders",
        "retentionInDays": 30,
    }
    schedule = document["schedule"]
    assert schedule["ScheduleExpression"] == "cron(5 * * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"].endswith(":stateMachine:health-appointment-reminders")
    assert support(artifact)["schedule.overlap@/spec/schedule/overlap"] == "approximated"
    assert support(artifact)["retention@/spec/retention"] == "approximated"
    assert (
        json.loads(artifact.files["health-appointment-reminders.asl.json"])
        == document["definition"]
    )


def test_unencrypted_internal_workflow_logs_execution_data(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> None:
    artifact = render(example_workflows["retail/inventory-sync"], sfn_environment)
    config = artifact.document["configuration"]
    assert config["loggingConfiguration"]["includeExecutionData"] is True
    assert config["encryptionConfiguration"] == {"type": "AWS_OWNED_KEY"}


@pytest.mark.parametrize(
    ("cron", "aws", "exact"),
    [
        ("0 2 * * *", "0 2 * * ? *", True),
        ("0 * * * 1-5", "0 * ? * 2-6 *", True),
        ("0 3 * * 0", "0 3 ? * 1 *", True),
        ("*/15 * * * *", "*/15 * * * ? *", True),
        ("0 6 1 * 1", "0 6 1 * ? *", False),
    ],
)
def test_aws_cron(cron: str, aws: str, exact: bool) -> None:
    assert aws_cron(cron) == (aws, exact)


def test_log_retention_rounds_up_to_an_allowed_value() -> None:
    assert log_retention_days(30 * 86400) == 30
    assert log_retention_days(31 * 86400) == 60
    assert log_retention_days(400 * 86400) == 400
    assert log_retention_days(100000 * 86400) == 3653


def test_missing_binding_names_workflow_step_and_environment(
    make_workflow: MakeWorkflow, sfn_environment: Environment
) -> None:
    workflow = make_workflow(
        "start: a\nsteps: [{name: a, type: task, activity: nowhere.bound, end: true}]"
    )
    with pytest.raises(BindingError) as error:
        render(workflow, sfn_environment)
    message = str(error.value)
    assert "retail/demo" in message and "'a'" in message and "'local'" in message
    assert "nowhere.bound" in message


# --- every example: statelint, moto's parser, golden files ------------------------------


@pytest.fixture(scope="module")
def rendered_examples(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> dict[str, Artifact]:
    return {key: render(w, sfn_environment) for key, w in sorted(example_workflows.items())}


def test_selected_examples_render_on_the_local_target(
    example_workflows: dict[str, Workflow], local_environment: Environment
) -> None:
    target = local_environment.target("sfn-local")
    selected = [w for w in example_workflows.values() if target.select.matches(w)]
    assert len(selected) >= 4
    for workflow in selected:
        TRANSLATOR.render(workflow, target, local_environment)


def test_every_example_passes_statelint(
    rendered_examples: dict[str, Artifact], tmp_path: Path
) -> None:
    files = []
    for artifact in rendered_examples.values():
        for name, text in artifact.files.items():
            if name.endswith(".asl.json"):
                (tmp_path / name).write_text(text, encoding="utf-8")
                files.append(str(tmp_path / name))
    statelint = Path(sys.executable).with_name("statelint")
    result = subprocess.run([str(statelint), *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_example_parses_with_motos_asl_parser(
    rendered_examples: dict[str, Artifact],
) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    for key, artifact in rendered_examples.items():
        try:
            AmazonStateLanguageParser.parse(json.dumps(artifact.document["definition"]))
        except Exception as error:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{key}: moto rejects the ASL: {error}")


def test_rendering_is_deterministic(
    example_workflows: dict[str, Workflow], sfn_environment: Environment
) -> None:
    workflow = example_workflows["finance/vendor-payout"]
    first, second = render(workflow, sfn_environment), render(workflow, sfn_environment)
    assert first.files == second.files and first.digest == second.digest


def _golden(artifact: Artifact) -> str:
    return pretty_json(
        {
            "resource": artifact.resource,
            "document": artifact.document,
            "support": [s.to_json() for s in artifact.support],
        }
    )


def test_golden_files(rendered_examples: dict[str, Artifact]) -> None:
    regenerate = os.environ.get("CPL_REGENERATE") == "1" and not os.environ.get("CI")
    mismatched = []
    for key, artifact in rendered_examples.items():
        path = GOLDEN / f"{key}.json"
        text = _golden(artifact)
        if regenerate:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            mismatched.append(key)
    assert not mismatched, (
        f"rendered ASL differs from tests/golden/stepfunctions for {mismatched}; "
        "regenerate with CPL_REGENERATE=1 if the change is intended"
    )
