"""Runs with a fault plan on a Step Functions target: the run's own copy of the state machine
(`faults.py`), started, and the events of its outcome read from the execution history."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.engines.faults import FaultPlan
from controlplane.engines.runs import RunOutcome
from controlplane.engines.stepfunctions.aws import state_machine_arn
from controlplane.engines.stepfunctions.faults import fault_events, faulted_definition
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow


def start_with_faults(
    client: Any,
    workflow: Workflow,
    target: Target,
    environment: Environment,
    run_input: Any,
    plan: FaultPlan,
) -> str:
    """Create the run's faulted copy of the deployed state machine and start it; the
    execution ARN. Development environments only."""
    if environment.tier != "development":
        raise EngineError(
            f"fault injection is for development environments; {environment.name} is "
            f"{environment.tier}"
        )
    deployed = state_machine_arn(target, workflow)
    try:
        described = client.describe_state_machine(stateMachineArn=deployed)
        definition = json.loads(described["definition"])
        copy = faulted_definition(workflow, definition, plan)
        name = f"{workflow.metadata.tenant}-{workflow.metadata.name}"[:60]
        created = client.create_state_machine(
            name=f"{name}-faults-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(copy),
            roleArn=described["roleArn"],
            type="STANDARD",
            tags=[{"key": "cpl:faults", "value": "true"}],
        )
        execution = client.start_execution(
            stateMachineArn=created["stateMachineArn"],
            name=uuid.uuid4().hex,
            input=json.dumps(run_input),
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            raise EngineError(
                f"workflow '{workflow.key}' is not deployed to {target.name}: run cpl apply"
            ) from None
        raise EngineError(f"Step Functions refused the fault run: {error}") from None
    except BotoCoreError as error:
        raise EngineError(f"cannot reach Step Functions of {target.name}: {error}") from None
    return str(execution["executionArn"])


def with_events(client: Any, execution_arn: str, outcome: RunOutcome) -> RunOutcome:
    """`outcome` with the `events` the faults caused (from the execution history)."""
    try:
        machine = client.describe_state_machine_for_execution(executionArn=execution_arn)
        history: list[dict[str, Any]] = []
        paginator = client.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn, reverseOrder=False):
            history.extend(page.get("events", []))
    except (ClientError, BotoCoreError) as error:
        raise EngineError(f"cannot read execution {execution_arn}: {error}") from None
    events = fault_events(json.loads(machine["definition"]), history)
    return cast(RunOutcome, {**outcome, "events": events})
