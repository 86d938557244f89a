"""A real Prometheus on this machine: the one of `cpl local up`, and of the tests.

`cpl local up` starts one when a target of the environment names a `prometheus.reloadUrl` on
the loopback address (`http://127.0.0.1:9090/-/reload`), and the `prometheus` binary is
installed (Debian's `prometheus` package, or `CPL_PROMETHEUS_BIN`). It listens there, with
the lifecycle API on (so apply's reload works), short scrape and evaluation intervals, and:

- `rule_files`: every `<rulesDir>/*.rules.yml` of the environment's targets, where
  `cpl apply` writes the rules files (`delivery.py`);
- scrape targets from a file Prometheus watches (`<state>-targets.json`, rewritten by every
  `cpl local up`): the Temporal dev servers' metrics endpoints and each target's
  `prometheus.workerMetrics` (the `cpl worker` of the target, when it runs).

Its data is kept under `.cpl/local/prometheus-data`, its log in `.cpl/local/prometheus.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlparse

import yaml

from controlplane.engines.emulation import LocalServer
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment, Target, confine_to_repo

PROMETHEUS_BIN_ENV = "CPL_PROMETHEUS_BIN"
SERVICE = "prometheus"
"""The `engine` and file stem of the local Prometheus under `.cpl/local`."""
LOCAL_INTERVAL = "2s"
"""Scrape and evaluation interval of the local Prometheus: alerts show within seconds."""
NOT_INSTALLED = (
    "the prometheus binary is not installed (apt-get install prometheus, or set "
    f"{PROMETHEUS_BIN_ENV}): the rules and metrics are not evaluated locally"
)


def find_prometheus() -> Path | None:
    """The `prometheus` binary: $CPL_PROMETHEUS_BIN, or on PATH; None when there is none."""
    for candidate in (os.environ.get(PROMETHEUS_BIN_ENV), shutil.which("prometheus")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def served_targets(environment: Environment) -> list[Target]:
    """The targets whose rules a Prometheus on this machine evaluates (loopback reloadUrl)."""
    return [t for t in environment.spec.targets if local_address(t) is not None]


def local_address(target: Target) -> tuple[str, int] | None:
    """(host, port) of the target's Prometheus when its `reloadUrl` is on the loopback."""
    settings = target.prometheus
    if settings is None or not settings.reload_url:
        return None
    parsed = urlparse(settings.reload_url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1") or parsed.port is None:
        return None
    return parsed.hostname, parsed.port


def config_document(
    rule_globs: Iterable[str], targets_file: Path, interval: str = LOCAL_INTERVAL
) -> dict[str, object]:
    """The Prometheus configuration: the rules files and the scrape targets of the file."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": sorted(set(rule_globs)),
        "scrape_configs": [
            {"job_name": "cpl", "file_sd_configs": [{"files": [str(targets_file)]}]},
        ],
    }


def write_config(
    repo: Path, environment: Environment, config: Path, targets_file: Path
) -> list[str]:
    """Write the local Prometheus' configuration for `environment`; the rules globs."""
    globs = []
    for target in served_targets(environment):
        assert target.prometheus is not None
        directory = confine_to_repo(
            repo.resolve(),
            target.prometheus.rules_dir,
            target.prometheus.allow_outside_repo,
            environment.name,
            "/spec/targets/prometheus/rulesDir",
        )
        directory.mkdir(parents=True, exist_ok=True)
        globs.append(str(directory.resolve() / "*.rules.yml"))
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(config_document(globs, targets_file)), encoding="utf-8")
    if not targets_file.exists():
        write_scrape_targets(targets_file, {})
    return globs


def write_scrape_targets(path: Path, jobs: Mapping[str, Iterable[str]]) -> None:
    """Prometheus file service discovery: `host:port` endpoints by the `source` label."""
    groups = [
        {"targets": sorted(set(addresses)), "labels": {"source": source}}
        for source, addresses in sorted(jobs.items())
        if addresses
    ]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(groups, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # Prometheus must never read half a file


def command(binary: Path, config: Path, host: str, port: int, data: Path) -> list[str]:
    return [
        str(binary),
        f"--config.file={config}",
        f"--web.listen-address={host}:{port}",
        f"--storage.tsdb.path={data}",
        "--web.enable-lifecycle",  # POST /-/reload, as `cpl apply` does after writing rules
        "--log.level=warn",
    ]


def start_prometheus(
    binary: Path,
    config: Path,
    host: str,
    port: int,
    data: Path,
    log: Path | None = None,
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Start Prometheus in its own session and return once `/-/ready` answers; EngineError
    (the process stopped again) when it exits or never becomes ready."""
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(log.open("ab")) if log else None
        process = subprocess.Popen(
            command(binary, config, host, port, data),
            stdin=subprocess.DEVNULL,
            stdout=stream or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stream else subprocess.DEVNULL,
            start_new_session=True,
        )
    address = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"prometheus exited with code {process.returncode}")
        if ready(address)[0]:
            return process
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise EngineError(f"prometheus at {address} was not ready within {timeout:g}s")


def ready(address: str) -> tuple[bool, str]:
    """Whether the Prometheus at `address` (`http://host:port`) answers `/-/ready`."""
    try:
        with urllib.request.urlopen(f"{address}/-/ready", timeout=2) as answer:
            return answer.status == 200, ""
    except (urllib.error.URLError, OSError) as error:
        return False, f"{address} does not answer: {getattr(error, 'reason', error)}"


class PrometheusEmulator:
    """Prometheus as a `cpl local` server (the emulator contract of `engines/emulation.py`);
    its configuration is written by `write_config` before it starts (`<state>.yml`)."""

    label = "Prometheus"
    setting = "prometheus.reloadUrl"
    example = "http://127.0.0.1:<port>/-/reload"

    def location(self, target: Target) -> str | None:
        found = local_address(target)
        return f"{found[0]}:{found[1]}" if found else None

    def address(self, host: str, port: int) -> str:
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self, server: LocalServer) -> subprocess.Popen[bytes]:
        binary = find_prometheus()
        if binary is None:
            raise EngineError(NOT_INSTALLED)
        return await asyncio.to_thread(
            start_prometheus,
            binary,
            config_path(server.state),
            server.host,
            server.port,
            server.state.with_name(f"{server.state.name}-data"),
            server.log,
            server.timeout,
        )

    def health(self, address: str, namespaces: tuple[str, ...]) -> tuple[bool, str]:
        return ready(address)


def config_path(state: Path) -> Path:
    return state.with_name(f"{state.name}.yml")


def targets_path(state: Path) -> Path:
    return state.with_name(f"{state.name}-targets.json")
