"""The Step Functions emulator: a real `moto_server` with state machine execution switched on.

Started by `cpl local up` (detached, logging to a file, through `StepFunctionsEmulator`, the
bundle's emulator), by the test session and by the benchmarks (attached, on a free port); one
implementation of starting, waiting, configuring and stopping it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from controlplane.engines.emulation import LocalServer
from controlplane.engines.temporal.devserver import free_port
from controlplane.errors import EngineError
from controlplane.spec.environment import Target

# Real ASL execution, and Lambda without Docker (a function, existing or not, echoes its event).
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def moto_binary() -> Path:
    """`moto_server` next to this Python (the venv), else on PATH; EngineError when missing."""
    candidate = Path(sys.executable).with_name("moto_server")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("moto_server")
    if found is None:
        raise EngineError(
            "the Step Functions emulator is not installed: `pip install 'moto[server]'` puts "
            "`moto_server` next to python"
        )
    return Path(found)


def moto_answers(url: str) -> bool:
    """Whether a moto server answers at `url`."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
            return 200 <= int(response.status) < 300
    except (OSError, urllib.error.URLError):
        return False


def configure_moto(url: str) -> None:
    """Switch on real execution (MOTO_CONFIG); EngineError when the server refuses."""
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps(MOTO_CONFIG).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as error:
        raise EngineError(f"moto_server refused its configuration: {error}") from None


@dataclass
class MotoServer:
    """A running moto server; `stop()` ends it (SIGTERM, then SIGKILL after `grace`)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto_server(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    url: str | None = None,
    log: Path | None = None,
    detached: bool = False,
    timeout: float = 30.0,
) -> MotoServer:
    """Start moto_server on `host:port` (a free port by default), wait until it answers and
    configure it. `detached` puts it in its own session so it outlives the caller."""
    port = port or free_port(host)
    url = url or f"http://{host}:{port}"
    command = [str(moto_binary()), "-H", host, "-p", str(port)]
    output = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
            start_new_session=detached,
        )
    finally:
        if output is not None:
            output.close()  # the child keeps its own descriptor
    server = MotoServer(process, url)
    try:
        deadline = time.monotonic() + timeout
        while not moto_answers(url):
            if process.poll() is not None:
                raise EngineError(f"moto_server exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise EngineError(f"moto_server did not answer within {timeout:g}s")
            time.sleep(0.1)
        configure_moto(url)
    except BaseException:
        server.stop(grace=2.0)
        raise
    return server


class StepFunctionsEmulator:
    """The bundle's emulator: moto for a target whose `endpoint` is on this machine."""

    label = "Step Functions emulator (moto)"
    setting = "endpoint"
    example = "http://127.0.0.1:<port>"

    def location(self, target: Target) -> str | None:
        return target.endpoint

    def address(self, host: str, port: int) -> str:
        return f"http://{_url_host(host)}:{port}"

    async def start(self, server: LocalServer) -> subprocess.Popen[bytes]:
        started = await asyncio.to_thread(
            start_moto_server,
            server.host,
            server.port,
            url=server.address,
            log=server.log,
            detached=True,
            timeout=server.timeout,
        )
        return started.process

    def health(self, address: str, namespaces: tuple[str, ...]) -> tuple[bool, str]:
        if moto_answers(address):
            return True, ""
        return False, f"{address} does not answer"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
