"""The `cpl` command line: a click group of thin commands and one top-level error handler.

Each command parses its options, calls one seam, formats the result and returns an exit
code. Known errors map to their exit codes here; unexpected ones are written to a log file
whose path is printed instead of a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import importlib
import os
import stat
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import click

from controlplane import __version__
from controlplane.cli.output import console_for, echo, take_finished
from controlplane.collector import tune_for_batch
from controlplane.errors import CplError, ExitCode
from controlplane.redaction import redact_text

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
    "runs": "controlplane.cli.profile:runs_group",
    "dlq": "controlplane.cli.dlq:dlq_group",
    "keys": "controlplane.cli.keys:keys_group",
    "local": "controlplane.cli.local:local_group",
    "drift": "controlplane.cli.drift:drift_command",
    "audit": "controlplane.cli.audit:audit_group",
    "notify": "controlplane.cli.notify:notify_group",
    "report": "controlplane.cli.report:report_command",
    "import": "controlplane.cli.importing:import_command",
    "serve": "controlplane.cli.serve:serve_group",
    "state": "controlplane.cli.state:state_group",
    "access": "controlplane.cli.access:access_group",
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


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `cpl` console script (and `python -m controlplane`)."""
    tune_for_batch()
    _exit(run(argv))


def _exit(code: int) -> NoReturn:
    """End the process without finalizing the interpreter.

    temporalio's Rust core keeps a Tokio thread pool for the life of the process, and its
    threads call into Python to complete every RPC future (`call_soon_threadsafe`, then release
    the GIL). One may still be doing so when a command returns, more so under CPU load. If the
    interpreter is finalizing by then, CPython ends that thread with pthread_exit and its
    unwinding releases a GIL it no longer holds: `Fatal Python error: PyGILState_Release`
    (SIGABRT) or a segfault. So: run the exit handlers and flush, as `sys.exit` would, then
    `os._exit`, which stops every native thread (Tokio's, the OPA bindings' Go runtime) at once.
    """
    atexit._run_exitfuncs()  # logging.shutdown and other registered handlers
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`cpl plan | head`)
            stream.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (never raises for user-facing errors)."""
    take_finished()  # nothing is finished yet
    try:
        result = cli.main(args=argv, prog_name="cpl", standalone_mode=False)
    except click.exceptions.Abort:  # click's form of Ctrl-C (KeyboardInterrupt)
        finished = take_finished()
        if finished is not None:
            echo(f"interrupted after the work was done: {finished.summary}", err=True)
            return finished.exit_code
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
        finished = take_finished()
        if finished is not None:
            echo(f"interrupted after the work was done: {finished.summary}", err=True)
            return finished.exit_code
        echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the last line of defence: never a bare traceback
        log = _write_crash_log()
        where = f"traceback written to {log}" if log else "no private folder for a crash log"
        echo(
            f"cpl: internal error: {type(exc).__name__}: {redact_text(str(exc))} ({where})",
            err=True,
        )
        return int(ExitCode.ERROR)
    take_finished()
    return int(result or 0)


def _show_error(exc: CplError) -> None:
    console = console_for(err=True)
    for diagnostic in exc.diagnostics:
        console.print(diagnostic.format(), markup=False, highlight=False)
    # an engine's or a server's message may carry a URL with credentials or a token
    message = redact_text(exc.message)
    console.print(f"error: {message}", style="bold red", markup=False, highlight=False)


def _write_crash_log() -> Path | None:
    """Write the current traceback to a new file in a private folder (see `crash_directory`).

    A traceback shows paths, documents and sometimes values, so it goes where only the user
    can read it: the file is created owner-only and never through an existing name or link.
    """
    directory = crash_directory()
    if directory is None:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    log = directory / f"crash-{stamp}-{os.getpid()}.log"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(log, flags, 0o600)
    except OSError:
        return None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(traceback.format_exc())
    return log


def crash_directory() -> Path | None:
    """The user's private folder for crash logs, created if needed, or None.

    In order: `$XDG_STATE_HOME/cpl`, `~/.local/state/cpl`, then `<temp>/cpl-<uid>` (the temp
    folder is shared, hence the user id). The first that is a real folder (not a symbolic
    link) owned by the user is taken and made owner-only (0700); one planted by another user
    is passed over.
    """
    candidates: list[Path] = []
    state_home = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(state_home):
        candidates.append(Path(state_home) / "cpl")
    with contextlib.suppress(RuntimeError):  # no home folder: skip it
        candidates.append(Path.home() / ".local" / "state" / "cpl")
    candidates.append(Path(tempfile.gettempdir()) / f"cpl-{os.getuid()}")
    return next((path for path in candidates if _private_folder(path)), None)


def _private_folder(path: Path) -> bool:
    """Whether `path` is (now) a folder of this user's that only they can use."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        status = os.lstat(path)
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            return False
        if stat.S_IMODE(status.st_mode) != 0o700:
            os.chmod(path, 0o700, follow_symlinks=False)
    except OSError:
        return False
    return True
