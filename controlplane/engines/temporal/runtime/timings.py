"""When each step of a run started and ended, and how it ended (the `steps` of `cpl run`).

The interpreter opens one record per step it starts (so the records follow the trace, nested
steps, map iterations and compensations included) and closes it when the step returns,
fails or is cancelled. Times are workflow time (`workflow.now()`), so a replay records the
same values. Runs inside the workflow sandbox: standard library and `temporalio.workflow`
only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from temporalio import workflow

from controlplane.engines.temporal.runtime.payload import StepRecord, StepStatus

MAX_STEP_RECORDS = 1000
"""Records kept per run (the first ones): a run's status and result stay bounded."""


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, the form every engine's times take."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepClock:
    """The step records of one run, in the order the steps started."""

    def __init__(self) -> None:
        self._records: list[StepRecord] = []
        self._handled: set[int] = set()  # open records whose step failed into a handler

    def handled_failure(self, name: str) -> None:
        """The running step `name` failed and its own handler took over (an approval's
        `onTimeout`): it closes as failed, like a failure a `catch` handles, and as Step
        Functions reports the timed-out task."""
        for index in range(len(self._records) - 1, -1, -1):
            if self._records[index]["name"] == name and self._records[index]["ended"] is None:
                self._handled.add(index)
                return

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Record the step `name` around the block: succeeded when it returns, cancelled when
        cancelled, failed on any other exception (a failure a `catch` handles included)."""
        record: StepRecord | None = None
        index = len(self._records)
        if index < MAX_STEP_RECORDS:
            record = {
                "name": name,
                "started": iso_utc(workflow.now()),
                "ended": None,
                "status": "running",
            }
            self._records.append(record)
        status: StepStatus = "failed"
        try:
            yield
            status = "succeeded"
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            if record is not None:
                record["ended"] = iso_utc(workflow.now())
                record["status"] = "failed" if index in self._handled else status

    def records(self) -> list[StepRecord]:
        """A copy of the records (open ones are `running` with `ended` null)."""
        return [record.copy() for record in self._records]
