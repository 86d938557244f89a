"""Named step failures: what `catch.errors` and `retry.nonRetryable` match.

Imported by the workflow sandbox: standard library and temporalio only.
"""

from __future__ import annotations

import asyncio

from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError


class StepFailure(Exception):
    """An error with a name, as `catch.errors` and `retry.nonRetryable` see it.

    `retryable` is false when the activity raised it as non-retryable (never tried again).
    """

    def __init__(self, error: str, cause: str, *, retryable: bool = True) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause
        self.retryable = retryable

    def as_json(self) -> dict[str, str]:
        return {"Error": self.error, "Cause": self.cause}


def failure_of(error: ActivityError) -> StepFailure:
    """The named error of a failed activity: its ApplicationError type, or `Timeout`."""
    cause = error.cause
    if isinstance(cause, TemporalCancelledError):
        raise asyncio.CancelledError()
    if isinstance(cause, TemporalTimeoutError):
        return StepFailure(
            "Timeout", f"activity timed out ({cause.type.name if cause.type else ''})"
        )
    if isinstance(cause, ApplicationError):
        return StepFailure(cause.type or "Error", cause.message, retryable=not cause.non_retryable)
    return StepFailure("ActivityFailed", str(cause or error))
