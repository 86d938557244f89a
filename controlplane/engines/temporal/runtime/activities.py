"""Activities cpl hosts itself on the interpreter's task queue (no user worker needed).

`cpl.dead_letter` receives a `DeadLetterMessage` after an unhandled failure (and after
compensation) and records it. Until queue backends exist it appends one JSON line per message
to a file (the worker option `dead_letter_path`, else the `CPL_DEAD_LETTER_PATH` environment
variable) and always logs it, so a message is never silently lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity

from controlplane.engines.temporal.runtime.payload import DEAD_LETTER_ACTIVITY, DeadLetterMessage

DEAD_LETTER_PATH_ENV = "CPL_DEAD_LETTER_PATH"

_log = logging.getLogger(__name__)


class DeadLetterRecorder:
    """Hosts `cpl.dead_letter`; records each message as one JSON line in `path` (if any)."""

    def __init__(self, path: Path | str | None = None) -> None:
        configured = path if path is not None else os.environ.get(DEAD_LETTER_PATH_ENV)
        self.path = Path(configured) if configured else None
        self._lock = asyncio.Lock()

    @activity.defn(name=DEAD_LETTER_ACTIVITY)
    async def record(self, message: DeadLetterMessage) -> None:
        """Append the message (with the time it was recorded) and log it."""
        entry = {"recordedAt": datetime.now(UTC).isoformat(), **message}
        line = json.dumps(entry, sort_keys=True, default=str)
        _log.error(
            "dead letter to %s: %s/%s run %s failed with %s",
            message["queue"],
            message["workflow"].get("tenant"),
            message["workflow"].get("name"),
            message["runId"],
            message["error"].get("Error"),
        )
        if self.path is None:
            return
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
