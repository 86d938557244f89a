"""Helpers for the audit tests: logs written through the real file sink."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import controlplane.audit
from controlplane.audit import AuditEvent, FileSink, httpsink, make_event
from tests.receivers import Receiver, Request, free_port

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def event(number: int, *, time: dt.datetime | None = None, env: str = "prod") -> AuditEvent:
    """The number-th test event (an apply of a retail workflow)."""
    made = make_event(
        "dev.cpl.apply.succeeded",
        "retail/order-fulfillment",
        {"action": "update", "serial": number, "digest": f"sha256:{number:064x}"},
        environment=env,
        repo_name="control",
    )
    if time is None:
        return made
    return AuditEvent(
        type=made.type,
        subject=made.subject,
        data=made.data,
        environment=made.environment,
        repo=made.repo,
        time=time,
    )


def write_log(path: Path, count: int) -> Path:
    sink = FileSink(path)
    for number in range(1, count + 1):
        sink.write(event(number, time=START + dt.timedelta(days=number)))
    return path


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A clean six-line log whose line k was recorded on day k of March 2026."""
    return write_log(tmp_path / "audit.jsonl", 6)


@pytest.fixture(autouse=True)
def fast_http_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP sinks opened from an environment retry quickly here, and none outlives a test."""
    fast = httpsink.RetryPolicy(
        attempts=2, base_delay=0.01, max_delay=0.05, timeout=2.0, cooldown=0
    )
    monkeypatch.setattr(httpsink, "DEFAULT_RETRY", fast)
    monkeypatch.setattr(controlplane.audit, "_HTTP_SINKS", {})


class Collector(Receiver):
    """A real CloudEvents collector (`tests/receivers.py`) at `url`: `answers` are the
    statuses of the next requests (then 200); `received` holds every request as
    (content type, body, status answered)."""

    def __init__(self, port: int, answers: list[int] | None = None) -> None:
        super().__init__(port)
        self.url = f"http://127.0.0.1:{port}/events"
        self.answers = list(answers or [])
        self.received = []

    def accepted(self):
        return [body for _, body, status in self.received if 200 <= status < 300]

    def answer(self):
        return (self.answers.pop(0) if self.answers else 200), {}

    def record(self, request: Request) -> None:
        self.received.append((request.content_type, request.body, request.status))


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A collector on a free port, not started: it is down until the test calls start()."""
    down = Collector(free_port())
    yield down
    down.stop()
