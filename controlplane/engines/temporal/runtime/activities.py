"""Activities cpl hosts itself on the interpreter's task queue (no user worker needed).

`cpl.dead_letter` receives the interpreter's `DeadLetterMessage` after an unhandled failure
(and after compensation), turns it into the dead-letter CloudEvent (`controlplane.deadletters`)
and hands it to the queue bound for the workflow: SQS, retried with backoff, else the local
spool, from which the worker re-sends it later. It returns where the message went, and it
always logs the hand-off, so a message is never silently lost. Without an outbox (tests that
only need the interpreter), messages go to a spool file alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from controlplane.deadletters.message import build_message, dead_letter_id
from controlplane.deadletters.outbox import RESEND_INTERVAL, Outbox
from controlplane.deadletters.spool import Spool, Spooled
from controlplane.engines.temporal.runtime.payload import DEAD_LETTER_ACTIVITY, DeadLetterMessage
from controlplane.engines.temporal.runtime.signals import (
    AUDIT_ACTIVITY,
    SIGNAL_ACCEPTED,
    SIGNAL_REFUSED,
)
from controlplane.spec.environment import Environment, Target

_log = logging.getLogger(__name__)

AuditRecord = Callable[[str, str | None, dict[str, Any], str | None], Any]
"""Records one audit event: (type, subject, data, the workflow's classification)."""

_AUDITED = frozenset({SIGNAL_ACCEPTED, SIGNAL_REFUSED})


class AuditRecorder:
    """Hosts `cpl.audit`: the interpreter's access events (signals accepted or refused),
    written to the environment's audit sinks by `record` (`Auditor.emit`), else logged."""

    def __init__(self, record: AuditRecord | None = None) -> None:
        self.record_event = record

    @activity.defn(name=AUDIT_ACTIVITY)
    async def record(self, event: dict[str, Any]) -> str:
        """Record one event; "recorded" or "logged" (an unknown type is refused)."""
        kind = event.get("type")
        if kind not in _AUDITED:
            raise ValueError(f"cpl.audit records signal events, not {kind!r}")
        data = {k: v for k, v in dict(event.get("data") or {}).items() if k != "token"}
        subject = event.get("subject")
        classification = event.get("classification")
        _log.warning(
            "%s: %s %s by %s", kind, data.get("operation"), data.get("signal"), data.get("actor")
        )
        if self.record_event is None:
            return "logged"
        await asyncio.to_thread(
            self.record_event,
            str(kind),
            str(subject) if subject else None,
            data,
            str(classification) if classification else None,
        )
        return "recorded"


class DeadLetterHandOff:
    """Hosts `cpl.dead_letter` for one target of an environment (see module doc).

    `outbox` sends to the environment's queues; without one, `spool` (a file) gets every
    message (the interpreter's tests, which run without an environment).
    """

    def __init__(
        self,
        outbox: Outbox | None = None,
        target: Target | None = None,
        *,
        spool: Path | str | None = None,
    ) -> None:
        self.outbox = outbox
        self.target = target
        self.spool = Spool(Path(spool)) if spool is not None else None

    @property
    def environment(self) -> Environment | None:
        return self.outbox.environment if self.outbox is not None else None

    @activity.defn(name=DEAD_LETTER_ACTIVITY)
    async def hand_off(self, message: DeadLetterMessage) -> str:
        """Build the CloudEvent and send or spool it; "sent", "spooled" or "logged"."""
        body = self.cloudevent(message, activity.info().scheduled_time)
        outcome = "logged"
        if self.outbox is not None and self.target is not None:
            outcome = await asyncio.to_thread(
                self.outbox.hand_off, self.target, message["queue"], body
            )
        elif self.spool is not None:
            entry = Spooled(self.target.name if self.target else "", message["queue"], body)
            await asyncio.to_thread(self.spool.append, entry)
            outcome = "spooled"
        _log.error(
            "dead letter %s of %s/%s run %s (%s) %s to %s",
            dead_letter_id(message["workflowId"], message["runId"]),
            message["workflow"].get("tenant"),
            message["workflow"].get("name"),
            message["workflowId"],
            message["error"].get("Error"),
            outcome,
            message["queue"],
        )
        return outcome

    def cloudevent(self, message: DeadLetterMessage, time: dt.datetime) -> str:
        """The dead-letter CloudEvent of the interpreter's message."""
        workflow = message["workflow"]
        environment = self.environment
        return build_message(
            id=dead_letter_id(message["workflowId"], message["runId"]),
            environment=environment.name if environment is not None else "",
            target=self.target.name if self.target is not None else "",
            engine="temporal",
            workflow=f"{workflow.get('tenant', '')}/{workflow.get('name', '')}",
            version=message["version"],
            run_id=message["workflowId"],
            run_input=message["input"],
            error=message["error"].get("Error", ""),
            cause=message["error"].get("Cause", ""),
            trace=list(message["trace"]),
            time=time,
            extra={
                "digest": message["digest"],
                "temporalRunId": message["runId"],
                "compensations": message["compensations"],
            },
        )

    async def resend_periodically(self, interval: float = RESEND_INTERVAL) -> None:
        """Re-send the spool now and every `interval` seconds (until cancelled)."""
        if self.outbox is None:
            return
        while True:
            try:
                result = await asyncio.to_thread(self.outbox.resend)
            except OSError as error:  # the spool is unreadable: say so, try again later
                _log.error("dead-letter spool: %s", error)
            else:
                if result.sent:
                    _log.warning("re-sent %d spooled dead letter(s)", result.sent)
            await asyncio.sleep(interval)
