"""Artifacts of the example control repo, renamed per test so that tests sharing the session
engines (tests/engines.py) never touch each other's resources."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from controlplane.engines.translator import Artifact
from controlplane.monitoring.delivery import is_rules
from controlplane.pipeline import render_all
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_repo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def environment() -> Environment:
    return load_environment(ROOT, "local")


@pytest.fixture(scope="session")
def artifacts(environment: Environment) -> dict[tuple[str, str], Artifact]:
    """(workflow key, engine) → artifact of the example repo in the `local` environment."""
    repo = load_repo(ROOT)
    rendered = render_all([w.model for w in repo.workflows], environment)
    # the targets' Prometheus rules files are tests/monitoring's
    return {(a.workflow, a.engine): a for a in rendered if not is_rules(a)}


def unique(prefix: str = "em") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def renamed(artifact: Artifact, tenant: str) -> Artifact:
    """The artifact with the tenant renamed everywhere (workflow key, resource, names, ARNs)."""
    old_tenant = artifact.workflow.split("/", 1)[0]
    text = json.dumps(artifact.document)
    text = text.replace(f"{old_tenant}-", f"{tenant}-").replace(f"/{old_tenant}/", f"/{tenant}/")
    text = text.replace(f'"{old_tenant}/', f'"{tenant}/')
    return dataclasses.replace(
        artifact,
        workflow=artifact.workflow.replace(f"{old_tenant}/", f"{tenant}/", 1),
        resource=artifact.resource.replace(f"{old_tenant}-", f"{tenant}-", 1),
        document=json.loads(text),
    )


def changed(artifact: Artifact, edit: dict[str, object]) -> Artifact:
    """The artifact with values set at JSON pointers (`{"/a/b": value}`)."""
    document = copy.deepcopy(artifact.document)
    for pointer, value in edit.items():
        *parents, leaf = pointer[1:].split("/")
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[leaf] = value
    return dataclasses.replace(artifact, document=document)
