"""Runs on a Step Functions target: start an execution, wait for it, read its trace
(`StepFunctionsRunner`, the bundle's runner).

The state machine of a workflow is `<tenant>-<name>` in the target's region and in the account
of its `roleArn`; `cpl apply` creates it. The trace is the list of states in the order they
were entered (`*StateEntered` events of the execution history), the output the execution's
output document.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from controlplane.engines.faults import FaultPlan
from controlplane.engines.runs import RunOutcome, RunRecord, RunState
from controlplane.engines.stepfunctions.aws import aws_client, state_machine_arn
from controlplane.engines.stepfunctions.timings import (
    finished_executions,
    history_events,
    state_timings,
)
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

_STATUS: dict[str, RunState] = {
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "cancelled",
    "PENDING_REDRIVE": "failed",
}
_CPL_ERRORS = {"States.Timeout": "Timeout", "States.HeartbeatTimeout": "Timeout"}
"""Engine error names reported as the spec's (a timed-out attempt is `Timeout` everywhere)."""
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def client_for(target: Target) -> Any:
    """A boto3 Step Functions client for the target (botocore retries on: runs poll)."""
    return aws_client(target, "stepfunctions", botocore_retries=True)


def start_execution(client: Any, target: Target, workflow: Workflow, run_input: Any) -> str:
    """Start an execution; its ARN. EngineError when the state machine is not deployed."""
    arn = state_machine_arn(target, workflow)
    name = f"{workflow.metadata.tenant}-{workflow.metadata.name}"[:67] + "-" + uuid.uuid4().hex[:12]
    try:
        response = client.start_execution(
            stateMachineArn=arn, name=name, input=json.dumps(run_input)
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("StateMachineDoesNotExist", "ResourceNotFoundException"):
            raise EngineError(
                f"workflow '{workflow.key}' is not deployed to {target.name}: run cpl apply "
                f"(no state machine {arn})"
            ) from None
        raise EngineError(f"Step Functions refused to start {arn}: {error}") from None
    except NoCredentialsError:
        raise EngineError(
            f"no AWS credentials for target {target.name}: configure a profile or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except BotoCoreError as error:
        where = target.endpoint or f"Step Functions in {target.region}"
        raise EngineError(f"cannot reach {where}: {error}") from None
    return str(response["executionArn"])


def execution_outcome(
    client: Any, execution_arn: str, timeout: float | None, poll: float = 0.25
) -> RunOutcome:
    """Poll `describe_execution` until the execution closes (or `timeout` seconds pass)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            described = client.describe_execution(executionArn=execution_arn)
            status: RunState = _STATUS.get(described["status"], "failed")
            if status != "running" or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(poll)
        events = history_events(client, execution_arn)
    except (ClientError, BotoCoreError) as failure:
        raise EngineError(f"cannot read execution {execution_arn}: {failure}") from None
    output = None
    if status == "succeeded" and described.get("output") is not None:
        output = json.loads(described["output"])
    error = None
    if described["status"] == "TIMED_OUT":
        error = {"error": "Timeout", "cause": "the run exceeded its timeout"}
    elif status == "failed":
        name = str(described.get("error") or described["status"])
        error = {"error": _CPL_ERRORS.get(name, name), "cause": str(described.get("cause") or "")}
    steps = state_timings(events)
    trace = [step["name"] for step in steps]
    return {"status": status, "output": output, "error": error, "trace": trace, "steps": steps}


class StepFunctionsRunner:
    """The bundle's runner: executions of a target's state machines (no signals: a waiting
    state machine is resumed through its task token, not by cpl)."""

    signals = False

    def __init__(self, environment: Environment | None = None, repo: Any = None) -> None:
        self.environment = environment  # `repo`: the runner contract's, unused here

    def start(
        self,
        workflow: Workflow,
        target: Target,
        environment: Environment,
        run_input: Any,
        *,
        faults: FaultPlan | None = None,
    ) -> str:
        client = client_for(target)
        if faults is not None and (faults.faults or faults.outages):
            from controlplane.engines.stepfunctions.fault_runs import start_with_faults

            return start_with_faults(client, workflow, target, environment, run_input, faults)
        return start_execution(client, target, workflow, run_input)

    def outcome(self, target: Target, run_id: str, timeout: float) -> RunOutcome:
        client = client_for(target)
        outcome = execution_outcome(client, run_id, timeout)
        if ":execution:" in run_id and "-faults-" in run_id.split(":")[-2]:
            from controlplane.engines.stepfunctions.fault_runs import with_events

            return with_events(client, run_id, outcome)
        return outcome

    def signal(self, target: Target, run_id: str, name: str, args: list[Any]) -> None:
        raise EngineError(f"Step Functions executions take no signals (target {target.name})")

    def runs(
        self,
        workflow: Workflow,
        target: Target,
        *,
        limit: int,
        since: dt.datetime | None = None,
        timings: int = 0,
    ) -> list[RunRecord]:
        """The closed executions of the workflow's state machine (`timings.finished_executions`;
        runs of `cpl run --inject` run on copies of it and are not among them)."""
        arn = state_machine_arn(target, workflow)
        return finished_executions(
            client_for(target), arn, limit=limit, since=since, timings=timings
        )
