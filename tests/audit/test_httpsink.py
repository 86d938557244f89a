"""The HTTP sink against a real local collector (http.server on 127.0.0.1) that is down,
then up: spooled events arrive in order, each id exactly once, and the spool empties."""

from __future__ import annotations

import json
from pathlib import Path

from cloudevents.core.bindings.http import HTTPMessage, from_structured_event

from controlplane.audit import Auditor, HttpSink
from controlplane.audit.httpsink import RetryPolicy
from controlplane.cli import run
from controlplane.spec.environment import Sink
from tests.audit.conftest import Collector, event

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, timeout=2.0, cooldown=0)


def _ids(bodies: list[bytes]) -> list[str]:
    return [json.loads(body)["id"] for body in bodies]


def _spooled(spool: Path) -> list[Path]:
    return sorted(spool.iterdir()) if spool.is_dir() else []


def test_collector_down_then_up_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    sink = HttpSink(collector.url, spool, FAST)
    events = [event(number) for number in range(1, 7)]

    for waiting, down_event in enumerate(events[:5], start=1):
        result = sink.write(down_event)
        assert (result.delivered, result.pending) == (0, waiting)
        assert result.error is not None and "unreachable" in result.error
    names = [p.name for p in _spooled(spool) if not p.name.startswith(".")]
    assert [name.split("-", 3)[3].removesuffix(".ce.json") for name in names] == [
        e.id for e in events[:5]
    ]

    collector.start()
    later = HttpSink(collector.url, spool, FAST)  # a later command: a new process, same spool
    result = later.write(events[5])

    assert (result.delivered, result.pending, result.error) == (6, 0, None)
    assert _ids(collector.accepted()) == [e.id for e in events]
    assert [p for p in _spooled(spool) if not p.name.startswith(".")] == []
    assert later.flush().delivered == 0
    assert len(collector.received) == 6  # nothing sent twice


def test_posts_are_structured_mode_cloudevents(tmp_path: Path, collector: Collector) -> None:
    collector.start()
    sent = event(1)
    HttpSink(collector.url, tmp_path / "spool", FAST).write(sent)

    ((content_type, body, status),) = collector.received
    assert (content_type, status) == ("application/cloudevents+json", 200)
    parsed = from_structured_event(HTTPMessage(headers={"content-type": content_type}, body=body))
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_id() == sent.id
    assert parsed.get_source() == "cpl://control/prod"
    assert parsed.get_type() == "dev.cpl.apply.succeeded"
    assert parsed.get_subject() == "retail/order-fulfillment"
    assert parsed.get_datacontenttype() == "application/json"
    assert parsed.get_data() == sent.data


def test_server_errors_are_retried_with_bounded_backoff(
    tmp_path: Path, collector: Collector
) -> None:
    collector.answers = [503, 500]
    collector.start()
    pauses: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.08, cooldown=0)
    sink = HttpSink(collector.url, tmp_path / "spool", policy, sleep=pauses.append)

    sent = event(1)
    assert sink.write(sent).ok

    assert [status for _, _, status in collector.received] == [503, 500, 200]
    assert _ids(collector.accepted()) == [sent.id]
    assert len(pauses) == 2 and all(0 < pause <= 0.08 for pause in pauses)


def test_a_rejected_event_stays_spooled_and_is_never_overtaken(
    tmp_path: Path, collector: Collector
) -> None:
    collector.answers = [400]
    collector.start()
    sink = HttpSink(collector.url, tmp_path / "spool", FAST)
    first, second = event(1), event(2)

    rejected = sink.write(first)
    assert rejected.pending == 1
    assert rejected.error is not None and "HTTP 400" in rejected.error
    assert sink.write(second).ok  # the collector accepts now: first goes before second

    assert _ids(collector.accepted()) == [first.id, second.id]


def test_after_a_failure_writes_only_spool_until_the_cooldown_ends(
    tmp_path: Path, collector: Collector
) -> None:
    policy = RetryPolicy(attempts=1, base_delay=0.01, cooldown=60)
    sink = HttpSink(collector.url, tmp_path / "spool", policy)
    first, second = event(1), event(2)
    assert not sink.write(first).ok

    collector.start()
    cooling = sink.write(second)

    assert (cooling.pending, cooling.error) == (2, "cooling down")
    assert collector.received == []
    assert sink.flush().delivered == 2  # an explicit flush does not wait
    assert _ids(collector.accepted()) == [first.id, second.id]


def test_environment_sinks_and_cpl_audit_flush(tmp_path: Path, collector: Collector) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: prod}\n"
        "spec:\n  tier: production\n"
        "  targets: [{name: sfn, engine: stepfunctions, region: us-east-1}]\n"
        f"  audit: {{sinks: [{{file: .cpl/audit/prod.jsonl}}, {{http: '{collector.url}'}}]}}\n"
    )
    auditor = Auditor(
        tmp_path, "prod", [Sink(file=".cpl/audit/prod.jsonl"), Sink(http=collector.url)]
    )
    recorded = [auditor.emit("dev.cpl.plan.created", None, {"count": n}) for n in range(3)]
    assert [r.pending for r in recorded] == [1, 2, 3]
    assert recorded[-1].warnings and "spooled for later delivery" in recorded[-1].warnings[0]

    collector.start()
    assert run(["audit", "flush", "--env", "prod", "--repo", str(tmp_path)]) == 0

    assert _ids(collector.accepted()) == [r.event.id for r in recorded]
    file_ids = [
        json.loads(line)["id"]
        for line in (tmp_path / ".cpl" / "audit" / "prod.jsonl").read_bytes().splitlines()
    ]
    assert file_ids == [r.event.id for r in recorded]  # the file sink got them at once
