"""Engine names that two workflows of one target would share.

Every engine derives the names of a workflow's objects from its tenant and name (a state
machine `<tenant>-<name>`, its log group, its schedule, an Argo object and its GitOps file,
Temporal ids). Two workflows deriving an equal name would overwrite each other's object on
apply and delete it when either is removed, so within a target each name must belong to one
workflow only. The names are each engine's (`Engine.names`); this module only compares them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlplane.engines import ENGINES
from controlplane.engines.translator import Artifact


@dataclass(frozen=True)
class NameCollision:
    """Two workflows of `target` that derive the same engine `names` ((what, name) pairs)."""

    target: str
    first: str
    second: str
    names: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return ", ".join(f"{what} '{name}'" for what, name in self.names)


def name_collisions(artifacts: Iterable[Artifact]) -> list[NameCollision]:
    """Every pair of workflows whose artifacts on one target claim an equal engine name.

    Shared resources (a Temporal namespace) are left out: sharing them is their purpose.
    """
    return collisions_of(
        (artifact.target, artifact.workflow, ENGINES[artifact.engine].names(artifact))
        for artifact in artifacts
        if not artifact.shared
    )


def collisions_of(named: Iterable[tuple[str, str, Mapping[str, str]]]) -> list[NameCollision]:
    """`name_collisions` of (target, workflow, its engine names) triples (names kept from an
    earlier render, see controlplane.cache)."""
    owner: dict[tuple[str, str, str], str] = {}
    found: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for target, workflow, names in sorted(named, key=lambda item: (item[0], item[1])):
        for what, name in names.items():
            first = owner.setdefault((target, what, name), workflow)
            if first != workflow:
                pair = (target, first, workflow)
                found.setdefault(pair, []).append((what, name))
    return [
        NameCollision(target, first, second, tuple(names))
        for (target, first, second), names in found.items()
    ]
