"""`cpl audit export --since T`: the events auditors asked for, as JSON or CSV."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from controlplane.audit import FileSink
from controlplane.audit.export import CSV_COLUMNS, export, parse_since
from controlplane.cli import run
from tests.audit.conftest import event, read_lines

NOW = dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - dt.timedelta(days=7)),
        ("1h30m", NOW - dt.timedelta(minutes=90)),
        ("2026-03-05", dt.datetime(2026, 3, 5, tzinfo=dt.UTC)),
        ("2026-03-05T12:00:00Z", dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)),
        ("2026-03-05T13:00:00+01:00", dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)),
        ("2026-03-05T12:00:00", dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)),
    ],
)
def test_since_is_a_duration_or_an_rfc3339_time(text: str, expected: dt.datetime) -> None:
    assert parse_since(text, now=NOW) == expected


def test_since_rejects_anything_else() -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("last tuesday", now=NOW)


def test_export_json_keeps_events_at_or_after_since(log: Path) -> None:
    # line k of the log was recorded on March (1 + k), 12:00 UTC
    exported = json.loads(export(log, dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC), "json"))
    lines = [json.loads(line) for line in read_lines(log)]
    assert exported == lines[3:]  # whole events, chain hashes included


def test_cli_export_csv_to_a_file(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.csv"
    code = run(
        ["audit", "export", "--since", "2026-03-05", "--file", str(log), "--format", "csv",
         "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    lines = [json.loads(line) for line in read_lines(log)]
    assert [row["id"] for row in rows] == [line["id"] for line in lines[3:]]
    first = rows[0]
    assert first["time"] == "2026-03-05T12:00:00Z"
    assert first["type"] == "dev.cpl.apply.succeeded"
    assert first["subject"] == "retail/order-fulfillment"
    assert first["source"] == "cpl://control/prod"
    assert json.loads(first["data"]) == lines[3]["data"]
    assert first["cplhash"] == lines[3]["cplhash"]
    assert "exported events since 2026-03-05T00:00:00Z" in capsys.readouterr().err


def test_cli_export_since_a_duration_to_stdout(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recent = event(7)  # recorded now; the fixture's events are from March 2026
    FileSink(log).write(recent)
    assert run(["audit", "export", "--since", "7d", "--file", str(log)]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [recent.id]


def test_cli_export_refuses_a_broken_log(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(log)
    del lines[1]
    log.write_bytes(b"".join(lines))
    assert run(["audit", "export", "--since", "2026-01-01", "--file", str(log)]) == 1
    assert f"{log}:2: " in capsys.readouterr().err


def test_cli_export_bad_since_is_a_usage_error(log: Path) -> None:
    assert run(["audit", "export", "--since", "soon", "--file", str(log)]) == 2
