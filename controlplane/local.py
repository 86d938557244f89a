"""`cpl local`: the local emulators of an environment's engines, as background processes.

For every target whose engine has a local emulator (its bundle's `emulator`: a Temporal dev
server, persisted to `.cpl/local/<name>.db`, with the targets' namespaces; moto with real state
machine execution and Lambda without Docker for Step Functions) and whose address is on the
loopback address, one server; targets of an engine sharing an address share a server. This
module orchestrates processes, pid files, logs and the lock; starting a server and telling it
is healthy is the emulator's business (`engines/emulation.py`).

When a target names a Prometheus on this machine (`prometheus.reloadUrl` on the loopback), one
more server: a real Prometheus evaluating the rules `cpl apply` writes, scraping the engines'
metrics and the targets' workers (`monitoring/local.py`); `up` says so when it is not
installed, and starts the engines all the same.

The servers run detached (their own session) and outlive the command; `.cpl/local/<name>.pid`
(JSON: pid, environment, engine, address, command) says which process is ours, and
`<name>.log` holds its output. A pid file whose process is gone, or whose pid now runs
something else, is stale and ignored. `up` and `down` hold the lock of `.cpl/local` so two of
them never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from controlplane.deadletters.outbox import bound_queues
from controlplane.deadletters.sqs import QueueUnreachable, ensure
from controlplane.deploy.lock import StateLock
from controlplane.engines import ENGINES
from controlplane.engines.emulation import Emulator, LocalServer
from controlplane.errors import ConfigError, EngineError
from controlplane.files import pid_alive
from controlplane.monitoring import local as prometheus
from controlplane.spec.environment import Environment, Target

LOCAL_DIR = Path(".cpl") / "local"
DEFAULT_TIMEOUT = 60.0
DEFAULT_GRACE = 10.0
LOG_TAIL_LINES = 20

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Servers started by this process: polled to reap them once stopped (an unreaped child is a
# zombie whose pid still answers) and kept referenced while they run.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class LocalService:
    """One local server: `name` is its file stem under `.cpl/local`; `address` what clients
    use (`host:port` for Temporal, the endpoint URL for Step Functions); `label` what users
    call it."""

    name: str
    engine: str
    host: str
    port: int
    address: str
    label: str
    targets: tuple[str, ...]
    namespaces: tuple[str, ...] = ()

    def describe(self) -> str:
        targets = ", ".join(self.targets)
        return f"the {self.label} of target {targets} ({self.address})"


@dataclass(frozen=True)
class ServiceStatus:
    """A local server as `up`, `down` or `status` left it."""

    service: LocalService
    running: bool
    healthy: bool
    pid: int | None
    log: Path
    action: str = ""  # up: started | already running; down: stopped | not running
    # `pid`: of the running server; after `down` stopped one, the pid it had.
    detail: str = ""
    provisioned: tuple[str, ...] = ()  # up: the queues and buckets it holds for the environment

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.service.name,
            "engine": self.service.engine,
            "targets": list(self.service.targets),
            "address": self.service.address,
            "namespaces": list(self.service.namespaces),
            "state": "running" if self.running else "stopped",
            "pid": self.pid,
            "healthy": self.healthy,
            "action": self.action or None,
            "detail": self.detail or None,
            "log": str(self.log),
            "provisioned": list(self.provisioned),
        }


def local_dir(repo: Path) -> Path:
    return repo.resolve() / LOCAL_DIR


def local_services(environment: Environment) -> list[LocalService]:
    """The servers the environment's targets need (those of engines with a local emulator).

    ConfigError for such a target that is not on the loopback address: `cpl local` only runs
    engines on this machine.
    """
    grouped: dict[tuple[str, str, int], list[Target]] = {}
    emulators: dict[str, Emulator] = {}
    for target in environment.spec.targets:
        emulator = _emulator(target.engine)
        if emulator is None:
            continue  # e.g. Argo's GitOps delivery writes files: nothing to run
        emulators[target.engine] = emulator
        host, port = _host_port(environment, target, emulator)
        grouped.setdefault((target.engine, host, port), []).append(target)
    if not grouped:
        local = [e.title for e in ENGINES.values() if e.emulator is not None]
        raise ConfigError(
            f"environment '{environment.name}' has no target of an engine that runs locally "
            f"({', '.join(local)}): nothing to start"
        )
    for target in prometheus.served_targets(environment):  # and a Prometheus, if asked for
        emulators[prometheus.SERVICE] = prometheus.PrometheusEmulator()
        host, port = prometheus.local_address(target) or ("127.0.0.1", 0)
        grouped.setdefault((prometheus.SERVICE, host, port), []).append(target)
    per_engine = [engine for engine, _, _ in grouped]
    services = []
    for (engine, host, port), targets in grouped.items():
        name = engine if per_engine.count(engine) == 1 else f"{engine}-{port}"
        namespaces = sorted({t.namespace for t in targets if t.namespace})
        if engine == prometheus.SERVICE:
            namespaces = []
        emulator = emulators[engine]
        services.append(
            LocalService(
                name,
                engine,
                host,
                port,
                emulator.address(host, port),
                emulator.label,
                tuple(t.name for t in targets),
                tuple(namespaces),
            )
        )
    return services


def local_up(
    repo: Path, environment: Environment, *, timeout: float = DEFAULT_TIMEOUT
) -> list[ServiceStatus]:
    """Start every server that is not running yet and wait until all are healthy.

    Checks every port first: EngineError naming the port and the target when one is taken by
    another process (nothing is started then). When a server dies or stays unhealthy, stops
    those started by this call and raises EngineError with the tail of its log.
    """
    services = local_services(environment)
    directory = local_dir(repo)
    with StateLock(directory, timeout=timeout, command=_command_line()):
        results: dict[str, ServiceStatus] = {}
        to_start: list[LocalService] = []
        for service in services:
            record = _read_pid(directory, service.name)
            if record is not None and _is_running(record):
                if record.get("address") != service.address:
                    raise ConfigError(
                        f"{_pid_path(directory, service.name)}: a {service.label} of "
                        f"environment '{record.get('environment')}' runs at "
                        f"{record.get('address')} (pid {record['pid']}): stop it first with "
                        f"`cpl local down --env {record.get('environment')}`"
                    )
                results[service.name] = _status(directory, service, record, "already running")
                continue
            _pid_path(directory, service.name).unlink(missing_ok=True)  # stale, if any
            if service.engine == prometheus.SERVICE:
                if prometheus.find_prometheus() is None:
                    results[service.name] = _not_installed(directory, service)
                    continue
                state = directory / service.name
                prometheus.write_config(
                    repo, environment, prometheus.config_path(state), prometheus.targets_path(state)
                )
            if _port_in_use(service.host, service.port):
                raise EngineError(
                    f"port {service.port} is already in use by another process: cannot start "
                    f"{service.describe()}. Stop that process, or give target "
                    f"'{service.targets[0]}' another port in environments/{environment.name}.yaml"
                )
            to_start.append(service)
        if to_start:
            started = asyncio.run(_start_all(directory, environment.name, to_start, timeout))
            for service, pid in started:
                results[service.name] = ServiceStatus(
                    service, True, True, pid, _log_path(directory, service.name), "started"
                )
        for name, status in results.items():
            if status.healthy and status.service.engine != prometheus.SERVICE:
                made = provision(environment, status.service.address)
                results[name] = dataclasses.replace(status, provisioned=made)
        _scrape_targets(directory, environment, services)
    return [results[service.name] for service in services]


def _scrape_targets(
    directory: Path, environment: Environment, services: list[LocalService]
) -> None:
    """Point the local Prometheus at the engines' metrics and the targets' workers."""
    jobs: dict[str, list[str]] = {}
    for service in services:
        emulator = _emulator(service.engine)
        where = getattr(emulator, "metrics_address", None)  # optional in the contract
        address = where(directory / service.name) if where is not None else None
        if address:
            jobs.setdefault(service.engine, []).append(address)
    for target in environment.spec.targets:
        if target.prometheus is not None and target.prometheus.worker_metrics:
            jobs.setdefault("worker", []).append(target.prometheus.worker_metrics)
    for service in services:
        if service.engine == prometheus.SERVICE:
            state = directory / service.name
            if prometheus.config_path(state).exists():
                prometheus.write_scrape_targets(prometheus.targets_path(state), jobs)


def _not_installed(directory: Path, service: LocalService) -> ServiceStatus:
    """A Prometheus that cannot start here: reported, not an error (the engines still run)."""
    log = _log_path(directory, service.name)
    return ServiceStatus(service, False, True, None, log, "not installed", prometheus.NOT_INSTALLED)


def provision(environment: Environment, address: str) -> tuple[str, ...]:
    """Create, on the emulator at `address`, the dead-letter queues and the object-store
    buckets the environment binds there, so the local stack works out of the box.

    A queue is there when the emulator is the endpoint its target reaches it through (a Step
    Functions target's own endpoint, or `spec.aws` for a Temporal target); a bucket of
    `bindings.stores` when `spec.aws` names the emulator. Creating is idempotent.
    """
    made: list[str] = []
    endpoint = address.rstrip("/")
    try:
        for _, queue in bound_queues(environment):
            if (queue.endpoint or "").rstrip("/") == endpoint:
                ensure(queue)
                made.append(f"sqs:{queue.name}")
        aws = environment.spec.aws
        if aws is not None and (aws.endpoint or "").rstrip("/") == endpoint:
            for bucket in sorted(_buckets(environment)):
                _ensure_bucket(bucket, aws.region, endpoint)
                made.append(f"s3:{bucket}")
    except QueueUnreachable as error:
        raise EngineError(f"cannot create the queues of the local stack: {error}") from None
    return tuple(made)


def _ensure_bucket(bucket: str, region: str, endpoint: str) -> None:
    """Create an S3 bucket on the local emulator unless it exists (any credentials do)."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
        config=Config(connect_timeout=2.0, retries={"total_max_attempts": 2}),
    )
    options = {} if region == "us-east-1" else {"LocationConstraint": region}
    try:
        if options:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration=options)
        else:
            client.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise EngineError(f"cannot create bucket {bucket} at {endpoint}: {error}") from None
    except BotoCoreError as error:
        raise EngineError(f"cannot create bucket {bucket} at {endpoint}: {error}") from None


