"""Warnings of a change that still succeeded, from an engine module to whoever applies it.

An engine module calls `warn(message)` when it did its part but something the user must know
about did not happen (a development Prometheus that is not running when its rules are
written). `cpl apply` collects them per change (`collecting()` around the backend's call, in
the thread that makes the change) and reports them as that change's `message`; outside a
collection (a Pulumi provider process, a direct call) the warning goes to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_collected: ContextVar[list[str] | None] = ContextVar("cpl_change_warnings", default=None)


def warn(message: str) -> None:
    """Report `message` about the change being made (it succeeded nevertheless)."""
    collected = _collected.get()
    if collected is None:
        print(f"warning: {message}", file=sys.stderr)
    else:
        collected.append(message)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """The warnings `warn` reports within the block (in this thread/context)."""
    collected: list[str] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)
