"""The `cpl` command line: a click group of thin commands and one top-level error handler.

Each command parses its options, calls one seam, formats the result and returns an exit
code. Known errors map to their exit codes here; unexpected ones are written to a log file
whose path is printed instead of a traceback.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import tempfile
import traceback
from pathlib import Path

import click

from controlplane import __version__
from controlplane.cli.output import console_for, echo
from controlplane.errors import CplError, ExitCode

# Every command, by name: "module:attribute". A command's module (and its heavy imports:
# boto3, temporalio, hera's Argo models) loads only when that command runs, so `cpl validate`
# starts in a fraction of a second.
COMMANDS: dict[str, str] = {
    "init": "controlplane.cli.project:init_command",
    "validate": "controlplane.cli.validate:validate_command",
    "schema": "controlplane.cli.validate:schema_command",
    "render": "controlplane.cli.translate:render_command",
    "compat": "controlplane.cli.translate:compat_command",
    "check": "controlplane.cli.policy:check_command",
    "plan": "controlplane.cli.deploy:plan_command",
    "apply": "controlplane.cli.deploy:apply_command",
    "policy": "controlplane.cli.policy:policy_group",
    "worker": "controlplane.cli.runs:worker_command",
    "run": "controlplane.cli.runs:run_command",
    "signal": "controlplane.cli.runs:signal_command",
    "local": "controlplane.cli.local:local_group",
    "drift": "controlplane.cli.drift:drift_command",
    "audit": "controlplane.cli.audit:audit_group",
    "report": "controlplane.cli.report:report_command",
}


class _CommandRegistry(click.Group):
    """A click group that resolves its commands from COMMANDS when they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(
    cls=_CommandRegistry,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="cpl")
def cli() -> None:
    """cpl: workflows as code under governance.

    Validate engine-neutral workflow specs, render them for Step Functions, Temporal and
    Argo, gate them with OPA policies, deploy them per environment and watch for drift.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `cpl` console script."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (never raises for user-facing errors)."""
    try:
        result = cli.main(args=argv, prog_name="cpl", standalone_mode=False)
    except click.exceptions.Abort:
        echo("Aborted.", err=True)
        return int(ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except CplError as exc:
        _show_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the last line of defence: never a bare traceback
        log = _write_crash_log()
        echo(
            f"cpl: internal error: {type(exc).__name__}: {exc} (traceback written to {log})",
            err=True,
        )
        return int(ExitCode.ERROR)
    return int(result or 0)


def _show_error(exc: CplError) -> None:
    console = console_for(err=True)
    for diagnostic in exc.diagnostics:
        console.print(diagnostic.format(), markup=False, highlight=False)
    console.print(f"error: {exc.message}", style="bold red", markup=False, highlight=False)


def _write_crash_log() -> Path:
    directory = Path(tempfile.gettempdir()) / "cpl"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    log = directory / f"crash-{stamp}.log"
    log.write_text(traceback.format_exc(), encoding="utf-8")
    return log
