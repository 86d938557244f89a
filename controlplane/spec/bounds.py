"""Input bounds of a YAML document, checked before it is parsed into Python values.

YAML aliases repeat a node wherever they appear: a 1 MB file of aliases to a large string
expands to gigabytes once parsed, and nesting tens of thousands of levels deep exhausts the
parsers' stacks. Both are measured on the parser's event stream (libyaml's parser keeps
explicit stacks, so a deep document cannot crash it), where an alias is one event however
large its anchor: the expansion is computed from each anchor's size, never materialised.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import yaml

MAX_DEPTH = 100
"""The deepest nesting of mappings and lists a document may have, aliases expanded."""
MAX_ALIAS_BYTES = 4 * 1024 * 1024
"""How much aliases may add to a document: the bytes of the values they repeat, plus
NODE_BYTES for each repeated node."""
NODE_BYTES = 16
"""What one node costs on top of its value's bytes, so that many tiny nodes count too."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Excess:
    """Where a document goes beyond a bound (1-based line and column) and which bound."""

    line: int
    column: int
    message: str


def beyond_bounds(text: str) -> Excess | None:
    """The first place the document goes beyond MAX_DEPTH or MAX_ALIAS_BYTES, if any.

    Most documents are shown to be within bounds without parsing: no anchor means no alias,
    and the flow brackets plus twice the longest block prefix bound the nesting depth.
    """
    aliases = "&" in text and "*" in text
    if not aliases and _shallow(text):
        return None
    try:
        return _measure(text)
    except yaml.YAMLError:
        return None  # a syntax error: the parser reports it where it is


def _shallow(text: str) -> bool:
    """Whether the text surely nests at most MAX_DEPTH levels, without parsing it.

    A block collection starts on a line after the indentation and a chain of `- `, `? ` or
    `: ` indicators, and every two levels of block nesting start at least one column further
    right; each flow level needs a bracket. So the depth is at most the number of brackets
    plus twice (the longest such line prefix + 1), plus one.
    """
    brackets = text.count("[") + text.count("{")
    room = (MAX_DEPTH - 1 - brackets) // 2 - 1
    return room >= 0 and _prefix_longer_than(room).search(text) is None


@functools.cache
def _prefix_longer_than(length: int) -> re.Pattern[str]:
    # any run of blanks and indicator characters at a line start: at least the real prefix
    return re.compile(rf"^[ \t?:-]{{{length + 1}}}", re.MULTILINE)


@dataclass
class _Open:
    """A collection being parsed: its expanded size and height so far, and its anchor."""

    size: int
    height: int
    anchor: str | None


def _measure(text: str) -> Excess | None:
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor → (expanded size, height)
    added = 0

    def close(size: int, height: int, anchor: str | None) -> None:
        if anchor is not None:
            anchors[anchor] = (size, height)
        if stack:
            stack[-1].size += size
            stack[-1].height = max(stack[-1].height, height + 1)

    for event in yaml.parse(text, Loader=_Loader):
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return Excess(line, column, _too_deep())
            stack.append(_Open(NODE_BYTES, 1, event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            close(done.size, done.height, done.anchor)
        elif isinstance(event, yaml.ScalarEvent):
            close(len(event.value.encode("utf-8")) + NODE_BYTES, 0, event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            size, height = anchors.get(str(event.anchor), (0, 0))
            added += size
            if added > MAX_ALIAS_BYTES:
                message = (
                    f"aliases expand the document by more than {MAX_ALIAS_BYTES // 2**20} MiB "
                    f"(*{event.anchor} repeats {size:,} bytes here)"
                )
                return Excess(line, column, message)
            if len(stack) + height > MAX_DEPTH:
                return Excess(line, column, _too_deep(f" (*{event.anchor})"))
            close(size, height, None)
    return None


def _too_deep(where: str = "") -> str:
    return f"mappings and lists nested deeper than {MAX_DEPTH} levels{where}"
