"""`cpl local up|down|status`: the embedded engines of a local environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from controlplane.cli.output import Seconds, console_for, emit, format_option, repo_option, to_json
from controlplane.errors import ExitCode
from controlplane.local import (
    DEFAULT_GRACE,
    DEFAULT_TIMEOUT,
    ServiceStatus,
    local_down,
    local_status,
    local_up,
)
from controlplane.spec.load import load_environment

F = TypeVar("F", bound=Callable[..., Any])

MAX_WAIT = 3600.0
"""The longest --timeout or --grace of `cpl local`: an hour."""


def _env_option(func: F) -> F:
    return click.option(
        "--env",
        "env_name",
        default="local",
        show_default=True,
        help="The environment whose engines run locally.",
    )(func)


@click.group("local")
def local_group() -> None:
    """Start and stop the embedded engines of a local environment.

    A Temporal dev server per Temporal target and a Step Functions emulator (moto) per Step
    Functions target, on 127.0.0.1 at the targets' ports, running in the background: pid files
    and logs live in .cpl/local/ of the repo. A target whose prometheus.reloadUrl is on
    127.0.0.1 also gets a Prometheus there, loaded with the applied rules (docs/local.md).
    """


@local_group.command("up")
@_env_option
@click.option(
    "--timeout",
    type=Seconds(min=1, max=MAX_WAIT),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the engines to become healthy.",
)
@repo_option
@format_option("json")
def up_command(
    env_name: str, timeout: float, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """Start the engines (those already running are left alone) and wait until healthy.

    Exits 1 when a port is taken by another process, an engine fails to start (the tail of
    its log is shown), or one that was already running is not healthy.
    """
    environment = load_environment(repo, env_name)
    statuses = local_up(repo, environment, timeout=timeout)
    _report(env_name, statuses, repo, output_format, output_file)
    # An engine that was already running but does not answer (or lacks a namespace) is not up.
    return int(ExitCode.OK if all(s.healthy for s in statuses) else ExitCode.ERROR)


@local_group.command("down")
@_env_option
@click.option(
    "--grace",
    type=Seconds(min=0, max=MAX_WAIT),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL.",
)
@repo_option
@format_option("json")
def down_command(
    env_name: str, grace: float, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """Stop the engines started by `cpl local up` (nothing running is fine)."""
    environment = load_environment(repo, env_name)
    statuses = local_down(repo, environment, grace=grace)
    _report(env_name, statuses, repo, output_format, output_file)
    return int(ExitCode.OK)


@local_group.command("status")
@_env_option
@repo_option
@format_option("json")
def status_command(env_name: str, repo: Path, output_format: str, output_file: Path | None) -> int:
    """Per engine: running or stopped, pid, address and whether it answers.

    Exits 1 when an engine is not running or does not answer, naming it on standard error.
    """
    environment = load_environment(repo, env_name)
    statuses = local_status(repo, environment)
    _report(env_name, statuses, repo, output_format, output_file)
    down = [
        f"{s.service.name} ({'running but not answering' if s.running else 'not running'})"
        for s in statuses
        if not s.healthy
    ]
    if down:
        console_for(err=True).print(
            f"error: local engines down: {', '.join(down)} (start them with `cpl local up`)",
            markup=False,
        )
        return int(ExitCode.ERROR)
    return int(ExitCode.OK)


def _report(
    env_name: str,
    statuses: list[ServiceStatus],
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> None:
    if output_format == "json":
        document = {"environment": env_name, "services": [s.to_json() for s in statuses]}
        emit(to_json(document), output_file)
        if output_file is None:
            return
    console = console_for()
    for status in statuses:
        console.print(_line(status, repo), markup=False, highlight=False)


def _line(status: ServiceStatus, repo: Path) -> str:
    service = status.service
    line = f"{service.name}: {status.action or ('running' if status.running else 'stopped')}"
    if status.running:
        line += f", pid {status.pid}, " + ("healthy" if status.healthy else "NOT healthy")
    elif status.pid is not None:
        line += f" (pid {status.pid})"
    line += f" at {service.address}"
    if service.namespaces:
        line += f" (namespace {', '.join(service.namespaces)})"
    line += f" for target {', '.join(service.targets)}"
    if status.detail:
        line += f"; {status.detail}"
    if status.running:
        line += f"; log {_relative(status.log, repo)}"
    if status.provisioned:
        line += f"; holds {', '.join(status.provisioned)}"
    return line


def _relative(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo.resolve()))
    except ValueError:
        return str(path)