def _buckets(environment: Environment) -> set[str]:
    urls = (store.url for store in environment.spec.bindings.stores.values())
    return {parsed.netloc for parsed in map(urlparse, urls) if parsed.scheme == "s3"}


def local_down(
    repo: Path, environment: Environment, *, grace: float = DEFAULT_GRACE
) -> list[ServiceStatus]:
    """Stop the environment's servers (SIGTERM, then SIGKILL after `grace` seconds) and
    remove their pid files; servers that are not running are reported, not an error."""
    services = {service.name: service for service in local_services(environment)}
    directory = local_dir(repo)
    if not directory.exists():
        return [_stopped(directory, s, "not running") for s in services.values()]
    # Also what this environment started under other names (its file was edited since `up`).
    for path in sorted(directory.glob("*.pid")):
        record = _read_pid(directory, path.stem)
        if record and record.get("environment") == environment.name and path.stem not in services:
            services[path.stem] = _service_from_record(path.stem, record)
    results = []
    with StateLock(directory, timeout=grace + DEFAULT_TIMEOUT, command=_command_line()):
        for service in services.values():
            record = _read_pid(directory, service.name)
            if record is None:
                results.append(_stopped(directory, service, "not running"))
            elif not _is_running(record):
                _pid_path(directory, service.name).unlink(missing_ok=True)
                results.append(_stopped(directory, service, "not running", "stale pid file"))
            else:
                pid = int(record["pid"])
                _stop(pid, grace)
                _pid_path(directory, service.name).unlink(missing_ok=True)
                results.append(_stopped(directory, service, "stopped", pid=pid))
    return results


