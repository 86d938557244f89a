"""A real HTTP receiver for the tests of cpl's webhook-like senders (notifications, the audit
HTTP sink): http.server on 127.0.0.1 in a thread, answering with chosen statuses."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controlplane.engines.temporal.devserver import free_port

__all__ = ["Receiver", "Request", "free_port"]


@dataclass
class Request:
    path: str
    content_type: str
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Receives POSTs on `port` once started. `answers` are the (status, headers) of the next
    requests (then 200); `received` holds every request with the status it was answered."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.received: list[Request] = []
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[Request]:
        return [r for r in self.received if 200 <= r.status < 300]

    def answer(self) -> tuple[int, dict[str, str]]:
        return self.answers.pop(0) if self.answers else (200, {})

    def record(self, request: Request) -> None:
        self.received.append(request)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers = receiver.answer()
                content_type = self.headers.get("Content-Type", "")
                receiver.record(Request(self.path, content_type, body, status))
                self.send_response(status)
                for name, value in {"Content-Length": "2", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok")

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
