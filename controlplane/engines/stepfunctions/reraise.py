"""Timeouts carried across Parallel and Map states.

A state machine raises `States.Timeout` only from a task that times out; a Fail state may not
raise an error named `States.*`, and the emulator does not let one out of a Parallel branch or
a Map iteration either. So where a timeout must cross such a boundary (a circuit breaker's
branch, a fault injection's Map), it crosses as `cpl.Timeout` and is raised again outside by a
callback task that nobody answers, which times out after one second with the catchers the
timeout should meet.
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]

TIMEOUT = "States.Timeout"
ALIAS = "cpl.Timeout"
"""The name a timeout crosses a Parallel or Map boundary under."""


def timing_out(catch: list[State]) -> State:
    """A task that times out after one second (nobody has its token), with `catch`."""
    state: State = {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
        "Parameters": {
            "Entries": [
                {
                    "Source": "cpl",
                    "DetailType": "cpl.timeout",
                    "Detail": {"taskToken.$": "$$.Task.Token"},
                }
            ]
        },
        "TimeoutSeconds": 1,
        "End": True,
    }
    if catch:
        state["Catch"] = catch
    return state


def with_alias(retriers: list[State]) -> list[State]:
    """Retriers that treat `cpl.Timeout` as they treat `States.Timeout`."""
    return [
        {**r, "ErrorEquals": [*r["ErrorEquals"], ALIAS]} if TIMEOUT in r["ErrorEquals"] else r
        for r in retriers
    ]
