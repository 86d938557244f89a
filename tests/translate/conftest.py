"""Shared fixtures of the translator tests (Step Functions, Argo, Temporal).

Add fixtures here; keep engine-specific ones in their test module.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controlplane.spec.environment import Environment, Selector  # noqa: E402
from controlplane.spec.load import load_environment, load_repo  # noqa: E402
from controlplane.spec.model import Workflow  # noqa: E402

MakeWorkflow = Callable[..., Workflow]


def selecting_all(environment: Environment, engine: str) -> Environment:
    """`environment` with its targets of `engine` selecting every workflow."""
    targets = [
        t.model_copy(update={"select": Selector()}) if t.engine == engine else t
        for t in environment.spec.targets
    ]
    spec = environment.spec.model_copy(update={"targets": targets})
    return environment.model_copy(update={"spec": spec})


@pytest.fixture(scope="session")
def example_workflows() -> dict[str, Workflow]:
    """Every example under workflows/, by `tenant/name`."""
    result = load_repo(ROOT)
    assert result.ok, [d.format() for d in result.diagnostics]
    return {loaded.model.key: loaded.model for loaded in result.workflows}


@pytest.fixture(scope="session")
def local_environment() -> Environment:
    """The example `local` environment as written."""
    return load_environment(ROOT, "local")


@pytest.fixture(scope="session")
def sfn_environment(local_environment: Environment) -> Environment:
    """`local` with its stepfunctions target (`sfn-local`) selecting every workflow."""
    return selecting_all(local_environment, "stepfunctions")


@pytest.fixture
def make_workflow() -> MakeWorkflow:
    """A workflow from the YAML text of its `spec` (metadata defaults to retail/demo)."""

    def make(spec: str, metadata: str = "", name: str = "demo") -> Workflow:
        meta = {
            "name": name,
            "tenant": "retail",
            "version": "1.0.0",
            "owner": "team-test",
            "labels": {"runtime": "stepfunctions"},
        }
        meta.update(yaml.safe_load(textwrap.dedent(metadata)) or {})
        document = {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": meta,
            "spec": yaml.safe_load(textwrap.dedent(spec)),
        }
        return Workflow.model_validate(document)

    return make
