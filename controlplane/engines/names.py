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
from controlplane.errors import Diagnostic
from controlplane.spec.load import NAME_COLLISION, LoadResult


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


def collision_errors(
    collisions: Iterable[NameCollision], files: Mapping[str, str], loaded: LoadResult
) -> list[Diagnostic]:
    """The errors of `name_collision_diagnostics` for `collisions`, with the file of each
    workflow key (`files`) and the loaded texts for positions."""
    reported = {d.file for d in loaded.diagnostics if d.code == NAME_COLLISION}
    found: list[Diagnostic] = []
    for collision in collisions:
        first, second = files[collision.first], files[collision.second]
        if first in reported and second in reported:
            continue
        for (key, file), (other, other_file) in (
            ((collision.first, first), (collision.second, second)),
            ((collision.second, second), (collision.first, first)),
        ):
            line, _ = loaded.locate(other_file, "/metadata/name")
            message = (
                f"workflow '{key}' and workflow '{other}' ({other_file}:{line}) derive the same "
                f"names on target '{collision.target}': {collision.describe()}; rename one"
            )
            found.append(loaded.diagnostic(file, NAME_COLLISION, message, "/metadata/name"))
    return found
