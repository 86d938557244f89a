"""`cpl notify flush`: send the notifications waiting in an environment's spools."""

from __future__ import annotations

from pathlib import Path

import click

from controlplane.cli.output import console_for, repo_option
from controlplane.errors import ExitCode
from controlplane.notify import flush
from controlplane.spec.load import load_environment


@click.group("notify")
def notify_group() -> None:
    """Webhook notifications (check denied, drift found, apply failed)."""


@notify_group.command("flush")
@click.option("--env", "env_name", required=True, help="The environment whose spools to send.")
@repo_option
def flush_command(env_name: str, repo: Path) -> int:
    """Send the notifications waiting in the environment's webhook spools, oldest first.

    Exits 1 when some are still waiting (a webhook is down, rejected one, or its variable
    is not set).
    """
    console = console_for()
    results = flush(repo, load_environment(repo, env_name))
    for hook, result in results:
        line = f"{hook.name}: delivered {result.delivered}, pending {result.pending}"
        console.print(line + (f" ({result.error})" if result.error else ""), markup=False)
    if not results:
        console.print(f"environment '{env_name}' has no notifications", markup=False)
    return int(ExitCode.OK if all(result.ok for _, result in results) else ExitCode.ERROR)
