"""The exclusive lock on an environment's state directory, held while applying.

`fcntl.flock` on `<dir>/lock` is the lock: the kernel releases it when the holder's process
dies, however it dies, so a crash never leaves the environment locked. Next to it,
`<dir>/lock.holder` (JSON, written atomically once the lock is taken) says who holds it, for
the message of a waiting command; it is only information: a holder file left behind by a dead
process never blocks anyone, and the `lock` file itself is never deleted (a waiter could
otherwise lock a different file than the holder).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import getpass
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from controlplane.errors import CplError
from controlplane.files import pid_alive, write_atomic

LOCK_FILE = "lock"
HOLDER_FILE = "lock.holder"
DEFAULT_TIMEOUT = 60.0


class LockTimeout(CplError):
    """The lock stayed held by another process for the whole timeout (exit 1)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a lock."""

    pid: int
    host: str
    user: str
    command: str
    started_at: dt.datetime

    @classmethod
    def current(cls, command: str | None = None) -> LockHolder:
        """This process."""
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            user=_user(),
            command=command or _command_line(),
            started_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        )

    def describe(self) -> str:
        since = self.started_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        return (
            f"pid {self.pid} ({self.command}) of user {self.user} on host {self.host} since {since}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "host": self.host,
            "user": self.user,
            "command": self.command,
            "startedAt": self.started_at.isoformat().replace("+00:00", "Z"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LockHolder:
        return cls(
            pid=int(data["pid"]),
            host=str(data["host"]),
            user=str(data["user"]),
            command=str(data["command"]),
            started_at=dt.datetime.fromisoformat(str(data["startedAt"])),
        )


def read_holder(directory: Path) -> LockHolder | None:
    """The holder file of the lock in `directory`, if there is a readable one."""
    try:
        return LockHolder.from_json(json.loads((directory / HOLDER_FILE).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StateLock:
    """An exclusive lock on a state directory, as a context manager.

    `acquire` waits up to `timeout` seconds (polling every `poll_interval`), then raises
    LockTimeout naming the holder; `timeout=0` tries once. Not re-entrant: a second StateLock
    on the same directory in the same process waits like any other process would.
    """

    def __init__(
        self,
        directory: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        command: str | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.directory = directory
        self.timeout = timeout
        self.command = command
        self.poll_interval = poll_interval
        self._descriptor: int | None = None
        self.holder: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    @property
    def key(self) -> str:
        """The state this lock guards (`StateStore` checks it is the one it writes)."""
        return str(self.directory.resolve())

    @property
    def location(self) -> str:
        return str(self.directory)

    def current_holder(self) -> LockHolder | None:
        """Who holds the lock now, as far as its holder file says."""
        return read_holder(self.directory)

    def acquire(self) -> None:
        if self.held:
            raise RuntimeError(f"the lock on {self.directory} is already held by this object")
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(
            self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        deadline = time.monotonic() + self.timeout
        try:
            while not _try_flock(descriptor):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout()
                time.sleep(min(self.poll_interval, remaining))
            holder = LockHolder.current(self.command)
            write_atomic(self.directory / HOLDER_FILE, json.dumps(holder.to_json()) + "\n")
        except BaseException:
            os.close(descriptor)  # closing the descriptor drops the flock if we had it
            raise
        self._descriptor = descriptor
        self.holder = holder

    def release(self) -> None:
        """Release the lock (a no-op when not held)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        self.holder = None
        try:
            # Only the holder removes the holder file, and before unlocking: never someone else's.
            with contextlib.suppress(FileNotFoundError):
                (self.directory / HOLDER_FILE).unlink()
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _timeout(self) -> LockTimeout:
        holder = read_holder(self.directory)
        if holder is None:
            who = "another process (it has not said who yet)"
        elif holder.host == socket.gethostname() and not pid_alive(holder.pid):
            # The holder file is stale: its writer died and the new holder has not written yet.
            who = "another process (the holder file is stale)"
        else:
            who = holder.describe()
        return LockTimeout(
            f"the state in {self.directory} is locked: held by {who}; gave up after "
            f"{self.timeout:g}s. The lock frees itself when that process ends: wait for it, "
            "or stop it"
        )


def _try_flock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _command_line() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return shlex.join([program, *sys.argv[1:]])
