"""The local emulator contract: an engine that can run on this machine for `cpl local`.

`cpl local up|down|status` (controlplane/local.py) orchestrates processes, pid files, logs
and the lock of `.cpl/local`; what is engine-specific — where a target says the engine is,
how to start its server and how to tell it is healthy — comes from the bundle's `emulator`
(`base.py`), loaded only when `cpl local` runs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controlplane.spec.environment import Target


@dataclass(frozen=True)
class LocalServer:
    """One server `cpl local up` asks an emulator to start.

    `host` and `port` are where it listens (a loopback address), `address` what clients use
    to reach it (the emulator's own `address(host, port)`), `namespaces` those of the targets
    it serves. `state` is a path prefix under `.cpl/local` for the files the server keeps
    (`<state>.db`, ...), `log` the file its output is appended to, `timeout` how long it may
    take to become healthy.
    """

    host: str
    port: int
    address: str
    namespaces: tuple[str, ...]
    state: Path
    log: Path
    timeout: float


class Emulator(Protocol):
    """Starting and checking one engine's local server."""

    label: str
    """What users call the server ("Temporal dev server"), in messages."""

    setting: str
    """The target field saying where the engine is (`address`, `endpoint`)."""

    example: str
    """A value of that field for a local server (`127.0.0.1:<port>`)."""

    def location(self, target: Target) -> str | None:
        """The target's `setting` value: `host:port` or a URL (None when it has none)."""
        ...

    def address(self, host: str, port: int) -> str:
        """What clients use to reach a server listening on host:port."""
        ...

    async def start(self, server: LocalServer) -> subprocess.Popen[bytes]:
        """Start the server in its own session (it outlives `cpl`) and return once it is
        healthy; EngineError (the server stopped again) when it exits or stays unhealthy."""
        ...

    def health(self, address: str, namespaces: tuple[str, ...]) -> tuple[bool, str]:
        """Whether the server at `address` answers and holds `namespaces`; why not, if not."""
        ...

    # Optional: `metrics_address(state) -> str | None`, the `host:port` of the Prometheus
    # metrics of the server started with `state`, which the Prometheus of `cpl local`
    # scrapes (the Temporal dev server has one).
