"""Operations on dead letters (`cpl dlq replay|purge`): replaying and purging one, with
their audit events. The mechanics (the message, queues, spool) are `controlplane.deadletters`.

A replay holds the dead letter (hidden in its queue), starts a new run with the dead
letter's input (or a corrected one), records `dev.cpl.dlq.replayed` in the environment's
audit trail — `data.id` the dead letter, `data.runId` the new run, `data.deadLetteredRunId`
the run that failed — and only then deletes the message. If anything before the delete
fails, the message is made visible again.

A crash between the audit event and the delete leaves the message in its queue: the next
replay of it finds the event, starts nothing, deletes the message and reports the run the
first replay started (`again: true`). A crash between the start and the audit event (one
local file append) is the one window in which a second replay starts a second run.

A purge deletes the message and records `dev.cpl.dlq.purged`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.audit import DLQ_PURGED, DLQ_REPLAYED, Auditor, FileSink, open_sinks
from controlplane.audit.events import SUBJECT_PATTERN
from controlplane.deadletters.box import DeadLetterBox
from controlplane.deadletters.message import DeadLetter

Start = Callable[[DeadLetter, Any], str]
"""Starts a run of the dead letter's workflow on its target with an input; the run id."""

Classify = Callable[[DeadLetter], str | None]
"""The classification of a dead letter's workflow (its audit event is redacted for it)."""


def _unclassified(letter: DeadLetter) -> str | None:
    return None


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    run_id: str
    again: bool = False


def replay(
    box: DeadLetterBox,
    letter_id: str,
    start: Start,
    auditor: Auditor,
    *,
    corrected_input: Any = None,
    corrected: bool = False,
    classify: Classify = _unclassified,
) -> Replayed:
    """Replay one dead letter (see module doc); DeadLetterError when it is unknown. The
    queues are walked once: `classify` is asked about the letter found."""
    taken = box.take(letter_id)
    letter = taken.letter
    try:
        earlier = earlier_replay(auditor, letter_id)
        if earlier is None:
            run_id = start(letter, corrected_input if corrected else letter.input)
            auditor.emit(
                DLQ_REPLAYED,
                letter.workflow,
                {
                    "id": letter.id,
                    "workflow": letter.workflow,
                    "target": letter.target,
                    "runId": run_id,
                    "deadLetteredRunId": letter.runId,
                    "inputCorrected": corrected,
                },
                classification=classify(letter),
            )
    except BaseException:
        box.release(taken)
        raise
    box.delete(taken)
    return Replayed(letter, run_id if earlier is None else earlier, again=earlier is not None)


def purge(
    box: DeadLetterBox, letter_id: str, auditor: Auditor, *, classify: Classify = _unclassified
) -> DeadLetter:
    """Delete one dead letter, audited; DeadLetterError when it is unknown."""
    taken = box.take(letter_id)
    letter = taken.letter
    # a message from elsewhere may name no workflow of ours: still purgeable, without subject
    subject = letter.workflow if SUBJECT_PATTERN.match(letter.workflow) else None
    try:
        auditor.emit(
            DLQ_PURGED,
            subject,
            {"id": letter.id, "workflow": letter.workflow, "target": letter.target},
            classification=classify(letter),
        )
    except BaseException:
        box.release(taken)
        raise
    box.delete(taken)
    return letter


def earlier_replay(auditor: Auditor, letter_id: str) -> str | None:
    """The run an earlier replay of the dead letter started, per the audit trail's files."""
    for sink in open_sinks(auditor.repo, auditor.environment, auditor.sinks):
        path = sink.path if isinstance(sink, FileSink) else None
        if path is None or not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if DLQ_REPLAYED not in line or letter_id not in line:
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                data = event.get("data") or {}
                if event.get("type") == DLQ_REPLAYED and data.get("id") == letter_id:
                    return str(data.get("runId"))
    return None
