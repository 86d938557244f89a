"""The spool survives a crash in the middle of an append: complete entries are kept, the
torn line is skipped and dropped at the next rewrite."""

from __future__ import annotations

from pathlib import Path

from controlplane.deadletters.spool import Spool, Spooled


def test_a_torn_last_line_is_skipped_and_complete_entries_are_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "dlq" / "spool.jsonl")
    first, second = Spooled("t", "q", '{"id": "1"}'), Spooled("t", "q", '{"id": "2"}')
    spool.append(first)
    spool.append(second)
    with spool.path.open("a", encoding="utf-8") as handle:
        handle.write('{"target": "t", "queue": "q", "mess')  # the crash came here

    assert spool.entries() == [first, second]
    spool.remove({first.message})
    assert spool.entries() == [second]
    assert spool.path.read_text(encoding="utf-8") == second.line() + "\n"
