"""Temporal runs that fail leave their dead letter in SQS (moto), handed over by `cpl worker`;
a queue that cannot be reached delays the message in the spool, never loses it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.deadletters.outbox import Outbox
from controlplane.deadletters.spool import Spool
from controlplane.spec.load import load_environment

from .conftest import LATE_QUEUE, TEMPORAL_QUEUE, cpl, queued

pytestmark = pytest.mark.integration


def failed_run(capsys: pytest.CaptureFixture[str], repo: Path, workflow: str, order: str) -> str:
    code, out, err = cpl(
        capsys,
        repo,
        "run",
        workflow,
        "--env",
        "test",
        "--input",
        json.dumps({"orderId": order, "ok": False}),
        "--wait",
        "--timeout",
        "60s",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 1 and report["status"] == "failed", (out, err)
    assert report["error"]["error"] == "OrderRejected"
    return str(report["runId"])


def test_failed_run_sends_the_dead_letter_cloudevent_to_sqs(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    run_id = failed_run(capsys, repo, "retail/orders", "o-1")
    [event] = [e for e in queued(sqs, TEMPORAL_QUEUE) if e["data"]["runId"] == run_id]
    assert event["specversion"] == "1.0"
    assert event["type"] == "dev.cpl.run.deadlettered"
    assert event["source"] == "cpl://test/temporal"
    assert event["subject"] == "retail/orders"
    assert event["id"] and event["time"]
    data = event["data"]
    assert data["workflow"] == "retail/orders"
    assert data["version"] == "1.4.0"
    assert data["target"] == "temporal"
    assert data["input"] == {"orderId": "o-1", "ok": False}
    assert (data["error"], data["cause"]) == ("OrderRejected", "the order is not ok")
    assert data["trace"] == ["check", "reject"]


def test_unreachable_queue_spools_and_the_message_is_sent_once_later(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    """The queue of retail/late does not exist yet: the run still ends at once, its dead
    letter waits in the spool; once the queue exists, `cpl dlq list` re-sends it, once."""
    started = time.monotonic()
    run_id = failed_run(capsys, repo, "retail/late", "o-late")
    assert time.monotonic() - started < 30  # the hand-off never holds the run for long
    spool = repo / ".cpl" / "dlq" / "test" / "spool.jsonl"
    spooled = [json.loads(json.loads(line)["message"]) for line in spool.read_text().splitlines()]
    [event] = [e for e in spooled if e["data"]["runId"] == run_id]

    code, out, _ = cpl(capsys, repo, "dlq", "list", "--env", "test", "--format", "json")
    assert code == 0  # listed from the spool while its queue is missing
    assert event["id"] in [m["id"] for m in json.loads(out)["messages"]]

    sqs.create_queue(QueueName=LATE_QUEUE)
    for _ in range(2):  # the second command finds nothing left to send
        code, out, _ = cpl(capsys, repo, "dlq", "list", "--env", "test", "--format", "json")
        assert code == 0
        assert [m["id"] for m in json.loads(out)["messages"]].count(event["id"]) == 1
    assert [e["id"] for e in queued(sqs, LATE_QUEUE)] == [event["id"]]
    assert not any(event["id"] in line for line in spool.read_text().splitlines())


def test_outbox_spools_when_the_queue_service_is_down_then_resends(
    repo: Path, sqs: Any, tmp_path: Path
) -> None:
    """Environment `gone` reaches SQS on a port nobody listens on."""
    spool = Spool(tmp_path / "spool.jsonl")
    down = load_environment(repo, "gone")
    up = load_environment(repo, "test")
    body = json.dumps({"specversion": "1.0", "id": "resend-1", "type": "dev.cpl.run.deadlettered",
                       "source": "cpl://test/temporal", "data": {"runId": "r-resend"}})  # fmt: skip
    assert Outbox(down, spool).hand_off(down.target("temporal"), TEMPORAL_QUEUE, body) == "spooled"
    assert Outbox(down, spool).resend().pending == 1  # still down: kept

    result = Outbox(up, spool).resend()
    assert (result.sent, result.pending) == (1, 0)
    assert Outbox(up, spool).resend().sent == 0
    assert [e["id"] for e in queued(sqs, TEMPORAL_QUEUE)].count("resend-1") == 1
    assert spool.entries() == []
