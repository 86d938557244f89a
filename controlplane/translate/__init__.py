"""Render engine-neutral specs into engine artifacts: the `render` seam and the registry."""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.environment import Engine, Environment, Target
from controlplane.spec.model import Workflow
from controlplane.translate.argo import ArgoTranslator
from controlplane.translate.base import Artifact, Translator
from controlplane.translate.stepfunctions import StepFunctionsTranslator
from controlplane.translate.temporal import TemporalTranslator, with_namespace_conflicts

TRANSLATORS: dict[Engine, Translator[object]] = {
    "stepfunctions": StepFunctionsTranslator(),  # type: ignore[dict-item]
    "temporal": TemporalTranslator(),  # type: ignore[dict-item]
    "argo": ArgoTranslator(),  # type: ignore[dict-item]
}


def render(workflow: Workflow, target: Target, environment: Environment) -> Artifact:
    """The artifact of one workflow for one target (BindingError when a name is unbound)."""
    return TRANSLATORS[target.engine].render(workflow, target, environment)


def render_all(workflows: Iterable[Workflow], environment: Environment) -> list[Artifact]:
    """Every (workflow, target) artifact of an environment, with cross-workflow checks.

    Checks that need all workflows of a target at once (Temporal's retention per namespace)
    add Support records to the artifacts concerned.
    """
    artifacts = [
        render(workflow, target, environment)
        for workflow in workflows
        for target in environment.targets_for(workflow)
    ]
    return with_namespace_conflicts(artifacts)
