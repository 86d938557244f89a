"""The hash-chained file sink and `cpl audit verify`: every kind of tampering is caught at
the first bad line, and a corrupt log is never appended to."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from controlplane.audit import AuditLogCorrupt, FileSink, verify
from controlplane.audit.chain import GENESIS, event_hash, line_hash
from controlplane.audit.filesink import render_line
from controlplane.cli import run
from tests.audit.conftest import event, read_lines

Tamper = Callable[[list[bytes]], list[bytes]]


def _edit(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"update"', b'"delete"')
    return lines


def _edit_and_rehash(lines: list[bytes]) -> list[bytes]:
    document = json.loads(lines[2])
    document["data"]["action"] = "delete"
    document["cplhash"] = event_hash(document)
    lines[2] = json.dumps(document).encode() + b"\n"
    return lines


def _edit_last(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1].replace(b'"update"', b'"noop"')
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[2]
    return lines


def _delete_first(lines: list[bytes]) -> list[bytes]:
    del lines[0]
    return lines


def _insert_copy(lines: list[bytes]) -> list[bytes]:
    lines.insert(4, lines[1])
    return lines


def _insert_forged(lines: list[bytes]) -> list[bytes]:
    """A line correctly chained to line 2 and correctly hashed, slipped in as line 3."""
    forged, _ = render_line(event(99), line_hash(lines[1]))
    lines.insert(2, forged)
    return lines


def _insert_empty(lines: list[bytes]) -> list[bytes]:
    lines.insert(3, b"\n")
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[1], lines[3] = lines[3], lines[1]
    return lines


def _swap_neighbours(lines: list[bytes]) -> list[bytes]:
    lines[3], lines[4] = lines[4], lines[3]
    return lines


def _truncate(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    return lines


def _drop_final_newline(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1].rstrip(b"\n")
    return lines


CASES: dict[str, tuple[Tamper, int, str]] = {
    "edit": (_edit, 3, "cplhash does not match"),
    "edit-and-rehash": (_edit_and_rehash, 4, "does not match line 3"),
    "edit-last": (_edit_last, 6, "cplhash does not match"),
    "delete": (_delete, 3, "does not match line 2"),
    "delete-first": (_delete_first, 1, "genesis"),
    "insert-copy": (_insert_copy, 5, "matches line 1, not line 4"),
    "insert-forged": (_insert_forged, 4, "matches line 2, not line 3"),
    "insert-empty": (_insert_empty, 4, "empty line"),
    "swap": (_swap, 2, "reordered"),
    "swap-neighbours": (_swap_neighbours, 4, "reordered"),
    "truncate": (_truncate, 6, "incomplete"),
    "truncate-newline": (_drop_final_newline, 6, "incomplete"),
}


def test_a_clean_log_verifies(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = verify(log)
    assert (result.ok, result.lines, result.first_bad_line) == (True, 6, None)
    assert result.head == line_hash(read_lines(log)[-1])
    assert run(["audit", "verify", "--file", str(log)]) == 0
    assert f"{log}: ok (6 lines" in capsys.readouterr().out


def test_lines_are_structured_mode_cloudevents_chained_from_genesis(log: Path) -> None:
    lines = read_lines(log)
    previous = GENESIS
    for line in lines:
        parsed = JSONFormat().read(CloudEvent, line)
        assert parsed.get_specversion() == "1.0"
        assert parsed.get_source() == "cpl://control/prod"
        assert parsed.get_type() == "dev.cpl.apply.succeeded"
        assert parsed.get_subject() == "retail/order-fulfillment"
        assert parsed.get_datacontenttype() == "application/json"
        assert parsed.get_extension("cplprevhash") == previous
        assert parsed.get_extension("cplhash") == event_hash(json.loads(line))
        previous = line_hash(line)


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_names_the_first_bad_line(
    log: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper, bad_line, reason = CASES[case]
    log.write_bytes(b"".join(tamper(read_lines(log))))

    result = verify(log)

    assert not result.ok
    assert result.first_bad_line == bad_line
    assert result.reason is not None and reason in result.reason
    assert run(["audit", "verify", "--file", str(log)]) == 1
    assert f"{log}:{bad_line}: " in capsys.readouterr().err


def test_verify_json_output(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log.write_bytes(b"".join(_delete(read_lines(log))))
    assert run(["audit", "verify", "--file", str(log), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["logs"][0]["firstBadLine"] == 3


def test_appending_to_a_truncated_log_is_refused_and_changes_nothing(log: Path) -> None:
    log.write_bytes(b"".join(_truncate(read_lines(log))))
    before = log.read_bytes()

    with pytest.raises(AuditLogCorrupt, match=rf"{log}:6: the last line is incomplete"):
        FileSink(log).write(event(7))

    assert log.read_bytes() == before


def test_appending_after_an_edited_last_line_is_refused(log: Path) -> None:
    log.write_bytes(b"".join(_edit_last(read_lines(log))))
    with pytest.raises(AuditLogCorrupt, match=r":6: the last line's cplhash does not match"):
        FileSink(log).write(event(7))


def test_appends_extend_the_chain(log: Path) -> None:
    FileSink(log).write(event(7))
    assert verify(log).lines == 7 and verify(log).ok


def test_verify_by_environment_reads_its_file_sinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: prod}\n"
        "spec:\n  tier: production\n"
        "  targets: [{name: sfn, engine: stepfunctions, region: us-east-1}]\n"
        "  audit: {sinks: [{file: logs/prod-audit.jsonl}]}\n"
    )
    path = tmp_path / "logs" / "prod-audit.jsonl"
    FileSink(path).write(event(1))
    FileSink(path).write(event(2))

    assert run(["audit", "verify", "--env", "prod", "--repo", str(tmp_path)]) == 0
    assert run(["audit", "verify", "--repo", str(tmp_path)]) == 0  # every environment

    path.write_bytes(b"".join(_delete_first(read_lines(path))))
    capsys.readouterr()
    assert run(["audit", "verify", "--env", "prod", "--repo", str(tmp_path)]) == 1
    assert f"{path}:1: " in capsys.readouterr().err
