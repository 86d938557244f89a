"""Circuit breakers carried out by the state machine itself (docs/runtime.md, "Circuit breakers").

A task with `circuitBreaker: {failureThreshold: N, resetTimeout: D}` shares one circuit with
every run on the same target that calls the same bound activity: an item of the target's
DynamoDB table (`circuit_table`), keyed `<target>/<activity>`, with `failures` (consecutive
failed calls) and `openUntil` (0 when closed, else the second the circuit may be tried again,
counted as in `clock.py`).

The task (`<step>-call`) runs inside a one-branch Parallel state named after the step, which
takes over the step's catchers and transitions, so the step's `catch` sees both the task's
own errors and `CircuitOpen`:

    closed?  conditional updateItem: openUntil absent or 0          ──yes──▶ task
       │ no (ConditionalCheckFailed)
    trial?   conditional updateItem: openUntil <= now,
             then openUntil = now + D (one caller wins the trial)   ──yes──▶ task
       │ no
    CircuitOpen (Fail state: the activity is not called)

    task ──success──▶ failures = 0, openUntil = 0 (closed)
         ──failure (after the task's retries)──▶ failures + 1;
              if failures >= N: openUntil = now + D (open); then the task's error again

The Parallel's result is its branch's document (`OutputPath: $[0]`), so the data flow is the
task's. Every DynamoDB call is a condition or an atomic update, so concurrent runs agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.engines.stepfunctions import reraise
from controlplane.engines.stepfunctions.clock import now_text
from controlplane.spec.environment import Target

State = dict[str, Any]

CIRCUIT_OPEN = "CircuitOpen"
"""The catchable error of a call refused by an open circuit."""

BREAKER_COMMENT = "cpl circuit breaker"
"""Marks the breaker's DynamoDB states, so `cpl apply` finds the tables they need."""

CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
CAUGHT = "$.cplCaught"
"""Where the branch keeps the task's error on the way to recording it (branch-private)."""


def circuit_table(target: Target) -> str:
    """The DynamoDB table holding the circuits of `target`'s runs (`circuitTable`)."""
    return target.circuit_table or f"cpl-circuits-{target.name}"


def circuit_key(target: Target, activity: str) -> str:
    return f"{target.name}/{activity}"


