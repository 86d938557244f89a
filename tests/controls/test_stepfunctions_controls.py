"""Controls the rendered state machines carry out themselves, executed on moto's Step Functions:
idempotency keys on Lambda invocations, circuit breakers, input checks, injected faults."""

from __future__ import annotations

import base64
import calendar
import json
import textwrap
import time
import uuid
from typing import Any

import boto3
import pytest
import yaml

from controlplane.engines.runs import RunOutcome
from controlplane.engines.stepfunctions.breaker import circuit_table, ensure_circuit_table
from controlplane.engines.stepfunctions.runner import execution_outcome, start_execution
from controlplane.engines.stepfunctions.translate import StepFunctionsTranslator
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

pytestmark = pytest.mark.integration

TRANSLATOR = StepFunctionsTranslator()
ACCOUNT = "123456789012"
QUEUE = f"cpl-flaky-{uuid.uuid4().hex[:8]}"

ENVIRONMENT = f"""
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: controls}}
spec:
  tier: development
  targets:
    - name: sfn-controls
      engine: stepfunctions
      region: us-east-1
      endpoint: http://127.0.0.1:4566
      roleArn: arn:aws:iam::{ACCOUNT}:role/cpl-sfn
  bindings:
    activities:
      echo:
        stepfunctions: {{resource: "arn:aws:lambda:us-east-1:{ACCOUNT}:function:echo"}}
      flaky:
        stepfunctions: {{resource: "arn:aws:states:::sqs:sendMessage"}}
"""


def _clients(endpoint: str) -> dict[str, Any]:
    options = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return {name: boto3.client(name, **options) for name in ("stepfunctions", "dynamodb", "sqs")}


@pytest.fixture(scope="module")
def aws(moto_endpoint: str) -> dict[str, Any]:
    return _clients(moto_endpoint)


@pytest.fixture(scope="module")
def environment(moto_endpoint: str) -> Environment:
    document = yaml.safe_load(ENVIRONMENT)
    document["spec"]["targets"][0]["endpoint"] = moto_endpoint
    return Environment.model_validate(document)


@pytest.fixture(scope="module")
def target(environment: Environment) -> Target:
    return environment.target("sfn-controls")


def workflow(name: str, spec: str) -> Workflow:
    return Workflow.model_validate(
        {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": name, "tenant": "controls", "version": "1.0.0", "owner": "t"},
            "spec": yaml.safe_load(textwrap.dedent(spec)),
        }
    )


def deploy(aws: dict[str, Any], flow: Workflow, target: Target, env: Environment) -> Any:
    artifact = TRANSLATOR.render(flow, target, env)
    aws["stepfunctions"].create_state_machine(
        name=artifact.resource,
        definition=json.dumps(artifact.document["definition"]),
        roleArn=target.role_arn,
        type="STANDARD",
    )
    return artifact


def run(
    aws: dict[str, Any], flow: Workflow, target: Target, run_input: Any
) -> tuple[RunOutcome, list[dict[str, Any]]]:
    client = aws["stepfunctions"]
    execution = start_execution(client, target, flow, run_input)
    outcome = execution_outcome(client, execution, 30.0, poll=0.05)
    history = client.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return outcome, history


