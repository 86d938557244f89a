"""Cache entries on disk: one JSON file per key, written atomically, read defensively.

Layout: `<root>/v1/<kind>/<key[:2]>/<key>.json`, each file `{"key": ..., "value": ...}`.
The small entries one command reads (one per workflow file) are also kept together in one
bundle per environment and kind of run (`<root>/v1/bundle/...`), read at once instead of
one file per workflow; a bundle holds entries under their own keys, so an old bundle can
only miss, never answer wrongly.
A writer writes a temporary file in the same folder and renames it over the entry, so a
reader sees a whole entry or none, whatever runs concurrently or gets killed; a reader that
finds a file it cannot parse, or one holding another key, treats it as a miss (and the next
writer replaces it). Reading an entry touches it, so pruning by modification time drops the
entries used least recently first.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYOUT = "v1"
DEFAULT_MAX_MB = 1024
"""The size the cache is pruned to (`CPL_CACHE_MAX_MB`)."""
PRUNE_EVERY = 600.0
"""Seconds between two prunes of one cache (`prune_now`): walking the cache costs more than
a warm run's work, and ten minutes of entries do not matter against the cap."""
PRUNE_TO = 0.8
"""A prune removes the least recently used entries until the cache is this part of its cap."""
BUNDLED = frozenset({"workflow", "policy", "rules"})
"""The kinds of entries a bundle holds (small ones, read by every run)."""
NO_CACHE_ENV = "CPL_NO_CACHE"
DIR_ENV = "CPL_CACHE_DIR"
MAX_MB_ENV = "CPL_CACHE_MAX_MB"


@dataclass
class Counters:
    """Hits, misses and writes per kind of entry (what a run found and added)."""

    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1


class Cache:
    """A cache rooted at `root`; `enabled=False` is a cache that never hits nor writes."""

    def __init__(self, root: Path, *, enabled: bool = True, max_bytes: int | None = None):
        self.root = root
        self.enabled = enabled
        self.max_bytes = max_bytes if max_bytes is not None else DEFAULT_MAX_MB * 2**20
        self.counters = Counters()
        self._lock = threading.Lock()
        self._base = os.path.join(str(root), LAYOUT)
        self._bundle: str | None = None
        self._bundled: dict[str, Any] = {}
        self._used: dict[str, Any] = {}

    def _path(self, kind: str, key: str) -> Path:
        return Path(self._file(kind, key))

    def _file(self, kind: str, key: str) -> str:
        return f"{self._base}/{kind}/{key[:2]}/{key}.json"

    def _read(self, path: str, key: str) -> Any | None:
        try:
            with open(path, "rb") as handle:
                entry = json.loads(handle.read())
            if not isinstance(entry, dict) or entry.get("key") != key or "value" not in entry:
                raise ValueError("not an entry of this key")
        except (OSError, ValueError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the prune keeps it longest
        return entry

    def open_bundle(self, name: str) -> None:
        """Read the bundle `name` (a key): later `get`s of bundled kinds look there first,
        and `save_bundle` writes the entries this run used back into it."""
        if not self.enabled:
            return
        self._bundle = name
        entry = self._read(self._file("bundle", name), name)
        value = entry["value"] if entry is not None else None
        self._bundled = value if isinstance(value, dict) else {}

    def save_bundle(self) -> None:
        """Write the bundle if this run used other entries than it held."""
        if self._bundle is None or self._used.keys() == self._bundled.keys():
            return
        self.put("bundle", self._bundle, self._used)
        self._bundled = dict(self._used)

    def get(self, kind: str, key: str) -> Any | None:
        """The value stored under (kind, key), or None: absent, unreadable or not whole."""
        if not self.enabled:
            return None
        name = f"{kind}/{key}"
        if name in self._bundled:
            value = self._bundled[name]
        else:
            entry = self._read(self._file(kind, key), key)
            if entry is None:
                with self._lock:
                    self.counters.count(self.counters.misses, kind)
                return None
            value = entry["value"]
        with self._lock:
            self.counters.count(self.counters.hits, kind)
            if self._bundle is not None and kind in BUNDLED:
                self._used[name] = value
        return value

    def put(self, kind: str, key: str, value: Any) -> None:
        """Store `value` (JSON data) under (kind, key); a cache that cannot be written is
        skipped silently (it is an optimisation, never a reason to fail a command)."""
        if not self.enabled:
            return
        path = self._path(kind, key)
        text = json.dumps({"key": key, "value": value}, separators=(",", ":"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(temporary, path)
            except BaseException:
                _remove(Path(temporary))
                raise
        except OSError:
            return
        with self._lock:
            self.counters.count(self.counters.writes, kind)
            if self._bundle is not None and kind in BUNDLED:
                self._used[f"{kind}/{key}"] = value

    @property
    def wrote(self) -> bool:
        return bool(self.counters.writes)

    def prune_now(self) -> int:
        """`prune` when this run wrote entries and no prune ran in the last PRUNE_EVERY
        seconds (the time of the last one is the mtime of `<root>/v1/pruned`)."""
        if not self.enabled or not self.wrote:
            return 0
        marker = Path(self._base) / "pruned"
        try:
            if time.time() - marker.stat().st_mtime < PRUNE_EVERY:
                return 0
        except OSError:
            pass
        with contextlib.suppress(OSError):
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return self.prune()

    def prune(self) -> int:
        """Remove the least recently used entries while the cache is larger than its cap;
        returns the bytes removed. Temporary files of writers that died are removed too."""
        if not self.enabled:
            return 0
        entries: list[tuple[float, int, Path]] = []
        total = 0
        for folder, _, names in os.walk(self.root / LAYOUT):
            for name in names:
                path = Path(folder) / name
                try:
                    info = path.stat()
                except OSError:
                    continue
                entries.append((info.st_mtime, info.st_size, path))
                total += info.st_size
        removed = 0
        if total <= self.max_bytes:
            return 0
        entries.sort()
        goal = int(self.max_bytes * PRUNE_TO)
        for _, size, path in entries:
            if total - removed <= goal:
                break
            if _remove(path):
                removed += size
        return removed


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


def open_cache(
    repo: Path, *, enabled: bool = True, environ: Mapping[str, str] | None = None
) -> Cache:
    """The repo's cache: `.cpl/cache/` (or `CPL_CACHE_DIR`), capped at `CPL_CACHE_MAX_MB`
    megabytes; disabled by `enabled=False` (`--no-cache`) or `CPL_NO_CACHE=1`."""
    environ = os.environ if environ is None else environ
    off = environ.get(NO_CACHE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    root = Path(environ[DIR_ENV]) if environ.get(DIR_ENV) else repo / ".cpl" / "cache"
    configured = environ.get(MAX_MB_ENV, "").strip()
    megabytes = int(configured) if configured.isdigit() else DEFAULT_MAX_MB
    return Cache(root, enabled=enabled and not off, max_bytes=megabytes * 2**20)
