"""The dead-letter hand-off of a state machine: an `sqs:sendMessage` task that builds the
dead-letter CloudEvent (docs/runtime.md, "Dead letters") in ASL.

The message has the shape `controlplane.deadletters.message` builds for Temporal; what ASL
provides fills it at run time: `States.UUID()` the id, `$$.Execution.Id` the run id,
`$$.Execution.Input` the input, `$$.State.EnteredTime` the time, the caught failure (kept at
the error path) the error and cause. ASL cannot compute the trace: the message's `trace` is
null and `cpl dlq show` reads it from the execution history.
"""

from __future__ import annotations

from typing import Any

from controlplane.deadletters.message import EVENT_TYPE, source_of
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Workflow

SEND_ATTEMPTS = 3
"""sendMessage attempts (with backoff) before the run fails without its dead letter."""


def dead_letter_state(
    workflow: Workflow,
    target: Target,
    environment: Environment,
    queue_url: str,
    error_path: str,
    failed: str,
) -> dict[str, Any]:
    """The Task state sending the dead letter, then going to `failed` (also when it fails:
    a run never hangs on its hand-off)."""
    meta = workflow.metadata
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {
            "QueueUrl": queue_url,
            "MessageBody": {
                "specversion": "1.0",
                "id.$": "States.UUID()",
                "source": source_of(environment.name, target.name),
                "type": EVENT_TYPE,
                "subject": workflow.key,
                "time.$": "$$.State.EnteredTime",
                "datacontenttype": "application/json",
                "data": {
                    "workflow": workflow.key,
                    "version": meta.version,
                    "target": target.name,
                    "engine": "stepfunctions",
                    "runId.$": "$$.Execution.Id",
                    "input.$": "$$.Execution.Input",
                    "error.$": f"{error_path}.Error",
                    "cause.$": f"{error_path}.Cause",
                    "trace": None,
                },
            },
        },
        "ResultPath": None,
        "Retry": [
            {
                "ErrorEquals": ["States.ALL"],
                "MaxAttempts": SEND_ATTEMPTS - 1,
                "IntervalSeconds": 1,
                "BackoffRate": 2.0,
            }
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": failed}],
        "Next": failed,
    }