def scheduled(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service calls an execution made (TaskScheduled events), with their parameters."""
    return [
        {
            **event["taskScheduledEventDetails"],
            "parameters": json.loads(event["taskScheduledEventDetails"]["parameters"]),
        }
        for event in history
        if event["type"] == "TaskScheduled"
    ]


# --- idempotency keys ----------------------------------------------------------------------

KEYED = """
start: reserve
steps:
  - name: reserve
    type: task
    activity: echo
    idempotencyKey: $.order.id
    parameters: {sku: $.sku}
    resultPath: $.reservation
    retry: {maxAttempts: 2, initialInterval: 1s}
    circuitBreaker: {failureThreshold: 3, resetTimeout: 1m}
    next: confirm
  - name: confirm
    type: task
    activity: echo
    idempotencyKey: $.sku
    end: true
"""


def test_idempotency_key_travels_with_the_lambda_invocation(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    flow = workflow("keyed", KEYED)
    deploy(aws, flow, target, environment)
    ensure_circuit_table(aws["dynamodb"], circuit_table(target))  # `reserve` has a breaker
    order = {"order": {"id": 'o-"42'}, "sku": "sku-1"}
    outcome, history = run(aws, flow, target, order)

    # the data document is what the plain function ARN gives: the event is the task input,
    # the result the function's return value
    assert outcome["status"] == "succeeded", outcome
    assert outcome["output"] == {"sku": "sku-1", "reservation": {"sku": "sku-1"}} | {
        "order": {"id": 'o-"42'}
    }
    assert [s for s in outcome["trace"] if s in ("reserve", "confirm")] == ["reserve", "confirm"]
    calls = [call for call in scheduled(history) if call["resourceType"] == "lambda"]
    assert [call["resource"] for call in calls] == ["invoke", "invoke"]
    contexts = [json.loads(base64.b64decode(call["parameters"]["ClientContext"])) for call in calls]
    assert contexts == [
        {"custom": {"idempotencyKey": 'o-"42'}},
        {"custom": {"idempotencyKey": "sku-1"}},
    ]
    assert calls[0]["parameters"]["Payload"] == {"sku": "sku-1"}
    assert calls[1]["parameters"]["Payload"] == order | {"reservation": {"sku": "sku-1"}}


# --- circuit breakers ----------------------------------------------------------------------

BREAKER = """
start: call
steps:
  - name: call
    type: task
    activity: flaky
    parameters: {{QueueUrl: "{queue}", MessageBody: $.message}}
    resultPath: $.sent
    retry: {{maxAttempts: 2, initialInterval: 1s}}
    circuitBreaker: {{failureThreshold: 2, resetTimeout: 2s}}
    catch:
      - {{errors: [CircuitOpen], next: short-circuited, resultPath: $.error}}
    next: done
  - {{name: short-circuited, type: fail, error: ShortCircuited}}
  - {{name: done, type: succeed}}
"""


def _now() -> int:
    """Seconds since 2020-01-01, as the state machine counts them (clock.py)."""
    return int(time.time()) - calendar.timegm((2020, 1, 1, 0, 0, 0))


def test_circuit_breaker_opens_fails_fast_and_recovers_after_the_reset_timeout(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    queue_url = f"{target.endpoint}/{ACCOUNT}/{QUEUE}"
    flow = workflow("breaker", BREAKER.format(queue=queue_url))
    deploy(aws, flow, target, environment)
    table = circuit_table(target)
    assert ensure_circuit_table(aws["dynamodb"], table) in (True, False)
    assert ensure_circuit_table(aws["dynamodb"], table) is False  # idempotent
    key = {"id": {"S": "sfn-controls/flaky"}}

    def item() -> dict[str, Any]:
        found: dict[str, Any] = aws["dynamodb"].get_item(
            TableName=table, Key=key, ConsistentRead=True
        )["Item"]
        return found

    # closed: two failed calls (each after its retry) open the circuit
    for expected_failures in (1, 2):
        outcome, history = run(aws, flow, target, {"message": "m"})
        assert outcome["status"] == "failed" and outcome["error"]
        assert (outcome["error"] or {}).get("error") != "ShortCircuited"
        sqs_calls = [c for c in scheduled(history) if c["resourceType"] == "sqs"]
        assert len(sqs_calls) == 2  # the first attempt and its retry
        assert int(item()["failures"]["N"]) == expected_failures
    opened_until = int(item()["openUntil"]["N"])
    assert 1 <= opened_until - _now() <= 3

    # open: the call fails at once with CircuitOpen, caught by the step's catch, and the
    # activity is not called
    outcome, history = run(aws, flow, target, {"message": "m"})
    assert (
        outcome["status"] == "failed" and (outcome["error"] or {}).get("error") == "ShortCircuited"
    )
    assert "short-circuited" in outcome["trace"]
    assert not [c for c in scheduled(history) if c["resourceType"] == "sqs"]

    # after resetTimeout one trial call is made; it fails, so the circuit opens again
    while _now() < opened_until:
        time.sleep(0.2)
    outcome, history = run(aws, flow, target, {"message": "m"})
    assert (outcome["error"] or {}).get("error") != "ShortCircuited"
    assert len([c for c in scheduled(history) if c["resourceType"] == "sqs"]) == 2
    reopened_until = int(item()["openUntil"]["N"])
    assert reopened_until > opened_until
    outcome, _ = run(aws, flow, target, {"message": "m"})
    assert (outcome["error"] or {}).get("error") == "ShortCircuited"

    # the activity recovers; after resetTimeout the trial call succeeds and closes the circuit
    aws["sqs"].create_queue(QueueName=QUEUE)
    while _now() < reopened_until:
        time.sleep(0.2)
    outcome, history = run(aws, flow, target, {"message": "m"})
    assert outcome["status"] == "succeeded", outcome
    assert outcome["output"]["message"] == "m" and "MessageId" in outcome["output"]["sent"]
    assert item()["failures"]["N"] == "0" and item()["openUntil"]["N"] == "0"
    outcome, _ = run(aws, flow, target, {"message": "m"})
    assert outcome["status"] == "succeeded"


def test_apply_creates_the_circuit_table_of_the_target(
    aws: dict[str, Any], moto_endpoint: str, environment: Environment
) -> None:
    from controlplane.engines.stepfunctions.client import StepFunctionsEngine

    named = environment.target("sfn-controls").model_copy(
        update={"circuit_table": f"circuits-{uuid.uuid4().hex[:8]}"}
    )
    flow = workflow("applied-breaker", BREAKER.format(queue="https://example.com/q"))
    artifact = TRANSLATOR.render(flow, named, environment)
    engine = StepFunctionsEngine(named, environment)
    engine.create(artifact)
    described = aws["dynamodb"].describe_table(TableName=named.circuit_table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    live = engine.read(artifact)
    assert live is not None
    engine.update(artifact, live)  # the table exists: nothing to create, no error


# --- input validation ----------------------------------------------------------------------

CHECKED = """
start: greet
input:
  schema:
    type: object
    required: [orderId, customer]
    properties:
      orderId: {type: string, pattern: "^o-"}
      total: {type: [number, "null"]}
      customer:
        type: object
        required: [id]
        properties: {id: {type: string}, vip: {type: boolean}}
steps:
  - {name: greet, type: task, activity: echo, end: true}
"""


def test_state_machine_refuses_invalid_input_before_any_task(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    flow = workflow("checked", CHECKED)
    deploy(aws, flow, target, environment)
    for bad, pointer in (
        ({"bogus": 1}, "/orderId"),
        ({"orderId": "o-1", "customer": {"vip": True}}, "/customer/id"),
        ({"orderId": 7, "customer": {"id": "c"}}, "/orderId"),
        ({"orderId": "o-1", "customer": {"id": "c", "vip": "yes"}}, "/customer/vip"),
        ({"orderId": "o-1", "total": "12", "customer": {"id": "c"}}, "/total"),
    ):
        outcome, history = run(aws, flow, target, bad)
        assert outcome["status"] == "failed", bad
        assert outcome["error"] == {
            "error": "InputInvalid",
            "cause": (outcome["error"] or {}).get("cause"),
        }
        assert f": {pointer}: " in str((outcome["error"] or {}).get("cause")), outcome["error"]
        assert "greet" not in outcome["trace"] and not scheduled(history)
    good = {"orderId": "o-1", "total": None, "customer": {"id": "c", "vip": False}}
    outcome, _ = run(aws, flow, target, good)
    assert outcome["status"] == "succeeded" and outcome["output"] == good
    assert "greet" in outcome["trace"]
    # beyond ASL: the pattern is checked by cpl run only (input.schema stays approximated)
    outcome, _ = run(aws, flow, target, {**good, "orderId": "x-1"})
    assert outcome["status"] == "succeeded"
    records = {r.feature: r for r in TRANSLATOR.render(flow, target, environment).support}
    assert records["input.schema"].support == "approximated"
    assert "patterns" in records["input.schema"].reason


def test_cpl_run_refuses_invalid_input_before_starting(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from controlplane.cli import run as cpl

    (tmp_path / "workflows" / "controls").mkdir(parents=True)
    (tmp_path / "environments").mkdir()
    document = {
        "apiVersion": "cpl.dev/v1",
        "kind": "Workflow",
        "metadata": {"name": "checked", "tenant": "controls", "version": "1.0.0", "owner": "t"},
        "spec": yaml.safe_load(CHECKED),
    }
    (tmp_path / "workflows" / "controls" / "checked.yaml").write_text(yaml.safe_dump(document))
    env = yaml.safe_load(ENVIRONMENT)
    env["spec"]["targets"][0]["endpoint"] = "http://127.0.0.1:9"  # nothing answers there
    (tmp_path / "environments" / "controls.yaml").write_text(yaml.safe_dump(env))

    code = cpl(
        [
            "run",
            "controls/checked",
            "--env",
            "controls",
            "--repo",
            str(tmp_path),
            "--input",
            '{"bogus": 1, "orderId": "x-1", "customer": {"vip": 1}}',
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "no run started" in err
    for line in (
        "/orderId: does not satisfy pattern",
        "/customer/id: is required",
        "/customer/vip: does not satisfy type",
    ):
        assert line in err, err
    assert "127.0.0.1:9" not in err  # the engine was never called


# --- fault injection -----------------------------------------------------------------------

SAGA = """
start: reserve
steps:
  - name: reserve
    type: task
    activity: echo
    resultPath: $.reservation
    compensation: release
    next: charge
  - name: charge
    type: task
    activity: echo
    retry: {maxAttempts: 3, initialInterval: 1s, backoffRate: 1.0}
    resultPath: $.charge
    next: done
  - {name: done, type: succeed}
  - {name: release, type: task, activity: echo, resultPath: $.released}
onError: {compensate: true}
"""


def test_injected_faults_run_the_specs_retry_and_compensation_for_real(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    from controlplane.engines.faults import FaultPlan
    from controlplane.engines.stepfunctions.runner import StepFunctionsRunner

    flow = workflow("faulted-saga", SAGA)
    deploy(aws, flow, target, environment)
    runner = StepFunctionsRunner()
    plan = FaultPlan.model_validate(
        {"faults": [{"step": "charge", "error": "PaymentDeclined", "cause": "test"}]}
    )
    run_id = runner.start(flow, target, environment, {"id": 1}, faults=plan)
    outcome = runner.outcome(target, run_id, 30.0)
    assert outcome["status"] == "failed" and outcome["error"]
    assert (outcome["error"] or {}).get("error") == "PaymentDeclined"
    steps = [s for s in outcome["trace"] if s in ("reserve", "charge", "release")]
    assert steps == ["reserve", "charge", "release"]
    events = dict(outcome).get("events")
    assert events == [
        {"step": "charge", "kind": "fault", "attempt": 1, "error": "PaymentDeclined"},
        {"step": "charge", "kind": "attempt-failed", "attempt": 1, "error": "PaymentDeclined"},
        {"step": "charge", "kind": "retry", "attempt": 2, "error": None},
        {"step": "charge", "kind": "fault", "attempt": 2, "error": "PaymentDeclined"},
        {"step": "charge", "kind": "attempt-failed", "attempt": 2, "error": "PaymentDeclined"},
        {"step": "charge", "kind": "retry", "attempt": 3, "error": None},
        {"step": "charge", "kind": "fault", "attempt": 3, "error": "PaymentDeclined"},
        {"step": "charge", "kind": "attempt-failed", "attempt": 3, "error": "PaymentDeclined"},
        {"step": "reserve", "kind": "compensated", "attempt": 1, "error": None},
    ]
    # the deployed state machine is untouched: a plain run succeeds
    plain = runner.outcome(target, runner.start(flow, target, environment, {"id": 1}), 30.0)
    assert plain["status"] == "succeeded"


BREAKER_SAGA = """
start: call
steps:
  - name: call
    type: task
    activity: echo
    timeout: 1s
    retry: {maxAttempts: 3, initialInterval: 1s, backoffRate: 1.0}
    circuitBreaker: {failureThreshold: 1, resetTimeout: 1h}
    resultPath: $.called
    catch:
      - {errors: [CircuitOpen], next: open, resultPath: $.error}
      - {errors: [Timeout], next: timed-out, resultPath: $.error}
    next: done
  - {name: open, type: fail, error: WasOpen}
  - {name: timed-out, type: succeed}
  - {name: done, type: succeed}
"""


def test_faults_on_some_attempts_delays_and_timeouts_reach_the_breaker_and_catch(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    from controlplane.engines.faults import FaultPlan
    from controlplane.engines.stepfunctions.runner import StepFunctionsRunner

    runner = StepFunctionsRunner()
    ensure_circuit_table(aws["dynamodb"], circuit_table(target))
    flow = workflow("faulted-breaker", BREAKER_SAGA)
    deploy(aws, flow, target, environment)

    # attempt 1 fails, attempt 2 starts 1 s late and succeeds: the retry policy recovers
    recovering = FaultPlan.model_validate(
        {
            "faults": [
                {"step": "call", "attempts": [1], "error": "Flaky"},
                {"step": "call", "attempts": [2], "delay": "1s"},
            ]
        }
    )
    started = time.monotonic()
    outcome = runner.outcome(
        target, runner.start(flow, target, environment, {"n": 1}, faults=recovering), 30.0
    )
    assert outcome["status"] == "succeeded", outcome
    assert outcome["output"] == {"n": 1, "called": {"n": 1}}
    assert time.monotonic() - started >= 2  # the retry interval, then the delay
    assert dict(outcome).get("events") == [
        {"step": "call", "kind": "fault", "attempt": 1, "error": "Flaky"},
        {"step": "call", "kind": "attempt-failed", "attempt": 1, "error": "Flaky"},
        {"step": "call", "kind": "retry", "attempt": 2, "error": None},
        {"step": "call", "kind": "fault", "attempt": 2, "error": None},
    ]

    # every attempt times out: the step's Timeout catcher takes it, the breaker opens
    timing_out = FaultPlan.model_validate({"faults": [{"step": "call", "timeout": True}]})
    outcome = runner.outcome(
        target, runner.start(flow, target, environment, {"n": 2}, faults=timing_out), 30.0
    )
    assert outcome["status"] == "succeeded" and "timed-out" in outcome["trace"], outcome
    assert (outcome["output"] or {})["error"]["Error"] == "States.Timeout"
    kinds = [(e["kind"], e["attempt"], e["error"]) for e in dict(outcome).get("events", [])]
    assert kinds == [
        ("fault", 1, "Timeout"), ("attempt-failed", 1, "Timeout"), ("retry", 2, None),
        ("fault", 2, "Timeout"), ("attempt-failed", 2, "Timeout"), ("retry", 3, None),
        ("fault", 3, "Timeout"), ("attempt-failed", 3, "Timeout"), ("caught", 3, None),
    ]  # fmt: skip

    # the next run finds the circuit open: CircuitOpen is caught, the call is not made
    outcome = runner.outcome(
        target, runner.start(flow, target, environment, {"n": 3}, faults=timing_out), 30.0
    )
    assert outcome["status"] == "failed" and (outcome["error"] or {}).get("error") == "WasOpen"
    assert dict(outcome).get("events") == [
        {"step": "call", "kind": "circuit-open", "attempt": 1, "error": "CircuitOpen"},
        {"step": "call", "kind": "caught", "attempt": 1, "error": None},
    ]


def test_outages_and_faults_outside_development_are_refused(
    aws: dict[str, Any], target: Target, environment: Environment
) -> None:
    from controlplane.engines.faults import FaultPlan
    from controlplane.engines.stepfunctions.runner import StepFunctionsRunner
    from controlplane.errors import EngineError

    flow = workflow("refused-faults", SAGA)
    deploy(aws, flow, target, environment)
    outage = {"outages": [{"after": "reserve", "stop": "worker", "for": "1s"}]}
    with pytest.raises(EngineError, match="outages"):
        StepFunctionsRunner().start(
            flow, target, environment, {}, faults=FaultPlan.model_validate(outage)
        )
    some = {"faults": [{"step": "charge", "attempts": [1], "error": "E"}]}
    production = environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"tier": "production"})}
    )
    with pytest.raises(EngineError, match="development"):
        StepFunctionsRunner().start(
            flow, target, production, {}, faults=FaultPlan.model_validate(some)
        )
