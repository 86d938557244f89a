"""The HTTP sink: CloudEvents HTTP binding, structured mode, through a local spool.

Every event is first written to the spool (one file per event, written atomically: temp
file, fsync, rename), then the spool is flushed: files are POSTed in name order, which is
recording order, with `Content-Type: application/cloudevents+json`, and a file is deleted
only after the collector answered 2xx. A failure stops the flush (later events never
overtake an earlier one); the events stay spooled and go out on the next `record` or
`cpl audit flush`. So an unreachable collector loses nothing, and a down-then-up cycle
delivers each event once.

Receivers must dedupe by event `id`: if a 2xx is lost on the way back (or the process dies
between the 2xx and the delete), the event is sent again with the same `id`.

Retries: connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
and jitter, a bounded number of times; any other answer is a rejection, reported and kept in
the spool. After a failed flush the sink waits `cooldown` seconds before trying again, so a
command recording many events while the collector is down is not slowed by each of them.
"""

from __future__ import annotations

import hashlib
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloudevents.core.formats.json import JSONFormat

from controlplane.audit.events import AuditError, AuditEvent
from controlplane.audit.spool import EventSpool
from controlplane.files import fsync_directory
from controlplane.redaction import redact_text, redact_url

SPOOL_SUFFIX = ".ce.json"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery tries: `attempts` POSTs, `base_delay` doubling up to
    `max_delay` between them (with jitter), `timeout` per POST; after a failed flush,
    `write` only spools for `cooldown` seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    timeout: float = 5.0
    cooldown: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds before the attempt after failed `attempt`: exponential, capped, with
        "equal jitter" (half fixed, half random)."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: events delivered, events still spooled, and why it stopped."""

    delivered: int
    pending: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class HttpSink:
    """POSTs events to a collector URL, spooling them under `spool_dir` until delivered."""

    def __init__(
        self,
        url: str,
        spool_dir: Path,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.spool_dir = spool_dir
        self.retry = retry or DEFAULT_RETRY
        self._sleep = sleep
        self._retry_after = 0.0  # time.monotonic() before which write() does not flush
        self._spool = EventSpool(spool_dir, SPOOL_SUFFIX)

    def __repr__(self) -> str:
        return f"HttpSink({self.shown_url!r}, spool={str(self.spool_dir)!r})"

    @property
    def shown_url(self) -> str:
        """The URL fit to print: no user:password, no secret query parameters."""
        return redact_url(self.url)

    def write(self, event: AuditEvent) -> FlushResult:
        """Spool `event`, then flush the spool unless the collector failed moments ago."""
        self.spool(event)
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
        """Deliver spooled events in order, deleting each after its 2xx; stop at a failure.

        Holds an exclusive lock on the spool so two processes never send the same file.
        """
        if not self.spool_dir.is_dir():
            return FlushResult(delivered=0, pending=0)
        delivered = 0
        with self._spool.locked():
            queue = self.pending()
            for index, path in enumerate(queue):
                try:
                    body = path.read_bytes()
                except FileNotFoundError:  # delivered by a flush that held the lock before us
                    continue
                error = self._deliver(body)
                if error is not None:
                    self._retry_after = time.monotonic() + self.retry.cooldown
                    return FlushResult(delivered, len(queue) - index, f"{path.name}: {error}")
                path.unlink()
                fsync_directory(self.spool_dir)
                delivered += 1
        self._retry_after = 0.0
        return FlushResult(delivered=delivered, pending=0)

    def _deliver(self, body: bytes) -> str | None:
        """POST one body with bounded retries; None on 2xx, else why it failed."""
        error = ""
        for attempt in range(max(1, self.retry.attempts)):
            if attempt:
                self._sleep(self.retry.delay(attempt))
            retryable, error = self._post(body)
            if not error:
                return None
            if not retryable:
                return error
        return f"{error} (after {self.retry.attempts} attempts)"

    def _post(self, body: bytes) -> tuple[bool, str]:
        """One POST: (retryable, error), error "" on success."""
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": JSONFormat.CONTENT_TYPE},  # application/cloudevents+json
        )
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout) as response:
                response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            retryable = exc.code in _RETRYABLE_STATUS or exc.code >= 500
            return retryable, f"collector answered HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return True, f"collector unreachable at {self.shown_url}: {redact_text(str(reason))}"
        if 200 <= status < 300:
            return False, ""
        return False, f"collector answered HTTP {status}"


def spool_dir_for(repo: Path, environment: str, url: str) -> Path:
    """Where events for `url` wait: `.cpl/audit/spool/<env>/<sha256(url)[:12]>/`."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return repo / ".cpl" / "audit" / "spool" / environment / key


def check_url(url: str) -> str:
    """An http(s) URL, or an AuditError naming it."""
    if not url.startswith(("http://", "https://")):
        raise AuditError(f"audit http sink '{redact_url(url)}' is not an http:// or https:// URL")
    return url
