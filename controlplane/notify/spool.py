"""The notification spool: bodies waiting for their webhook, crash-safe and bounded.

Each notification is written to its webhook's spool before it is posted (temp file, fsync,
rename, fsync the folder), and deleted only after the webhook accepted it. Files are sent
in name order, which is the order they were written; a failure stops the flush, so a later
message never overtakes an earlier one. A spool holds at most `MAX_SPOOLED` messages: when
full, the oldest are dropped (a chat channel wants the latest news, not a backlog), and the
sender says how many.

The folder is `.cpl/notify/spool/<env>/<key>/`, `key` the first 12 hex digits of the sha256
of the webhook's reference (`env:<VARIABLE>`, or the URL written in the environment): no
part of a URL is in a file or folder name, and rotating the secret behind a variable keeps
its spool. Files hold only the body that is posted, never the URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from controlplane.files import fsync_directory, write_private

SUFFIX = ".notice.json"
MAX_SPOOLED = 100
"""Messages one webhook's spool keeps at most."""
_LOCK = ".flush.lock"
_last_stamp = 0


def spool_dir(repo: Path, environment: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return repo / ".cpl" / "notify" / "spool" / environment / digest


@dataclass(frozen=True)
class Failure:
    """Why a message was not delivered; `malformed` when the webhook refused the message
    itself (it will never take it: it is dropped so it cannot block the ones after it)."""

    reason: str
    malformed: bool = False

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: messages delivered, still waiting, and why it stopped."""

    delivered: int
    pending: int
    error: str | None = None
    dropped: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class Spool:
    """One webhook's spool folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, body: bytes, event: str) -> int:
        """Write `body` durably as the newest message; return how many old ones were dropped
        to keep the spool within `MAX_SPOOLED`."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.directory / f"{_next_stamp()}-{event}{SUFFIX}"
        write_private(final, body)
        return self._trim()

    def pending(self) -> list[Path]:
        """Messages not yet delivered, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path
            for path in self.directory.iterdir()
            if path.name.endswith(SUFFIX) and not path.name.startswith(".")
        )

    def flush(self, send: Callable[[bytes], Failure | None]) -> FlushResult:
        """Send waiting messages oldest first with `send` (None: accepted), deleting each
        once accepted, or refused as malformed; stop at any other failure. Holds an
        exclusive lock on the spool, so two processes never send the same message."""
        if not self.directory.is_dir():
            return FlushResult(0, 0)
        delivered, refused = 0, None
        with self._locked():
            queue = self.pending()
            for index, path in enumerate(queue):
                try:
                    body = path.read_bytes()
                except FileNotFoundError:  # sent by a flush that held the lock before us
                    continue
                failure = send(body)
                if failure is not None and not failure.malformed:
                    return FlushResult(delivered, len(queue) - index, failure.reason)
                path.unlink()
                fsync_directory(self.directory)
                if failure is None:
                    delivered += 1
                else:
                    refused = f"a message was refused and dropped: {failure.reason}"
        return FlushResult(delivered, 0, refused)

    def _trim(self) -> int:
        waiting = self.pending()
        excess = waiting[: max(0, len(waiting) - MAX_SPOOLED)]
        for path in excess:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return len(excess)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        descriptor = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _next_stamp() -> str:
    """A name prefix that sorts in writing order (nanoseconds, never repeated in a process)."""
    global _last_stamp
    _last_stamp = max(time.time_ns(), _last_stamp + 1)
    return f"{_last_stamp:020d}-{os.getpid():07d}"
