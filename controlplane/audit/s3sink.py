"""The S3 sink: the audit chain kept off the machine, as write-once objects.

Every event is first spooled locally (one file per event, written atomically, like the HTTP
sink's), then the spool is flushed: the events waiting are linked after the chain's head
and written as one new object, `<prefix>/<env>/<sequence:012d>.jsonl` (`s3store.py`), whose
lines are exactly the file sink's (`cplprevhash` / `cplhash`, `chain.py`): the objects in
sequence order are one hash-chained log. Spool files are deleted only after S3 created the
object. A command that records several events at once can make them one object with
`Auditor.batch()`; otherwise each write sends what is waiting (one event, or a backlog). So:

- a new runner continues the chain: it reads the head (the last object's sequence and the
  hash of its last line) from S3 before writing;
- two writers never fork it: the object is created with `If-None-Match: *`; the writer that
  loses is answered 412, reads the head again, re-links its batch after it and tries the
  next sequence (bounded: `max_conflicts`);
- S3 being unreachable loses nothing: connection errors, timeouts, throttling and 5xx are
  retried with exponential backoff and jitter, then the batch stays spooled and goes out,
  in order and before anything newer, on the next `record` or `cpl audit flush`; for
  `cooldown` seconds after a failure, `write` only spools.

With `retention` the objects are written with S3 Object Lock (mode, retain-until = now +
days); the sink refuses to write to a bucket without Object Lock rather than leave the
objects unprotected. A head object that is incomplete or edited is refused with an error
naming it, like the file sink's last line: nothing is appended after it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.audit.chain import GENESIS, HASH, PREVHASH, event_hash, line_hash
from controlplane.audit.events import AuditError, AuditEvent
from controlplane.audit.filesink import AuditLogCorrupt
from controlplane.audit.httpsink import DEFAULT_RETRY, FlushResult, RetryPolicy
from controlplane.audit.s3store import S3Location, S3Store, describe, error_code
from controlplane.audit.spool import EventSpool
from controlplane.files import fsync_directory
from controlplane.spec.environment import S3Retention

SPOOL_SUFFIX = ".s3.json"
MAX_BATCH = 1000  # events per object: a long outage's backlog goes out in several objects
MAX_OBJECT_BYTES = 64 << 20  # what the sink and verify read of one object, at most
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
     "ServiceUnavailable", "RequestTimeTooSkewed"}
)  # fmt: skip


@dataclass(frozen=True)
class Head:
    """Where the chain ends: the last object's sequence (0: none) and key, and the hash the
    next line must carry as `cplprevhash`."""

    sequence: int
    hash: str
    key: str | None = None


class S3Sink:
    """Writes an environment's events to S3 in batches, through a local spool."""

    def __init__(
        self,
        location: S3Location,
        spool_dir: Path,
        client_factory: Callable[[], Any],
        *,
        retention: S3Retention | None = None,
        retry: RetryPolicy | None = None,
        max_conflicts: int = 50,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.location = location
        self.spool_dir = spool_dir
        self.retention = retention
        self.retry = retry or DEFAULT_RETRY
        self.max_conflicts = max_conflicts
        self.conflicts = 0  # lost creates so far (for the curious and the tests)
        self._client_factory = client_factory
        self._store: S3Store | None = None
        self._sleep = sleep
        self._retry_after = 0.0
        self._head: Head | None = None  # what this process last wrote or read
        self._lock_checked = False
        self._spool = EventSpool(spool_dir, SPOOL_SUFFIX)
        self.deferred = 0  # > 0 inside `Auditor.batch()`: write only spools

    def __repr__(self) -> str:
        return f"S3Sink({self.shown_url!r}, spool={str(self.spool_dir)!r})"

    @property
    def shown_url(self) -> str:
        return self.location.url

    @property
    def store(self) -> S3Store:
        if self._store is None:  # made on first use: opening the sinks calls nothing
            self._store = S3Store(self._client_factory(), self.location)
        return self._store

    def write(self, event: AuditEvent) -> FlushResult:
        """Spool `event`, then flush the spool unless S3 failed moments ago or a batch is
        being collected (`Auditor.batch()` flushes it as one object when it ends)."""
        self.spool(event)
        if self.deferred:
            return FlushResult(delivered=0, pending=0)
        if time.monotonic() < self._retry_after:
            return FlushResult(delivered=0, pending=len(self.pending()), error="cooling down")
        return self.flush()

    def spool(self, event: AuditEvent) -> Path:
        """Write the event to the spool, durably; return its file."""
        return self._spool.add(event)

    def pending(self) -> list[Path]:
        """Spooled events not yet sent, oldest first."""
        return self._spool.pending()

    def flush(self) -> FlushResult:
        """Write the spooled events to S3 in order, `MAX_BATCH` per object; stop at a failure.

        Holds an exclusive lock on the spool so two processes never send the same events.
        Raises AuditError for a bucket that cannot honour `retention` and AuditLogCorrupt for
        a corrupt head object: those need a person, not a retry.
        """
        delivered = 0
        with self._spool.locked():
            queue = self.pending()
            while queue:
                batch, queue = queue[:MAX_BATCH], queue[MAX_BATCH:]
                error = self._send(batch)
                if error is not None:
                    self._retry_after = time.monotonic() + self.retry.cooldown
                    return FlushResult(delivered, len(batch) + len(queue), error)
                for path in batch:
                    path.unlink()
                fsync_directory(self.spool_dir)
                delivered += len(batch)
        self._retry_after = 0.0
        return FlushResult(delivered=delivered, pending=0)

    def head(self, *, fresh: bool = False) -> Head:
        """The chain's head in S3 (listing only keys after the one this process knows)."""
        known = None if fresh else self._head
        last_key = known.key if known else None
        for key in self.store.keys(start_after=last_key):
            if self.location.sequence_of(key) is not None:
                last_key = key
        if last_key is None:
            self._head = Head(0, GENESIS)
        elif known is None or last_key != known.key:
            self._head = self._read_head(last_key)
        return self._head or Head(0, GENESIS)

    def _send(self, batch: list[Path]) -> str | None:
        """Create one object holding `batch`; None when done, else why not (still spooled)."""
        bodies = [path.read_bytes() for path in batch]
        failures, conflicts = 0, 0
        while True:
            try:
                self._check_retention()
                head = self.head(fresh=conflicts > 0)
                lines, last_hash, first_time = _link(bodies, head.hash)
                sequence = head.sequence + 1
                key = self.location.key(sequence)
                metadata = {"cpl-first-time": first_time, "cpl-events": str(len(bodies))}
                now = dt.datetime.now(dt.UTC)
                if self.store.create(key, lines, metadata, self.retention, now):
                    self._head = Head(sequence, last_hash, key)
                    return None
            except AuditError:
                raise
            except Exception as exc:  # botocore's errors, from a dead socket to a 503
                if not _transient(exc):
                    return f"{self.location.url}: {describe(exc)}"
                failures += 1
                if failures >= max(1, self.retry.attempts):
                    return (
                        f"S3 unreachable at {self.location.url}: {describe(exc)} "
                        f"(after {failures} attempts)"
                    )
                self._sleep(self.retry.delay(failures))
                continue
            conflicts += 1  # another writer created that sequence first: re-link after it
            self.conflicts += 1
            if conflicts > self.max_conflicts:
                return (
                    f"{self.location.url}: lost {conflicts} races for the next object in a "
                    "row; the events stay spooled"
                )
            self._sleep(random.uniform(0, 0.05 * min(conflicts, 10)))

    def _read_head(self, key: str) -> Head:
        body = self.store.read(key, MAX_OBJECT_BYTES)
        sequence = self.location.sequence_of(key) or 0
        last = body.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
        problem = _head_problem(body, last)
        if problem:
            raise AuditLogCorrupt(
                f"{self.location.show(key)}: {problem}; refusing to append after a corrupt "
                "audit object (run `cpl audit verify`; the events stay spooled)"
            )
        return Head(sequence, line_hash(last), key)

    def _check_retention(self) -> None:
        if self.retention is None or self._lock_checked:
            return
        if not self.store.object_lock_enabled():
            raise AuditError(
                f"audit s3 sink {self.location.url} sets retention but bucket "
                f"'{self.location.bucket}' has no Object Lock enabled: objects would not be "
                "protected (create the bucket with Object Lock, or drop `retention`)"
            )
        self._lock_checked = True


def _link(bodies: list[bytes], prevhash: str) -> tuple[bytes, str, str]:
    """The object's lines for spooled `bodies` chained after `prevhash`, the hash of its last
    line, and the time of its first event."""
    lines: list[bytes] = []
    for body in bodies:
        document: dict[str, Any] = json.loads(body)
        document.pop(HASH, None)
        document[PREVHASH] = prevhash
        document[HASH] = event_hash(document)
        line = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        lines.append(line)
        prevhash = line_hash(line)
    first_time = str(json.loads(bodies[0]).get("time", "")) if bodies else ""
    return b"".join(lines), prevhash, first_time


def _head_problem(body: bytes, last: bytes) -> str | None:
    if not body or not body.endswith(b"\n"):
        return "the object is empty or its last line is incomplete"
    if len(body) > MAX_OBJECT_BYTES:
        return f"the object is larger than {MAX_OBJECT_BYTES} bytes"
    try:
        document: Any = json.loads(last)
    except ValueError:
        return "the last line is not valid JSON"
    if not isinstance(document, dict) or document.get(HASH) != event_hash(document):
        return "the last line's cplhash does not match its content (the object was edited)"
    return None


def _transient(exc: BaseException) -> bool:
    """Worth another try: no answer at all, throttling, or a server-side error."""
    from botocore.exceptions import BotoCoreError

    if isinstance(exc, BotoCoreError):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in _TRANSIENT_CODES or int(status or 0) >= 500
    return isinstance(exc, OSError)