def guarded(
    step_name: str,
    task: State,
    after_task: list[tuple[str, State]],
    *,
    table: str,
    key: str,
    threshold: int,
    reset_seconds: int,
    invent: Callable[[str], str],
) -> State:
    """The Parallel state (to be named `step_name`) running `task` (no Next/Catch yet, named
    `<step>-call` in the branch) behind the circuit `key` of `table`. `after_task` are states
    that follow the task in order (e.g. an unwrapping Pass), each without Next/End."""
    names = {
        part: invent(f"{step_name}-circuit-{part}")
        for part in ("closed", "trial", "open", "success", "failure", "opening", "failed")
    }
    task_name = names["call"] = invent(f"{step_name}-call")
    item = {"TableName": table, "Key": {"id": {"S": key}}}

    def update(expression: str, values: dict[str, Any], condition: str | None = None) -> State:
        parameters: dict[str, Any] = {
            **item,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            parameters["ConditionExpression"] = condition
        return {
            "Type": "Task",
            "Comment": BREAKER_COMMENT,
            "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": parameters,
            "ResultPath": None,
        }

    now = {"N.$": now_text()}
    reset = {"N": str(reset_seconds)}
    refused = [{"ErrorEquals": [CONDITION_FAILED], "ResultPath": None}]
    states: dict[str, State] = {
        names["closed"]: {
            **update(
                "SET calls = if_not_exists(calls, :zero)",
                {":zero": {"N": "0"}},
                "attribute_not_exists(openUntil) OR openUntil = :zero",
            ),
            "Catch": [{**refused[0], "Next": names["trial"]}],
            "Next": task_name,
        },
        names["trial"]: {
            **update(
                "SET openUntil = :now + :reset",
                {":now": now, ":reset": reset},
                "openUntil <= :now",
            ),
            "Catch": [{**refused[0], "Next": names["open"]}],
            "Next": task_name,
        },
        names["open"]: {
            "Type": "Fail",
            "Error": CIRCUIT_OPEN,
            "Cause": f"the circuit breaker {key} is open: the activity was not called",
        },
    }
    chain = [(task_name, task), *after_task]
    for position, (name, state) in enumerate(chain):
        following = chain[position + 1][0] if position + 1 < len(chain) else names["success"]
        states[name] = {**state, "Next": following}
    states[task_name]["Catch"] = [
        {"ErrorEquals": ["States.ALL"], "ResultPath": CAUGHT, "Next": names["failure"]}
    ]
    states[names["success"]] = {
        **update("SET failures = :zero, openUntil = :zero", {":zero": {"N": "0"}}),
        "End": True,
    }
    states[names["failure"]] = {
        **update("ADD failures :one", {":one": {"N": "1"}}),
        "Next": names["opening"],
    }
    states[names["opening"]] = {
        **update(
            "SET openUntil = :now + :reset",
            {":now": now, ":reset": reset, ":threshold": {"N": str(threshold)}},
            "failures >= :threshold",
        ),
        "Catch": [{**refused[0], "Next": names["failed"]}],
        "Next": names["failed"],
    }
    states.update(_rethrow(names["failed"], invent))
    return {
        "Type": "Parallel",
        "Branches": [{"StartAt": names["closed"], "States": states}],
        "ResultPath": "$",
        "OutputPath": "$[0]",
    }


def _rethrow(name: str, invent: Callable[[str], str]) -> dict[str, State]:
    """States that raise the caught error ({Error, Cause} at CAUGHT) again, starting at `name`.

    A Fail state may not raise an error named `States.*`: a timeout leaves the branch as
    `cpl.Timeout` (raised again outside, see `reraise.py`); any other `States.*` error
    becomes `TaskFailed` (its cause kept)."""
    timeout, other, raised = (
        invent(f"{name}-timeout"),
        invent(f"{name}-other"),
        invent(name + "-as-is"),
    )
    error = f"{CAUGHT}.Error"
    return {
        name: {
            "Type": "Choice",
            "Choices": [
                {"Variable": error, "StringEquals": reraise.TIMEOUT, "Next": timeout},
                {"Variable": error, "StringMatches": "States.*", "Next": other},
            ],
            "Default": raised,
        },
        timeout: {"Type": "Fail", "Error": reraise.ALIAS, "CausePath": f"{CAUGHT}.Cause"},
        other: {"Type": "Fail", "Error": "TaskFailed", "CausePath": f"{CAUGHT}.Cause"},
        raised: {"Type": "Fail", "ErrorPath": error, "CausePath": f"{CAUGHT}.Cause"},
    }


def breaker_tables(definition: dict[str, Any]) -> set[str]:
    """The circuit tables the breaker states of an ASL definition write to."""
    tables: set[str] = set()

    def visit(states: dict[str, Any]) -> None:
        for state in states.values():
            if state.get("Comment") == BREAKER_COMMENT:
                tables.add(str(state["Parameters"]["TableName"]))
            for branch in state.get("Branches", []):
                visit(branch.get("States", {}))
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                visit(processor.get("States", {}))

    visit(definition.get("States", {}))
    return tables


def ensure_circuit_table(dynamodb: Any, table: str) -> bool:
    """Create the circuit table `table` (string hash key `id`, on demand) unless it exists;
    whether it was created. Idempotent: a table created meanwhile by another apply is fine."""
    try:
        dynamodb.describe_table(TableName=table)
        return False
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "cpl:managed", "Value": "true"}],
        )
    except dynamodb.exceptions.ResourceInUseException:
        return False
    dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return True