def stop_target_server(
    repo: Path, environment: Environment, target: str, *, grace: float = DEFAULT_GRACE
) -> LocalService:
    """Stop the server `cpl local up` runs for `target` (its state stays; `local_up` starts it
    again): the engine outage of a fault plan. ConfigError when no such server runs."""
    service = running_target_server(repo, environment, target)
    directory = local_dir(repo)
    with StateLock(directory, timeout=grace + DEFAULT_TIMEOUT, command=_command_line()):
        record = _read_pid(directory, service.name)
        if record is not None and _is_running(record):
            _stop(int(record["pid"]), grace)
        _pid_path(directory, service.name).unlink(missing_ok=True)
    return service


def running_target_server(repo: Path, environment: Environment, target: str) -> LocalService:
    """The running `cpl local` server of `target`; ConfigError saying how to start it."""
    for service in local_services(environment):
        if target not in service.targets:
            continue
        record = _read_pid(local_dir(repo), service.name)
        if record is not None and _is_running(record) and record.get("address") == service.address:
            return service
        raise ConfigError(
            f"{service.describe()} is not running under cpl local: start it with "
            f"`cpl local up --env {environment.name}`"
        )
    raise ConfigError(f"target '{target}' has no server that cpl local runs")


def local_status(repo: Path, environment: Environment) -> list[ServiceStatus]:
    """Per server: running (our process is alive), pid, address and whether it answers."""
    directory = local_dir(repo)
    results = []
    for service in local_services(environment):
        record = _read_pid(directory, service.name)
        if record is not None and _is_running(record):
            results.append(_status(directory, service, record, ""))
        elif service.engine == prometheus.SERVICE and prometheus.find_prometheus() is None:
            results.append(_not_installed(directory, service))
        else:
            detail = ""
            if _port_in_use(service.host, service.port):
                detail = f"port {service.port} is in use by another process"
            results.append(_stopped(directory, service, "", detail))
    return results


