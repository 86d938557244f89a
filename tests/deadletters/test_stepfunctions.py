"""A failing Step Functions execution (the rendered state machine on moto) sends the
dead-letter CloudEvent to its SQS queue; `cpl dlq show` reads the trace from the history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import SFN_QUEUE, cpl, queued

pytestmark = pytest.mark.integration


def test_failed_execution_sends_the_dead_letter_cloudevent(
    capsys: pytest.CaptureFixture[str], repo: Path, sqs: Any
) -> None:
    order = {"orderId": "s-1", "ok": False}
    code, out, err = cpl(
        capsys, repo, "run", "retail/sfn-orders", "--env", "test", "--input", json.dumps(order),
        "--wait", "--timeout", "60s", "--format", "json",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 1 and report["status"] == "failed", (out, err)
    assert report["error"]["error"] == "OrderRejected"
    [event] = [e for e in queued(sqs, SFN_QUEUE) if e["data"]["runId"] == report["runId"]]
    assert event["specversion"] == "1.0"
    assert event["type"] == "dev.cpl.run.deadlettered"
    assert event["source"] == "cpl://test/sfn"
    assert event["subject"] == "retail/sfn-orders"
    assert event["id"] and event["time"]
    data = event["data"]
    assert data["runId"].startswith("arn:aws:states:us-east-1:123456789012:execution:")
    assert (data["workflow"], data["version"], data["target"]) == (
        "retail/sfn-orders",
        "1.4.0",
        "sfn",
    )
    assert data["input"] == order
    assert (data["error"], data["cause"]) == ("OrderRejected", "the order is not ok")
    assert data["trace"] is None  # ASL cannot compute it

    code, out, _ = cpl(
        capsys, repo, "dlq", "show", event["id"], "--env", "test", "--format", "json"
    )
    assert code == 0
    shown = json.loads(out)
    assert shown["runId"] == report["runId"]
    assert shown["trace"] == ["check", "reject"]  # as cpl run: the steps, not helper states
