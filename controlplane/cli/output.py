"""Shared command-line options and output helpers."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from controlplane.files import write_atomic
from controlplane.spec.types import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

_no_color = False


def console_for(err: bool = False) -> Console:
    """A rich console: colour only on a TTY and never with --no-color or NO_COLOR."""
    stream = sys.stderr if err else sys.stdout
    plain = _no_color or "NO_COLOR" in os.environ or not stream.isatty()
    return Console(
        file=stream,
        no_color=plain,
        highlight=False,
        soft_wrap=True,
        force_terminal=None if not plain else False,
    )


def _set_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _no_color
    _no_color = _no_color or value
    return value


# Waiver expiry depends on the date: tests pin it (hidden from --help).
today_option = click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    hidden=True,
    help="Pretend today is this date (waiver expiry; for tests).",
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
    """Write a machine-readable report to a file (atomically) or to standard output."""
    if output_file is None:
        click.echo(report)
        return
    write_atomic(output_file, report + ("" if report.endswith("\n") else "\n"))


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
