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
from collections.abc import Iterable
from typing import Any

from controlplane.engines.translator import Artifact
from controlplane.policy.inputs import PolicyInput
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow


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
    isolation = {w.key: isolation_of(w) for w in workflows}
    engines = {t.name: t.engine for t in environment.spec.targets}
    resources: dict[str, list[Artifact]] = defaultdict(list)
    for artifact in artifacts:
        if artifact.shared:
            for key in artifact.shared_by:
                resources[key].append(artifact)
    result = []
    for item in inputs:
        shared = [
            _document(resource, item.workflow, isolation)
            for resource in resources.get(item.workflow, [])
            if resource.engine == engines.get(item.target)
        ]
        if shared:
            item = dataclasses.replace(item, document={**item.document, "shared": shared})
        result.append(item)
    return result


def _document(resource: Artifact, workflow: str, isolation: dict[str, str]) -> dict[str, Any]:
    kind = resource.workflow.split(":", 1)[-1].split("/", 1)[0]  # shared:<kind>/<name>
    return {
        "kind": kind,
        "name": resource.resource,
        "target": resource.target,
        "engine": resource.engine,
        "standard": sorted(
            key
            for key in resource.shared_by
            if key != workflow and isolation.get(key, "standard") != "regulated"
        ),
    }
