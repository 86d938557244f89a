"""The normalized workflow: defaults applied, and its JSON document (see
docs/normalized-document.md) used by policies, the Temporal interpreter and reports."""

from __future__ import annotations

from typing import Any

from controlplane.spec.model import (
    Branch,
    Defaults,
    MapStep,
    ParallelStep,
    Step,
    TaskStep,
    Workflow,
)
from controlplane.spec.types import NORMALIZED

_DEFAULTED_FIELDS = ("timeout", "heartbeat", "retry")


def apply_defaults(workflow: Workflow) -> Workflow:
    """A copy where every task without its own timeout/heartbeat/retry takes `spec.defaults`."""
    defaults = workflow.spec.defaults
    if defaults is None:
        return workflow
    steps = [_default_step(step, defaults) for step in workflow.spec.steps]
    return workflow.model_copy(update={"spec": workflow.spec.model_copy(update={"steps": steps})})


def _default_step(step: Step, defaults: Defaults) -> Step:
    if isinstance(step, TaskStep):
        update = {
            name: getattr(defaults, name)
            for name in _DEFAULTED_FIELDS
            if getattr(step, name) is None and getattr(defaults, name) is not None
        }
        return step.model_copy(update=update) if update else step
    if isinstance(step, ParallelStep):
        branches = [
            Branch(start=b.start, steps=[_default_step(s, defaults) for s in b.steps])
            for b in step.branches
        ]
        return step.model_copy(update={"branches": branches})
    if isinstance(step, MapStep):
        return step.model_copy(update={"steps": [_default_step(s, defaults) for s in step.steps]})
    return step


def to_document(workflow: Workflow) -> dict[str, Any]:
    """The normalized JSON document: defaults applied, durations in seconds, sizes in bytes."""
    document: dict[str, Any] = apply_defaults(workflow).model_dump(
        mode="json", by_alias=True, exclude_unset=True, context={NORMALIZED: True}
    )
    metadata = document["metadata"]
    metadata.setdefault("classification", "internal")
    metadata.setdefault("compliance", [])
    metadata.setdefault("labels", {})
    return document


def to_data(workflow: Workflow) -> dict[str, Any]:
    """The document as the user wrote it (for round trips and previews)."""
    data: dict[str, Any] = workflow.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return data
