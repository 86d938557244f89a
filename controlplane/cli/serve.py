"""`cpl serve events`: the CloudEvents receiver of Temporal targets (docs/triggers.md)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from controlplane.cli.output import echo, repo_option
from controlplane.cli.selection import target_named
from controlplane.errors import ConfigError, ExitCode
from controlplane.spec.load import load_environment, load_workflows


@click.group("serve")
def serve_group() -> None:
    """Serve cpl's own endpoints."""


@serve_group.command("events")
@click.option("--env", "env_name", required=True, help="The environment.")
@click.option("--target", "target_name", default=None, help="Only this Temporal target of ENV.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The port to listen on (0: any free port, announced on start).",
)
@click.option(
    "--token-env",
    "token_env",
    default=None,
    metavar="NAME",
    help="The environment variable holding the bearer token of authenticated sources.",
)
@repo_option
def events_command(
    env_name: str,
    target_name: str | None,
    host: str,
    port: int,
    token_env: str | None,
    repo: Path,
) -> int:
    """Receive CloudEvents over HTTP and start runs of the workflows whose triggers match.

    For the workflows ENV places on its Temporal targets. Structured mode
    (application/cloudevents+json) and binary mode (ce-* headers, JSON data). A run's id is
    <tenant>-<name>-<event id>: a redelivered event starts no second run. Runs until Ctrl-C
    (or SIGTERM).
    """
    from controlplane.engines.temporal.encryption import target_converter
    from controlplane.engines.temporal.events import EventServer, event_routes

    environment = load_environment(repo, env_name)
    if target_name is not None:
        target_named(environment, target_name, engine="temporal")
    loaded = load_workflows(repo)
    broken = [d for d in loaded.diagnostics if d.severity == "error"]
    if broken:
        raise ConfigError("the workflows do not validate (run cpl validate)", diagnostics=broken)
    routes = event_routes([w.model for w in loaded.workflows], environment, target_name)
    if not routes:
        where = f"target '{target_name}'" if target_name else "its Temporal targets"
        raise ConfigError(
            f"no workflow with triggers is placed on {where} of environment '{environment.name}'"
        )
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigError(f"--token-env {token_env}: the variable is not set or empty")
    if token is None and any(route.trigger.authenticated for route in routes):
        echo(
            "warning: triggers with authenticated: true never match without --token-env",
            err=True,
        )
    # the targets' payload codecs: run inputs of workflows with security.encryption.key are
    # encrypted (a bad key binding stops the receiver here, not at the first event)
    models = tuple(w.model for w in loaded.workflows)
    converters = {
        route.target.name: target_converter(environment, route.target, models, repo=repo)
        for route in routes
    }
    try:
        server = EventServer(
            routes,
            host=host,
            port=port,
            token=token,
            log=lambda line: echo(line, err=True),
            converter=lambda target: converters.get(target.name),
        )
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    bound_host, bound_port = server.address
    workflows = len({route.workflow.key for route in routes})
    echo(
        f"cpl serve events: listening on http://{bound_host}:{bound_port}/ for {len(routes)} "
        f"trigger(s) of {workflows} workflow(s) (Ctrl-C to stop)",
        err=True,
    )

    def stop(*_: Any) -> None:
        # shutdown() waits for serve_forever to return: call it off the serving thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    echo("cpl serve events: stopped", err=True)
    return int(ExitCode.OK)
