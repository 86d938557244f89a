"""The spool of a remote audit sink: events waiting on this machine until they are sent.

One private file per event, written durably (`files.write_private`), named so that names
sort in recording order (nanoseconds, pid, sequence); a sender takes `locked()`, an
exclusive lock across processes, so two processes never send the same events.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from cloudevents.core.bindings.http import to_structured_event

from controlplane.audit.events import AuditEvent
from controlplane.files import write_private

_LOCK = ".flush.lock"


class EventSpool:
    """The files of events waiting in `directory`, each named `<order>-<id><suffix>`."""

    def __init__(self, directory: Path, suffix: str) -> None:
        self.directory = directory
        self.suffix = suffix
        self._last_stamp = 0
        self._sequence = 0

    def add(self, event: AuditEvent) -> Path:
        """Write the event's structured-mode body as the newest file; return it."""
        body = to_structured_event(event.to_cloudevent()).body
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{self._next_stamp()}-{event.id}{self.suffix}"
        write_private(final, body)
        return final

    def pending(self) -> list[Path]:
        """The waiting events' files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path
            for path in self.directory.iterdir()
            if path.name.endswith(self.suffix) and not path.name.startswith(".")
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool's sender lock (blocking until another process lets it go)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _next_stamp(self) -> str:
        stamp = max(time.time_ns(), self._last_stamp + 1)
        self._last_stamp = stamp
        self._sequence += 1
        return f"{stamp:020d}-{os.getpid():07d}-{self._sequence:06d}"
