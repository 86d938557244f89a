"""The file sink: an append-only, hash-chained JSON Lines audit log (docs/security.md, "Audit
integrity").

Each line is one structured-mode CloudEvent (JSON, written by the SDK) with two extension
attributes: `cplprevhash`, the sha256 of the previous line's bytes (`GENESIS` on line 1), and
`cplhash`, the sha256 of the event's canonical JSON without `cplhash` (see `chain.py`).

Appending is the only write: the file is opened with O_APPEND, and an exclusive `flock` is
held from reading the last line to the fsync of the new one, so writers in several processes
extend one chain and never fork it. Existing lines are never rewritten. A log whose last line
is incomplete (a crash mid-write) or edited is refused with an error naming the line: it is
never repaired silently; `cpl audit verify` says what is wrong with it.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudevents.core.formats.json import JSONFormat

from controlplane.audit.chain import GENESIS, HASH, PREVHASH, event_hash, line_hash
from controlplane.audit.events import AuditError, AuditEvent
from controlplane.files import fsync_directory

if TYPE_CHECKING:
    from controlplane.audit.anchor import Anchor

_TAIL_CHUNK = 8192


class AuditLogCorrupt(AuditError):
    """The log's last line is incomplete or edited: nothing is appended to it (exit 1)."""


class FileSink:
    """Appends events to one hash-chained JSON Lines file; with an `anchor`, also signs and
    stores the new head after every append (`controlplane.audit.anchor`)."""

    def __init__(self, path: Path, anchor: Anchor | None = None) -> None:
        self.path = path
        self.anchor = anchor
        self.anchor_problem: str | None = None  # the last checkpoint that could not be written

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r})"

    def write(self, event: AuditEvent) -> str:
        """Append `event` as the chain's next line (durably) and return its `cplhash`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            prevhash = self._previous_hash(descriptor)
            line, digest = render_line(event, prevhash)
            _write_all(descriptor, line)
            os.fsync(descriptor)
            # Still under the lock: the checkpoint names exactly this line as the head.
            self._checkpoint(descriptor, prevhash, line_hash(line))
        finally:
            os.close(descriptor)  # also releases the lock
        if created:
            fsync_directory(self.path.parent)
        return digest

    def _checkpoint(self, descriptor: int, prevhash: str, head: str) -> None:
        """Anchor the new head; a place that is away is a warning, not a lost event (the
        next append's checkpoint counts the lines afresh)."""
        self.anchor_problem = None
        if self.anchor is None:
            return
        try:
            self.anchor.record(
                self.path,
                prevhash,
                head,
                lambda: _count_lines(descriptor, os.fstat(descriptor).st_size),
            )
        except AuditError as exc:
            self.anchor_problem = exc.message
        except Exception as exc:  # S3 away, a full disk: the event itself is written
            self.anchor_problem = f"{exc.__class__.__name__}: {exc}"

    def _previous_hash(self, descriptor: int) -> str:
        size = os.fstat(descriptor).st_size
        if size == 0:
            return GENESIS
        last = _last_line(descriptor, size)
        problem = _line_problem(last)
        if problem:
            number = _count_lines(descriptor, size)
            raise AuditLogCorrupt(
                f"{self.path}:{number}: {problem}; refusing to append to a corrupt audit log "
                "(it is never repaired automatically: keep it as evidence, run "
                "`cpl audit verify` and move it aside to start a new log)"
            )
        return line_hash(last)


def render_line(event: AuditEvent, prevhash: str) -> tuple[bytes, str]:
    """The log line (ending in `\\n`) for `event` after a line hashing to `prevhash`, and
    its `cplhash`."""
    json_format = JSONFormat()
    unsigned = json.loads(json_format.write(event.to_cloudevent({PREVHASH: prevhash})))
    digest = event_hash(unsigned)
    signed = event.to_cloudevent({PREVHASH: prevhash, HASH: digest})
    return json_format.write(signed) + b"\n", digest


def _line_problem(line: bytes) -> str | None:
    if not line.endswith(b"\n"):
        return "the last line is incomplete (a write was cut short)"
    try:
        document: Any = json.loads(line)
    except ValueError:
        return "the last line is not valid JSON"
    if not isinstance(document, dict) or document.get(HASH) != event_hash(document):
        return "the last line's cplhash does not match its content (the line was edited)"
    return None


def _last_line(descriptor: int, size: int) -> bytes:
    """The bytes after the last `\\n` that is not the file's final byte."""
    tail = b""
    position = size
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        tail = os.pread(descriptor, step, position) + tail
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1 :]
    return tail


def _count_lines(descriptor: int, size: int) -> int:
    """1-based number of the last line (complete or not)."""
    newlines, position, last = 0, 0, b""
    while position < size:
        chunk = os.pread(descriptor, 1 << 20, position)
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        position += len(chunk)
        last = chunk[-1:]
    return newlines if last == b"\n" else newlines + 1


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
