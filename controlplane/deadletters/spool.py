"""The local spool: dead letters that could not reach their queue yet, inside the repo.

`.cpl/dlq/<environment>/spool.jsonl`, one JSON object a line:
`{"target": <target name>, "queue": <binding value>, "message": <CloudEvent JSON text>}`.

Crash safety: an append is one `write` of a whole line under an exclusive lock, then fsync;
removing entries rewrites the file atomically (temp file, fsync, rename) under the same lock.
A line torn by a crash in the middle of an append is not valid JSON: readers skip it (and a
rewrite drops it); every complete line is kept until its message has reached the queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from controlplane.files import write_atomic

MAX_LINE_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Spooled:
    """One spooled message and where it should go."""

    target: str
    queue: str
    message: str

    def line(self) -> str:
        record = {"target": self.target, "queue": self.queue, "message": self.message}
        return json.dumps(record, sort_keys=True)


def spool_path(repo: Path, environment: str) -> Path:
    return repo.resolve() / ".cpl" / "dlq" / environment / "spool.jsonl"


class Spool:
    """The spool file of one environment (see module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: Spooled) -> None:
        data = (entry.line() + "\n").encode("utf-8")
        with self._locked():
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, data)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def entries(self) -> list[Spooled]:
        """The complete entries, oldest first (torn or foreign lines skipped)."""
        if not self.path.exists():
            return []
        with self._locked():
            return list(self._read())

    def remove(self, messages: set[str]) -> None:
        """Drop the entries whose message text is in `messages` (they reached a queue)."""
        if not messages or not self.path.exists():
            return
        with self._locked():
            kept = [entry.line() for entry in self._read() if entry.message not in messages]
            write_atomic(self.path, "".join(line + "\n" for line in kept))

    def _read(self) -> Iterator[Spooled]:
        with self.path.open("rb") as handle:
            for raw in handle:
                if len(raw) > MAX_LINE_BYTES:
                    continue
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    record = json.loads(raw)
                    yield Spooled(
                        str(record["target"]), str(record["queue"]), str(record["message"])
                    )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
