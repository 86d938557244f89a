"""The activity bindings an import needs, added to `environments/ENV.yaml` in place.

The file is edited as a round trip (ruamel.yaml): comments, key order, quoting and flow
style of everything already there stay as they were; only new entries are added. An activity
whose binding for the engine already exists is reused under its name when it points at the
same resource; a name that is taken by a different binding is never overwritten: the import
binds its resource under a fresh name and reports the conflict.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from controlplane.errors import ConfigError
from controlplane.spec.environment import Environment


@dataclass(frozen=True)
class Conflict:
    """An activity name the environment already binds differently for the engine."""

    activity: str
    existing: dict[str, Any]
    imported: dict[str, Any]
    bound_as: str

    def to_json(self) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "existing": self.existing,
            "imported": self.imported,
            "boundAs": self.bound_as,
        }


@dataclass
class BindingPlan:
    """What the import does to the environment's activity bindings."""

    engine: str
    renamed: dict[str, str] = field(default_factory=dict)  # imported name -> name in the spec
    added: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> engine binding
    reused: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "added": sorted(self.added),
            "reused": sorted(self.reused),
            "conflicts": [c.to_json() for c in self.conflicts],
        }


def plan_bindings(
    environment: Environment, engine: str, wanted: dict[str, dict[str, Any]]
) -> BindingPlan:
    """Decide, per imported activity (name → its binding for `engine`), its name in the spec."""
    existing = {
        name: (getattr(binding, engine, None) or (binding.model_extra or {}).get(engine))
        for name, binding in environment.spec.bindings.activities.items()
    }
    plan = BindingPlan(engine)
    taken = set(existing)
    for name, binding in wanted.items():
        same = next((n for n, b in existing.items() if b == binding), None)
        if same is not None:
            plan.renamed[name] = same
            plan.reused.append(same)
            continue
        final = name
        if name in existing and existing[name] is not None:
            number = 2
            while f"{name}-{number}" in taken:
                number += 1
            final = f"{name}-{number}"
            plan.conflicts.append(Conflict(name, dict(existing[name] or {}), binding, final))
        taken.add(final)
        plan.renamed[name] = final
        plan.added[final] = binding
    return plan


def add_bindings(text: str, file: str, plan: BindingPlan) -> str:
    """The environment file's text with `plan.added` bound (nothing else changes)."""
    if not plan.added:
        return text
    yaml = _yaml()
    try:
        document = yaml.load(text)
    except Exception as error:  # ruamel raises many kinds; the message names the place
        raise ConfigError(f"{file}: cannot be edited as YAML: {error}") from None
    if not isinstance(document, CommentedMap) or not isinstance(document.get("spec"), dict):
        raise ConfigError(f"{file}: not an Environment document (no spec)")
    spec = document["spec"]
    bindings = spec.setdefault("bindings", CommentedMap())
    activities = bindings.setdefault("activities", CommentedMap())
    for mapping in (bindings, activities):
        if isinstance(mapping, CommentedMap) and not mapping and mapping.fa.flow_style():
            mapping.fa.set_block_style()  # `{}` grows into a block, one binding a line
    for name, binding in plan.added.items():
        entry = activities.get(name)
        if entry is None:
            entry = activities[name] = CommentedMap()
        entry[plan.engine] = _flow(binding)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _flow(value: Any) -> Any:
    """A binding as a one-line flow mapping, the way environment files write them."""
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _flow(item)
        mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_flow(v) for v in value)
        sequence.fa.set_flow_style()
        return sequence
    if isinstance(value, str) and (":" in value or value != value.strip()):
        return DoubleQuotedScalarString(value)  # ARNs and images quoted, as the files write them
    return value