# --- starting -------------------------------------------------------------------------------


async def _start_all(
    directory: Path, environment: str, services: list[LocalService], timeout: float
) -> list[tuple[LocalService, int]]:
    """Start the servers concurrently; all of them or (stopping the others) none."""
    outcomes = await asyncio.gather(
        *(_start(directory, environment, s, timeout) for s in services), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    started = [(s, o) for s, o in zip(services, outcomes, strict=True) if isinstance(o, int)]
    if failures:
        for service, pid in started:
            _stop(pid, DEFAULT_GRACE)
            _pid_path(directory, service.name).unlink(missing_ok=True)
        raise failures[0]
    return started


async def _start(directory: Path, environment: str, service: LocalService, timeout: float) -> int:
    log = _log_path(directory, service.name)
    offset = log.stat().st_size if log.exists() else 0
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"--- {stamp} cpl local up --env {environment}: {service.describe()}\n")
    emulator = _emulator(service.engine)
    assert emulator is not None  # local_services only keeps engines with an emulator
    server = LocalServer(
        host=_bind_host(service.host),
        port=service.port,
        address=service.address,
        namespaces=service.namespaces,
        state=directory / service.name,
        log=log,
        timeout=timeout,
    )
    try:
        process = await emulator.start(server)
    except EngineError as error:
        raise EngineError(
            f"could not start {service.describe()}: {error}{_log_tail(log, offset)}"
        ) from None
    _CHILDREN[process.pid] = process
    _write_pid(directory, service, environment, process)
    return process.pid


# --- health ---------------------------------------------------------------------------------


def _status(
    directory: Path, service: LocalService, record: dict[str, Any], action: str
) -> ServiceStatus:
    healthy, detail = _health(service)
    log = _log_path(directory, service.name)
    return ServiceStatus(service, True, healthy, int(record["pid"]), log, action, detail)


def _stopped(
    directory: Path, service: LocalService, action: str, detail: str = "", pid: int | None = None
) -> ServiceStatus:
    log = _log_path(directory, service.name)
    return ServiceStatus(service, False, False, pid, log, action, detail)


def _health(service: LocalService) -> tuple[bool, str]:
    emulator = _emulator(service.engine)
    if emulator is None:
        return False, f"engine '{service.engine}' has no local emulator"
    return emulator.health(service.address, service.namespaces)


