"""`cpl dlq list|show|replay|purge` end to end: dead letters left by real failed runs on
Temporal (with `cpl worker`) and Step Functions (moto), read from SQS on moto."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from controlplane.engines.temporal.runner import TemporalRunner
from controlplane.spec.load import load_environment

from .conftest import TEMPORAL_QUEUE, cpl, queued

pytestmark = pytest.mark.integration


def dead_letter(capsys: pytest.CaptureFixture[str], repo: Path, workflow: str, order: str) -> str:
    """Run `workflow` so that it fails; the id of its dead letter, as `cpl dlq list` shows."""
    code, out, _ = cpl(
        capsys, repo, "run", workflow, "--env", "test", "--input",
        json.dumps({"orderId": order, "ok": False}), "--wait", "--format", "json",
    )  # fmt: skip
    run_id = json.loads(out)["runId"]
    assert code == 1
    code, out, err = cpl(capsys, repo, "dlq", "list", "--env", "test", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["environment"] == "test"
    [message] = [m for m in listed["messages"] if m["runId"] == run_id]
    assert set(message) >= {
        "id", "workflow", "version", "target", "runId", "error", "cause", "input", "trace",
        "time",
    }  # fmt: skip
    return str(message["id"])


def audit_events(repo: Path, kind: str) -> list[dict[str, Any]]:
    lines = (repo / ".cpl" / "audit" / "test.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["type"] == kind]


def listed_ids(capsys: pytest.CaptureFixture[str], repo: Path) -> list[str]:
    code, out, _ = cpl(capsys, repo, "dlq", "list", "--env", "test", "--format", "json")
    assert code == 0
    return [m["id"] for m in json.loads(out)["messages"]]


def test_list_does_not_consume_and_show_gives_one_message(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    url = sqs.get_queue_url(QueueName=TEMPORAL_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not a dead letter")  # another producer's
    letter = dead_letter(capsys, repo, "retail/orders", "o-list")
    assert letter in listed_ids(capsys, repo)  # listing twice in a row sees it again
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                     VisibilityTimeout=0)["Messages"]]  # fmt: skip
    assert "not a dead letter" in bodies  # left alone, visible

    code, out, _ = cpl(capsys, repo, "dlq", "list", "--env", "test")
    assert code == 0 and letter in out and "retail/orders on temporal" in out
    code, out, _ = cpl(capsys, repo, "dlq", "show", letter, "--env", "test", "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == letter
    assert shown["input"] == {"orderId": "o-list", "ok": False}
    assert (shown["error"], shown["trace"]) == ("OrderRejected", ["check", "reject"])
    code, out, _ = cpl(capsys, repo, "dlq", "list", "--env", "test", "--target", "sfn")
    assert letter not in out


def test_replay_with_corrected_input_starts_a_run_audits_and_deletes(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    letter = dead_letter(capsys, repo, "retail/orders", "o-replay")

    # a corrected input that breaks the input schema: one line, nothing started or deleted
    code, out, err = cpl(
        capsys, repo, "dlq", "replay", letter, "--env", "test", "--input", '{"ok": true}'
    )
    assert code == 1 and "input schema of retail/orders" in err and "orderId" in err
    assert len(err.strip().splitlines()) == 1
    assert letter in listed_ids(capsys, repo)

    fixed = json.dumps({"orderId": "o-replay", "ok": True})
    code, out, err = cpl(
        capsys, repo, "dlq", "replay", letter, "--env", "test", "--input", fixed, "--format", "json"
    )
    assert code == 0, err
    replayed = json.loads(out)
    assert replayed["id"] == letter
    environment = load_environment(repo, "test")
    run = replayed["replayedAs"]
    assert (run["workflow"], run["target"], run["status"]) == (
        "retail/orders",
        "temporal",
        "running",
    )
    outcome = TemporalRunner(environment).outcome(environment.target("temporal"), run["runId"], 60)
    assert outcome["status"] == "succeeded" and outcome["trace"] == ["check", "done"]

    [event] = [e for e in audit_events(repo, "dev.cpl.dlq.replayed") if e["data"]["id"] == letter]
    assert event["data"]["runId"] == run["runId"]
    assert event["data"]["inputCorrected"] is True
    assert event["subject"] == "retail/orders"
    assert letter not in listed_ids(capsys, repo)
    assert letter not in [e["id"] for e in queued(sqs, TEMPORAL_QUEUE)]
    code, out, err = cpl(capsys, repo, "audit", "verify", "--env", "test")
    assert code == 0, out + err


def test_replay_of_a_message_left_after_a_replay_starts_nothing_new(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    """A crash after the audit event and before the delete leaves the message: put it back
    as it was, and the next replay reports the first run instead of starting another."""
    letter = dead_letter(capsys, repo, "retail/orders", "o-twice")
    [body] = [e for e in queued(sqs, TEMPORAL_QUEUE) if e["id"] == letter]
    code, out, _ = cpl(
        capsys, repo, "dlq", "replay", letter, "--env", "test", "--format", "json",
    )  # fmt: skip
    first = json.loads(out)
    assert code == 0
    url = sqs.get_queue_url(QueueName=TEMPORAL_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))

    code, out, _ = cpl(capsys, repo, "dlq", "replay", letter, "--env", "test", "--format", "json")
    again = json.loads(out)
    assert code == 0
    assert again["again"] is True and again["id"] == letter
    assert again["replayedAs"]["runId"] == first["replayedAs"]["runId"]
    assert again["replayedAs"]["status"] in ("running", "succeeded")
    assert (
        len([e for e in audit_events(repo, "dev.cpl.dlq.replayed") if e["data"]["id"] == letter])
        == 1
    )
    assert letter not in listed_ids(capsys, repo)


def test_replay_of_a_step_functions_dead_letter(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    letter = dead_letter(capsys, repo, "retail/sfn-orders", "s-replay")
    fixed = json.dumps({"orderId": "s-replay", "ok": True})
    code, out, err = cpl(
        capsys, repo, "dlq", "replay", letter, "--env", "test", "--target", "sfn",
        "--input", fixed, "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["replayedAs"]["runId"].startswith("arn:aws:states:")
    assert letter not in listed_ids(capsys, repo)


def test_purge_deletes_one_dead_letter_every_copy_audited(
    capsys: pytest.CaptureFixture[str], repo: Path, worker: subprocess.Popen[str], sqs: Any
) -> None:
    letter = dead_letter(capsys, repo, "retail/orders", "o-purge")
    other = dead_letter(capsys, repo, "retail/orders", "o-keep")
    [body] = [e for e in queued(sqs, TEMPORAL_QUEUE) if e["id"] == letter]
    url = sqs.get_queue_url(QueueName=TEMPORAL_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))  # a re-send's second copy
    assert listed_ids(capsys, repo).count(letter) == 1
    code, out, _ = cpl(capsys, repo, "dlq", "purge", letter, "--env", "test", "--format", "json")
    assert code == 0 and json.loads(out) == {"id": letter, "purged": True}
    ids = listed_ids(capsys, repo)
    assert letter not in ids and other in ids
    assert [e["data"]["id"] for e in audit_events(repo, "dev.cpl.dlq.purged")].count(letter) == 1


def test_unknown_id_and_unreachable_queue_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    for command in ("show", "replay", "purge"):
        code, out, err = cpl(capsys, repo, "dlq", command, "no-such-id", "--env", "test")
        assert code == 1 and out == ""
        assert err.strip() == (
            "error: no dead letter 'no-such-id' in environment 'test' (cpl dlq list shows them)"
        )
    code, out, err = cpl(capsys, repo, "dlq", "list", "--env", "gone", "--target", "temporal")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot read dead letters: queue dlq-" in err and "127.0.0.1" in err
