"""Shared command-line options and output helpers."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.segment import Segment

from controlplane.errors import CplError
from controlplane.files import write_atomic
from controlplane.spec.types import parse_duration
from controlplane.terminal import echo as echo
from controlplane.terminal import escape_controls as escape_controls

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Finished:
    """The outcome of work a command completed, kept in case Ctrl-C arrives afterwards (while
    it prints, closes connections or releases the lock): the user is told that outcome and
    gets its exit code, not "Aborted."."""

    summary: str
    exit_code: int


_finished: Finished | None = None


def mark_finished(summary: str, exit_code: int) -> None:
    """Remember that the command's work is done, with `summary` and the exit code it earns."""
    global _finished
    _finished = Finished(summary, exit_code)


def take_finished() -> Finished | None:
    """The outcome marked by the command that just ran (and forget it, for the next run)."""
    global _finished
    finished, _finished = _finished, None
    return finished


class SafeConsole(Console):
    """A rich Console that escapes control characters in the text it prints.

    Escaping happens when segments become terminal output (`_render_buffer`, the one place
    every print, table and log of rich goes through), so rich's own styling and cursor
    control still work while text from documents cannot drive the terminal. rich is pinned
    in pyproject.toml, which keeps this hook stable.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        safe = (
            segment if segment.control else Segment(escape_controls(segment.text), segment.style)
            for segment in buffer
        )
        return super()._render_buffer(safe)


def console_for(err: bool = False) -> Console:
    """A rich console: colour only on a TTY and never with --no-color or NO_COLOR; control
    characters in what it prints are escaped (`SafeConsole`)."""
    stream = sys.stderr if err else sys.stdout
    plain = _no_color_asked() or "NO_COLOR" in os.environ or not stream.isatty()
    return SafeConsole(
        file=stream,
        no_color=plain,
        highlight=False,
        soft_wrap=True,
        force_terminal=None if not plain else False,
    )


NO_COLOR_KEY = "cpl.no_color"


def _set_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    # Kept in the invocation's context (shared by the group and its command), not in a
    # global: one --no-color must not outlive its command in a process that runs several.
    ctx.meta[NO_COLOR_KEY] = ctx.meta.get(NO_COLOR_KEY, False) or value
    return value


def _no_color_asked() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(NO_COLOR_KEY, False))


# Waiver expiry depends on the date: tests pin it (hidden from --help).
today_option = click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    hidden=True,
    help="Pretend today is this date (waiver expiry; for tests).",
)

cache_option = click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Do not use the cache of rendered artifacts and policy results (.cpl/cache/); "
    "the same as CPL_NO_CACHE=1.",
)


class Seconds(click.FloatRange):
    """A number of seconds in [min, max]: click's FloatRange that also refuses nan and inf.

    `float("nan")` compares false with every bound, so a plain FloatRange lets it through
    (and a wait of nan seconds never ends); infinity is refused for the same reason.
    """

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return super().convert(number, param, ctx)


class Duration(click.ParamType[float, Any]):
    """A duration such as `90s` or `10m` (the spec's units), as seconds in [min, max]."""

    name = "duration"

    def __init__(self, min: float, max: float) -> None:
        self.min = min
        self.max = max

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        if not self.min <= seconds <= self.max:
            self.fail(f"{value!r} is not between {self.min:g}s and {self.max:g}s.", param, ctx)
        return seconds


def repo_option(func: F) -> F:
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The control repo (workflows/, environments/, waivers/, policies/).",
    )(func)


def format_option(*choices: str, short_output: bool = True) -> Callable[[F], F]:
    """--format (text plus `choices`), --output FILE (-o unless the command uses -o itself)
    and --no-color."""

    def decorate(func: F) -> F:
        func = click.option(
            "--format",
            "output_format",
            type=click.Choice(["text", *choices]),
            default="text",
            show_default=True,
            help="Output format.",
        )(func)
        func = click.option(
            "--output",
            *(["-o"] if short_output else []),
            "output_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write the report to FILE; the summary still goes to the terminal.",
        )(func)
        return click.option(
            "--no-color",
            is_flag=True,
            expose_value=False,
            callback=_set_no_color,
            is_eager=True,
            help="Plain output without colours.",
        )(func)

    return decorate


def emit(report: str, output_file: Path | None) -> None:
    """Write a report to a file (atomically, exactly as given) or to standard output (with
    control characters escaped: JSON escapes them anyway, other formats are read there)."""
    if output_file is None:
        echo(report)
        return
    write_output(output_file, report + ("" if report.endswith("\n") else "\n"))


def write_output(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or append) an output file the user named; a CplError says why it cannot be."""
    try:
        if append:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(text)
        else:
            write_atomic(path, text)
    except OSError as error:
        raise CplError(f"cannot write {path}: {output_problem(path, error)}") from None


def output_problem(path: Path, error: OSError) -> str:
    """Why `path` cannot be written, in the user's terms (which part of it is in the way)."""
    for ancestor in reversed(path.parents):
        if ancestor.exists() and not ancestor.is_dir():
            return f"{ancestor} is a file, not a folder"
    if path.is_dir():
        return "it is a folder, not a file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
