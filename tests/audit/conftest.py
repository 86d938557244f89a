"""Helpers for the audit tests: logs written through the real file sink."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import controlplane.audit
from controlplane.audit import AuditEvent, FileSink, httpsink, make_event

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Collector:
    """A real CloudEvents collector: http.server on 127.0.0.1 in a thread.

    `answers` are the statuses of the next requests (then 200); `received` holds every
    request as (content type, body, status answered)."""

    def __init__(self, port: int, answers: list[int] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/events"
        self.answers = list(answers or [])
        self.received: list[tuple[str, bytes, int]] = []
        self._server: ThreadingHTTPServer | None = None

    def accepted(self) -> list[bytes]:
        return [body for _, body, status in self.received if 200 <= status < 300]

    def start(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = collector.answers.pop(0) if collector.answers else 200
                collector.received.append((self.headers.get("Content-Type", ""), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(0.02), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A collector on a free port, not started: it is down until the test calls start()."""
    down = Collector(free_port())
    yield down
    down.stop()
