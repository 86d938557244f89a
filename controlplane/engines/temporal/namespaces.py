"""Namespaces: the Temporal object that workflows share, with its retention and search
attributes.

Temporal keeps run histories per namespace retention, so a namespace's retention and cpl's
search attributes are not one workflow's to set: they are a shared resource of their own
(`shared:namespace/<name>`), planned, applied, drifted and recorded once, whose desired value
is derived from every workflow that runs in the namespace:

- every workflow that sets `retention` asks for the same value: that value;
- none sets it: cpl leaves the namespace's retention as it is (a new one gets a day);
- they ask for different values: Temporal cannot honour them all and cpl does not pick one
  (the longest breaks GDPR storage limits, the shortest deletes SOX evidence). The namespace's
  retention is left as it is, and every workflow concerned gets the same `unsupported`
  retention record, so `cpl check`, `plan`, `compat` and `report` report one finding alike;
  policy enforcement decides whether it blocks.

A namespace is identified by the server address and its name, so two targets that point at
one namespace share it too.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.engines.translator import Artifact, Support, shared_key
from controlplane.spec.environment import Environment

NAMESPACE_KIND = "temporal-namespace"
"""`kind` of a namespace artifact's document."""

NAMESPACE_ADVICE = (
    "use a namespace per retention class (one target per namespace, selected by a label), "
    "which is also how regulated workflows are isolated"
)


@dataclass(frozen=True)
class NamespaceConflict:
    """Workflows of one namespace asking for different retentions."""

    target: str
    namespace: str
    retentions: dict[str, int | float]
    """workflow key → retention in seconds, for every workflow of the namespace that sets one."""

    def support(self) -> Support:
        """The `unsupported` record each affected workflow gets."""
        classes: dict[int | float, list[str]] = defaultdict(list)
        for workflow, seconds in sorted(self.retentions.items()):
            classes[seconds].append(workflow)
        asked = "; ".join(
            f"{_duration_text(seconds)} ({', '.join(names)})"
            for seconds, names in sorted(classes.items())
        )
        return Support(
            feature="retention",
            support="unsupported",
            path="/spec/retention",
            reason=(
                f"namespace '{self.namespace}' of target '{self.target}' keeps every run "
                f"history for one retention, but its workflows ask for {asked}: Temporal "
                f"cannot honour them all and cpl does not pick one; {NAMESPACE_ADVICE}"
            ),
        )


def namespace_conflicts(
    artifacts: Iterable[Artifact], addresses: Mapping[str, str] | None = None
) -> list[NamespaceConflict]:
    """Retention conflicts among the Temporal artifacts of an environment.

    Pass every artifact rendered for the environment (other engines are ignored). Artifacts
    are grouped by namespace — (server address, name) when `addresses` maps target names to
    addresses, else (target, name) — and every group with more than one distinct retention
    is a conflict. Workflows without `retention` accept the namespace's and conflict with
    nobody.
    """
    return [
        NamespaceConflict(group.target, group.name, group.retentions)
        for group in _groups(artifacts, addresses or {}).values()
        if len(set(group.retentions.values())) > 1
    ]


def with_namespace_conflicts(
    artifacts: Iterable[Artifact], addresses: Mapping[str, str] | None = None
) -> list[Artifact]:
    """The artifacts, each affected one with its conflict's `unsupported` retention record."""
    artifacts = list(artifacts)
    affected: dict[str, Support] = {}
    for conflict in namespace_conflicts(artifacts, addresses):
        record = conflict.support()
        for workflow in conflict.retentions:
            affected[workflow] = record
    result = []
    for artifact in artifacts:
        extra = affected.get(artifact.workflow)
        if extra is not None and artifact.engine == "temporal" and not artifact.shared:
            artifact = dataclasses.replace(artifact, support=(*artifact.support, extra))
        result.append(artifact)
    return result


def share_namespaces(artifacts: list[Artifact], environment: Environment) -> list[Artifact]:
    """The engine bundle's `share` hook: conflict records on the workflows concerned, and one
    namespace artifact per namespace the environment's Temporal workflows run in."""
    temporal = [t for t in environment.spec.targets if t.engine == "temporal"]
    addresses = {t.name: f"{t.address}" for t in temporal}
    # The target a namespace is managed through: the first, by name, of all targets that
    # reach it, so it does not move when workflows come and go (a move would plan a delete).
    owners: dict[tuple[str, str], str] = {}
    for target in sorted(temporal, key=lambda t: t.name):
        owners.setdefault((addresses[target.name], target.namespace or "default"), target.name)
    result = with_namespace_conflicts(artifacts, addresses)
    for place, group in _groups(result, addresses).items():
        asked = set(group.retentions.values())
        retention = asked.pop() if len(asked) == 1 else None
        document: dict[str, Any] = {
            "kind": NAMESPACE_KIND,
            "name": group.name,
            "retention": retention,
            "searchAttributes": group.search_attributes,
        }
        result.append(
            Artifact(
                workflow=shared_key("namespace", group.name),
                version="",
                target=owners.get(place, group.target),
                engine="temporal",
                resource=group.name,
                document=document,
                support=(),
                shared_by=tuple(sorted(group.workflows)),
            )
        )
    return result


def namespace_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What `share_namespaces` reads of a workflow's document (the engine's `share_view`)."""
    return {key: document[key] for key in ("namespace", "searchAttributes") if key in document}


@dataclass
class _Group:
    target: str
    name: str
    workflows: list[str] = dataclasses.field(default_factory=list)
    retentions: dict[str, int | float] = dataclasses.field(default_factory=dict)
    search_attributes: dict[str, str] = dataclasses.field(default_factory=dict)


def _groups(
    artifacts: Iterable[Artifact], addresses: Mapping[str, str]
) -> dict[tuple[str, str], _Group]:
    """The namespaces of the Temporal workflow artifacts by (place, name), in a stable order;
    each group's `target` is the first (by name) of its workflows' targets."""
    groups: dict[tuple[str, str], _Group] = {}
    for artifact in sorted(artifacts, key=lambda a: (a.target, a.workflow)):
        if artifact.engine != "temporal" or artifact.shared:
            continue
        namespace = artifact.document.get("namespace") or {}
        name = str(namespace.get("name") or "default")
        place = addresses.get(artifact.target, f"target:{artifact.target}")
        group = groups.setdefault((place, name), _Group(artifact.target, name))
        group.workflows.append(artifact.workflow)
        group.search_attributes.update(artifact.document.get("searchAttributes") or {})
        retention = namespace.get("retention")
        if retention is not None:
            group.retentions[artifact.workflow] = retention
    return {key: groups[key] for key in sorted(groups)}


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
