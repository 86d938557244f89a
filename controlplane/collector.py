"""Garbage-collector settings for one short-lived command.

Loading, rendering and checking a large repo allocates millions of objects that live until
the command ends; with CPython's default thresholds (a young collection every 700
allocations) the collector traverses them again and again: about 17 % of the CPU time of
`cpl check` on 1,000 workflows. Almost everything is freed by reference counting, so
collecting rarely costs little memory.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000


def tune_for_batch() -> None:
    """Collect cycles rarely: right for a command that builds a large tree of objects."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, max(middle, 50), max(old, 100))
