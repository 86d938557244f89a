"""Reports of `cpl validate`: compiler-style text with a summary, and the JSON shape of CLI.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

from controlplane.spec.check import iter_scopes
from controlplane.spec.load import LoadResult


def validation_json(result: LoadResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "diagnostics": [d.to_json() for d in result.diagnostics],
        "summary": summary(result),
    }


def summary(result: LoadResult) -> dict[str, Any]:
    """What was loaded: files, documents per kind, workflows per tenant, step types used."""
    tenants: Counter[str] = Counter()
    step_types: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    for loaded in result.workflows:
        workflow = loaded.model
        tenants[workflow.metadata.tenant] += 1
        forms["dag" if workflow.spec.is_dag else "state-machine"] += 1
        for scope in iter_scopes(workflow):
            step_types.update(step.type for step in scope.steps)
    return {
        "files": result.files,
        "workflows": len(result.workflows),
        "environments": len(result.environments),
        "waivers": len(result.waivers),
        "errors": sum(1 for d in result.diagnostics if d.severity == "error"),
        "warnings": sum(1 for d in result.diagnostics if d.severity == "warning"),
        "tenants": dict(sorted(tenants.items())),
        "forms": dict(sorted(forms.items())),
        "stepTypes": dict(sorted(step_types.items())),
    }


def validation_text(result: LoadResult) -> list[str]:
    lines = [d.format() for d in result.diagnostics]
    facts = summary(result)
    if lines:
        lines.append("")
    tenants = ", ".join(f"{name} {count}" for name, count in facts["tenants"].items())
    steps = ", ".join(f"{name} {count}" for name, count in facts["stepTypes"].items())
    lines.append(
        f"{facts['files']} files: {facts['workflows']} workflows, "
        f"{facts['environments']} environments, {facts['waivers']} waivers"
    )
    if tenants:
        lines.append(f"  workflows per tenant: {tenants}")
        lines.append(
            "  forms: " + ", ".join(f"{name} {count}" for name, count in facts["forms"].items())
        )
        lines.append(f"  step types: {steps}")
    verdict = (
        "valid"
        if result.ok
        else f"{facts['errors']} error{'s' if facts['errors'] != 1 else ''} found"
    )
    lines.append(verdict)
    return lines
