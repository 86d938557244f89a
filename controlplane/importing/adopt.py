"""Adopting what `cpl drift` reports as unmanaged on Step Functions targets.

A state machine is adopted when cpl can describe it exactly: its import is exact and the
imported spec, rendered for the state machine's target, gives the very definition that is
live and the same resource name. Then applying the spec changes no step of the definition:
the update only stamps cpl's tags, logging and log group on the same state machine (same
ARN, execution history kept). Everything else stays unmanaged, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.drift.model import DriftItem, DriftReport
from controlplane.engines import diff_documents, render
from controlplane.errors import CplError
from controlplane.importing.live import read_state_machine
from controlplane.importing.service import ImportOutcome, Naming, prepare
from controlplane.spec.environment import Environment

_RENDERED = re.compile(r"^([a-z][a-z0-9-]*)/([a-z][a-z0-9-]*) (\S+) \(rendered by cpl\)$")
_CLASSIFICATIONS = ("public", "internal", "confidential", "pii", "phi", "pci")


@dataclass
class Candidate:
    """One unmanaged state machine: its import, or why it stays unmanaged."""

    item: DriftItem
    outcome: ImportOutcome | None = None
    reason: str = ""

    @property
    def adoptable(self) -> bool:
        return self.outcome is not None and not self.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.item.resource,
            "id": self.item.id,
            "target": self.item.target,
            "workflow": self.outcome.key if self.outcome else None,
            "adopted": self.adoptable,
            "reason": self.reason,
            "import": self.outcome.to_json() if self.outcome else None,
        }


def candidates(
    repo: Path, environment: Environment, tenant: str, report: DriftReport, owner: str | None
) -> list[Candidate]:
    """The tenant's unmanaged state machines of `report`, each imported in memory."""
    found: list[Candidate] = []
    for item in report.items:
        if item.status != "unmanaged" or item.engine != "stepfunctions":
            continue
        name = _workflow_name(item, tenant)
        if name is None:
            continue
        candidate = Candidate(item)
        found.append(candidate)
        try:
            _import(repo, environment, tenant, name, owner, candidate)
        except CplError as error:
            candidate.reason = error.message
    return found


def _workflow_name(item: DriftItem, tenant: str) -> str | None:
    """The workflow name in `tenant` an unmanaged machine belongs to, None for others'."""
    if item.workflow:
        owner, _, name = item.workflow.partition("/")
        return name if owner == tenant else None
    prefix = f"{tenant}-"
    return item.resource[len(prefix) :] if item.resource.startswith(prefix) else None


def _import(
    repo: Path,
    environment: Environment,
    tenant: str,
    name: str,
    owner: str | None,
    candidate: Candidate,
) -> None:
    item = candidate.item
    target = environment.target(item.target)
    live = read_state_machine(environment, target, item.id or item.resource)
    tags = live.tags
    version = tags.get("cpl:version")
    comment = _RENDERED.match(str(live.definition.get("Comment", "")))
    if comment is not None:
        version = comment.group(3)
    classification = tags.get("cpl:classification")
    naming = Naming(
        tenant=tenant,
        name=name,
        owner=owner or tags.get("cpl:owner"),
        version=version,
        classification=classification if classification in _CLASSIFICATIONS else None,
    )
    outcome = prepare(repo, environment, live.definition, live.arn, naming, default_name=name)
    candidate.outcome = outcome
    inexact = outcome.report.not_exact()
    if inexact:
        candidate.reason = "the import is not exact: " + "; ".join(
            f"{f.source}: {f.detail}" for f in inexact
        )
        return
    if not target.select.matches(outcome.workflow):
        candidate.reason = f"target '{target.name}' does not select {outcome.key}"
        return
    artifact = render(outcome.workflow, target, outcome.environment)
    if artifact.resource != item.resource:
        candidate.reason = (
            f"the spec renders the state machine '{artifact.resource}', not '{item.resource}'"
        )
        return
    differences = diff_documents(artifact.document["definition"], live.definition)
    if differences:
        paths = ", ".join("/definition" + d["path"] for d in differences[:5])
        candidate.reason = (
            f"the spec renders another definition (differs at {paths}): adopting it would "
            "change the state machine"
        )
