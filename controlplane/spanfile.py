"""The file exporter of `spec.observability.tracing.file`: one JSON line per span
(docs/runtime.md, "Tracing"), appended as each span ends."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class JsonLinesExporter(SpanExporter):
    """Appends each span as one JSON line (ids in hex, times in ns since the epoch)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), sort_keys=True) + "\n" for span in spans)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write per batch on an O_APPEND file: processes sharing it never interleave
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, lines.encode())
            finally:
                os.close(descriptor)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as a JSON line of the file exporter (docs/runtime.md, "Tracing")."""
    context = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "traceId": f"{context.trace_id:032x}" if context else None,
        "spanId": f"{context.span_id:016x}" if context else None,
        "parentSpanId": f"{parent.span_id:016x}" if parent else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {key: _plain(value) for key, value in (span.attributes or {}).items()},
        "service": (span.resource.attributes.get("service.name") if span.resource else None),
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
