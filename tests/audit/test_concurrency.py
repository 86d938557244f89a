"""Two processes appending to one log at once extend one chain; they never fork it."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

from controlplane.audit import FileSink, make_event, verify

PER_WRITER = 200


def _append(path: str, writer: str, start: Any) -> None:
    start.wait()
    sink = FileSink(Path(path))
    for number in range(PER_WRITER):
        sink.write(
            make_event(
                "dev.cpl.drift.completed",
                "retail/order-fulfillment",
                {"actor": writer, "serial": number},
                environment="prod",
                repo_name="control",
            )
        )


def test_two_processes_appending_concurrently_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [
        context.Process(target=_append, args=(str(path), name, start)) for name in ("a", "b")
    ]
    for process in writers:
        process.start()
    time.sleep(0.1)
    start.set()
    while any(process.is_alive() for process in writers):
        during = verify(path)  # readers never see a half-written line
        assert during.ok, during
        time.sleep(0.05)
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0

    result = verify(path)
    assert result.ok, result
    assert result.lines == 2 * PER_WRITER
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    by_writer = {
        name: [e["data"]["serial"] for e in events if e["data"]["actor"] == name]
        for name in ("a", "b")
    }
    assert by_writer == {"a": list(range(PER_WRITER)), "b": list(range(PER_WRITER))}
    # they really interleaved: the log is not simply one writer's run after the other's
    writers_in_order = [e["data"]["actor"] for e in events]
    switches = sum(1 for x, y in itertools.pairwise(writers_in_order) if x != y)
    assert switches > 1
