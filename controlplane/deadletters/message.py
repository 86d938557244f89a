"""The dead-letter message: a CloudEvent 1.0 in JSON (docs/runtime.md, "Dead letters").

    {"specversion": "1.0", "id": "<dead letter id>", "type": "dev.cpl.run.deadlettered",
     "source": "cpl://<environment>/<target>", "subject": "<tenant>/<workflow>",
     "time": "...", "datacontenttype": "application/json",
     "data": {"workflow": "<tenant>/<name>", "version", "target", "engine", "runId",
              "input", "error", "cause", "trace"}}

`id` is what `cpl dlq` calls a dead letter by. On Temporal it is derived from the run
(`dead_letter_id`), so every retry and re-send of one hand-off carries the same id and readers
dedupe by it; on Step Functions the state machine draws it with `States.UUID()` (it sends once).
`trace` is null in a Step Functions message: ASL cannot compute it; `cpl dlq show` reads it
from the execution history. The Step Functions state builds the same shape in ASL
(`engines/stepfunctions/dead_letter.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Final

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

EVENT_TYPE: Final = "dev.cpl.run.deadlettered"
MAX_MESSAGE_BYTES: Final = 256 * 1024
"""SQS's own limit; larger bodies read from a queue or the spool are not dead letters."""

_ID_NAMESPACE: Final = uuid.UUID("6f1d3c52-7a4e-5b0c-9d2f-0c1e3a5b7d90")


def dead_letter_id(run_id: str, engine_run: str = "") -> str:
    """The id of the dead letter of one run: the same for every attempt to hand it over."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{run_id}\x00{engine_run}"))


def source_of(environment: str, target: str) -> str:
    return f"cpl://{environment}/{target}"


def build_message(
    *,
    id: str,
    environment: str,
    target: str,
    engine: str,
    workflow: str,
    version: str,
    run_id: str,
    run_input: Any,
    error: str,
    cause: str,
    trace: list[str] | None,
    time: dt.datetime,
    extra: dict[str, Any] | None = None,
) -> str:
    """The message body (structured-mode CloudEvent JSON), validated by the SDK."""
    data: dict[str, Any] = {
        "workflow": workflow,
        "version": version,
        "target": target,
        "engine": engine,
        "runId": run_id,
        "input": run_input,
        "error": error,
        "cause": cause,
        "trace": trace,
        **(extra or {}),
    }
    attributes = {
        "specversion": "1.0",
        "id": id,
        "source": source_of(environment, target),
        "type": EVENT_TYPE,
        "subject": workflow,
        "time": time.astimezone(dt.UTC),
        "datacontenttype": "application/json",
    }
    return JSONFormat().write(CloudEvent(attributes=attributes, data=data)).decode("utf-8")


class NotADeadLetter(ValueError):
    """A body that is not a cpl dead-letter CloudEvent (another producer's message)."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as `cpl dlq` shows it (the fields of its JSON output)."""

    id: str
    workflow: str
    version: str
    target: str
    runId: str
    error: str
    cause: str
    input: Any
    trace: list[str] | None
    time: str
    engine: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_message(body: str | bytes) -> DeadLetter:
    """The dead letter in a message body; NotADeadLetter when it is not one (bounded read:
    a body over MAX_MESSAGE_BYTES is refused before parsing)."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise NotADeadLetter(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotADeadLetter(f"not JSON: {error}") from None
    if not isinstance(event, dict) or event.get("type") != EVENT_TYPE:
        raise NotADeadLetter(f"not a {EVENT_TYPE} CloudEvent")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(event.get("id"), str):
        raise NotADeadLetter("a dead-letter event without id or data")
    trace = data.get("trace")
    return DeadLetter(
        id=event["id"],
        workflow=_text(data.get("workflow") or event.get("subject")),
        version=_text(data.get("version")),
        target=_text(data.get("target")),
        runId=_text(data.get("runId")),
        error=_text(data.get("error")),
        cause=_text(data.get("cause")),
        input=data.get("input"),
        trace=[str(step) for step in trace] if isinstance(trace, list) else None,
        time=_text(event.get("time")),
        engine=_text(data.get("engine")),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)
