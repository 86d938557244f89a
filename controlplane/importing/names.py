"""Step names from engine names: `ReserveInventory` → `reserve-inventory`, unique."""

from __future__ import annotations

import re

_MAX = 63


def slug(text: str) -> str:
    """A name of the spec's pattern (^[a-z][a-z0-9-]{0,62}$) read from any text."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", text)
    name = re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"s-{name}".rstrip("-")
    return name[:_MAX].rstrip("-")


class Namer:
    """One spec name per source name, no two alike (`names` maps source → step name)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self._taken: set[str] = set()

    def name(self, source: str) -> str:
        if source not in self.names:
            self.names[source] = self.fresh(slug(source))
        return self.names[source]

    def fresh(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`... whichever no name has taken yet."""
        name, number = base, 1
        while name in self._taken:
            number += 1
            suffix = f"-{number}"
            name = base[: _MAX - len(suffix)].rstrip("-") + suffix
        self._taken.add(name)
        return name
