"""Reports of `cpl validate`: compiler-style text with a summary, and the stable JSON shape
(docs/validation.md)."""

from __future__ import annotations

from typing import Any

from controlplane.spec.validate import Validation


def validation_json(validation: Validation) -> dict[str, Any]:
    return {
        "ok": validation.ok,
        "diagnostics": [d.to_json() for d in validation.diagnostics],
        "summary": summary(validation),
    }


def summary(validation: Validation) -> dict[str, Any]:
    """What was validated: files, documents per kind, workflows per tenant, step types used."""
    return {
        "files": validation.files,
        "workflows": validation.documents["Workflow"],
        "environments": validation.documents["Environment"],
        "waivers": validation.documents["Waiver"],
        "errors": sum(1 for d in validation.diagnostics if d.severity == "error"),
        "warnings": sum(1 for d in validation.diagnostics if d.severity == "warning"),
        "tenants": dict(sorted(validation.tenants.items())),
        "forms": dict(sorted(validation.forms.items())),
        "stepTypes": dict(sorted(validation.step_types.items())),
    }


def validation_text(validation: Validation) -> list[str]:
    lines = [d.format() for d in validation.diagnostics]
    facts = summary(validation)
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
    errors = facts["errors"]
    lines.append("valid" if validation.ok else f"{errors} error{'s' if errors != 1 else ''} found")
    return lines
