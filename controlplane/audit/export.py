"""`cpl audit export`: the events of a log since a point in time, for auditors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any, Literal

from controlplane.audit.chain import HASH, PREVHASH
from controlplane.spec.types import parse_duration

ExportFormat = Literal["json", "csv"]
CSV_COLUMNS = (
    "time",
    "id",
    "type",
    "subject",
    "source",
    "datacontenttype",
    "data",
    PREVHASH,
    HASH,
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`7d`, `12h`, `1h30m` (that long before `now`), an RFC 3339 date (midnight UTC) or
    date-time (UTC when it carries no offset); ValueError otherwise."""
    text = text.strip()
    now = now or dt.datetime.now(dt.UTC)
    try:
        return now - dt.timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is neither a duration (7d, 12h, 90m) nor an RFC 3339 date or date-time"
        ) from None
    if _DATE_ONLY.match(text) or moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a log, in file order (verify the log first: this only parses it)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def select(events: list[dict[str, Any]], since: dt.datetime) -> list[dict[str, Any]]:
    """The events at or after `since`, in log order."""
    return [event for event in events if _time(event) >= since]


def export(path: Path, since: dt.datetime, format: ExportFormat = "json") -> str:
    """The log's events since `since`: a JSON array of structured-mode CloudEvents (with
    their chain hashes) or CSV with `CSV_COLUMNS` (data as compact JSON)."""
    return export_events(read_events(path), since, format)


def export_events(
    events: list[dict[str, Any]], since: dt.datetime, format: ExportFormat = "json"
) -> str:
    """`export` for events already read (from an S3 sink's objects, say), in chain order."""
    events = select(events, since)
    if format == "json":
        return json.dumps(events, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = dict(event)
        row["data"] = json.dumps(event.get("data"), sort_keys=True, separators=(",", ":"))
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _time(event: dict[str, Any]) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(event.get("time", "")))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
