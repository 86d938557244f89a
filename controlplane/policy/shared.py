"""`input.shared`: the shared resources a workflow's artifact lives in, with the workflows it
shares them with that are not isolated (controlplane/policies/README.md).

A shared resource (a Temporal namespace: `engines/temporal/namespaces.py`) names the workflows
it serves (`Artifact.shared_by`). CPL-P010 reads this to keep a workflow with
`security.isolation: regulated` out of a namespace that a workflow without it also runs in.
Only what the rule reads is listed: the resource and the keys of the `standard` workflows
besides this one (so an input stays small however many workflows share a namespace).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controlplane.engines.translator import Artifact
from controlplane.policy.inputs import PolicyInput
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow

# The shared resources that hold a workflow's data or authority (a Temporal namespace: its
# histories, retention and authorizer). A rules file shared by a target's workflows holds
# alerting rules only, so it separates nothing.
ISOLATING = frozenset({"namespace"})


def isolation_of(workflow: Workflow) -> str:
    security = workflow.spec.security
    return security.isolation if security is not None else "standard"


def with_shared(
    inputs: list[PolicyInput],
    artifacts: Iterable[Artifact],
    workflows: Iterable[Workflow],
    environment: Environment,
) -> list[PolicyInput]:
    """The inputs, each with `shared` when its workflow shares a resource on its engine."""
    shared_of = shared_documents(
        artifacts, {w.key: isolation_of(w) for w in workflows}, environment
    )
    result = []
    for item in inputs:
        shared = shared_of(item.workflow, item.target)
        if shared:
            item = dataclasses.replace(item, document={**item.document, "shared": shared})
        result.append(item)
    return result


def shared_documents(
    artifacts: Iterable[Artifact], isolation: Mapping[str, str], environment: Environment
) -> Callable[[str, str], list[dict[str, Any]]]:
    """`shared(workflow, target)`: the `shared` documents of that policy input (the shared
    resources of its engine it is in, with the workflows there that are not isolated), from
    the shared `artifacts` and each workflow's `security.isolation`."""
    engines = {t.name: t.engine for t in environment.spec.targets}
    resources: dict[str, list[Artifact]] = defaultdict(list)
    for artifact in artifacts:
        if artifact.shared and _kind(artifact) in ISOLATING:
            for key in artifact.shared_by:
                resources[key].append(artifact)

    def shared(workflow: str, target: str) -> list[dict[str, Any]]:
        return [
            _document(resource, workflow, isolation)
            for resource in resources.get(workflow, [])
            if resource.engine == engines.get(target)
        ]

    return shared


def _kind(resource: Artifact) -> str:
    return resource.workflow.split(":", 1)[-1].split("/", 1)[0]  # shared:<kind>/<name>


def _document(resource: Artifact, workflow: str, isolation: Mapping[str, str]) -> dict[str, Any]:
    return {
        "kind": _kind(resource),
        "name": resource.resource,
        "target": resource.target,
        "engine": resource.engine,
        "standard": sorted(
            key
            for key in resource.shared_by
            if key != workflow and isolation.get(key, "standard") != "regulated"
        ),
    }
