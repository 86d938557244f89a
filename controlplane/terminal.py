"""Text for a person's terminal: control characters that could drive the terminal are shown
as escapes. Every human output of cpl passes through here (the CLI's consoles, `echo` and
text reports, and warnings of lower layers such as notifications)."""

from __future__ import annotations

import re

import click

# Characters a document may carry that a terminal would obey instead of showing: C0 controls
# but tab and newline (ESC starts colour, title and clear-screen sequences; CR overwrites a
# line), DEL, C1 controls (0x9b is a one-byte CSI), and the bidirectional overrides that make
# text read differently from what it is.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every terminal control character shown as an escape (`\\x1b`, `\\u202e`).

    Newlines and tabs are kept. Every human output of the CLI passes through here: the
    rich consoles of `console_for`, `echo` and text reports of `emit`.
    """
    return _CONTROLS.sub(_visible, text)


def echo(text: str, err: bool = False) -> None:
    """Print a line for a person (control characters escaped, see `escape_controls`)."""
    click.echo(escape_controls(text), err=err)


def warn(line: str) -> None:
    """One `warning:` line on stderr."""
    echo(f"warning: {line}", err=True)