def _emulator(engine: str) -> Emulator | None:
    """The local emulator of a registered engine (None when it has none or is unknown: a pid
    file may outlive the engine's registration)."""
    if engine == prometheus.SERVICE:
        return prometheus.PrometheusEmulator()
    factory = ENGINES[engine].emulator if engine in ENGINES else None
    return factory() if factory is not None else None


def _port_in_use(host: str, port: int) -> bool:
    """Whether something listens on host:port (SO_REUSEADDR: TIME_WAIT leftovers don't count)."""
    bind_host = _bind_host(host)
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind_host, port))
        except OSError:
            return True
    return False


# --- processes ------------------------------------------------------------------------------


def _pid_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.pid"


def _log_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.log"


def _write_pid(
    directory: Path, service: LocalService, environment: str, process: subprocess.Popen[bytes]
) -> None:
    args = process.args
    command = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    record = {
        "pid": process.pid,
        "environment": environment,
        "engine": service.engine,
        "address": service.address,
        "targets": list(service.targets),
        "namespaces": list(service.namespaces),
        "command": command,
        "startedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = _pid_path(directory, service.name)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def _read_pid(directory: Path, name: str) -> dict[str, Any] | None:
    try:
        record = json.loads(_pid_path(directory, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    return record


def _service_from_record(name: str, record: dict[str, Any]) -> LocalService:
    engine = str(record.get("engine", ""))
    emulator = _emulator(engine)
    address = str(record.get("address", ""))
    parsed = urlparse(address if "//" in address else f"//{address}")
    return LocalService(
        name,
        engine,
        parsed.hostname or "127.0.0.1",
        parsed.port or 0,
        address,
        emulator.label if emulator is not None else f"{engine} server",
        tuple(record.get("targets", ())),
        tuple(record.get("namespaces", ())),
    )


def _is_running(record: dict[str, Any]) -> bool:
    """Whether the pid file's process is alive and still the server we started (a reused
    pid runs another command line)."""
    pid = int(record["pid"])
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc (not Linux): trust the pid
    actual = cmdline.split("\0")[:-1]
    expected = [str(part) for part in record.get("command", [])]
    # A script (moto_server) runs as `python <script> args`: compare the tail.
    return bool(expected) and actual[-len(expected) :] == expected


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    return pid_alive(pid)


def _stop(pid: int, grace: float) -> None:
    """SIGTERM the server's process group, then SIGKILL after `grace` seconds."""
    for number, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, number)  # started in its own session: pgid == pid
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)
        except PermissionError as error:
            raise EngineError(f"cannot stop pid {pid}: {error}") from None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
    if _alive(pid):
        raise EngineError(f"pid {pid} is still alive after SIGKILL")


def _log_tail(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as stream:
            stream.seek(offset)
            lines = stream.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    tail = [line for line in lines if not line.startswith("--- ")][-LOG_TAIL_LINES:]
    if not tail:
        return f" (log: {log})"
    return f"\nlast lines of {log}:\n" + "\n".join(f"  {line}" for line in tail)


# --- addresses ------------------------------------------------------------------------------


def _host_port(environment: Environment, target: Target, emulator: Emulator) -> tuple[str, int]:
    where = f"environments/{environment.name}.yaml: target '{target.name}'"
    value = emulator.location(target)
    if not value:
        raise ConfigError(
            f"{where} has no {emulator.setting}: `cpl local` runs only emulators on 127.0.0.1 "
            f"(set {emulator.setting}: {emulator.example})"
        )
    # a URL (http://127.0.0.1:4566) or host:port (127.0.0.1:7233)
    parsed = urlparse(value if "//" in value else f"//{value}")
    host, port = parsed.hostname, parsed.port
    if port is None and host and parsed.scheme in ("http", "https"):
        port = 443 if parsed.scheme == "https" else 80
    if host not in _LOOPBACK or port is None:
        raise ConfigError(
            f"{where} points at {value}: `cpl local` only starts engines on the loopback "
            "address (127.0.0.1:<port>)"
        )
    return host, port


def _bind_host(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


def _command_line() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return shlex.join([program, *sys.argv[1:]])
