"""Reports of `cpl check`: the stable JSON shape (docs/validation.md's conventions) and
compiler-style text.

SARIF, JUnit and Markdown live next to this module (`sarif.py`, `junit.py`, `markdown.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from controlplane.policy.decision import Decision, Violation, WaiverUse, WorkflowResult


def check_json(decision: Decision) -> dict[str, Any]:
    """`{"ok", "environment", "results", "waivers", "summary"}` (stable: fields are only added),
    plus diagnostics."""
    return {
        "ok": decision.ok,
        "environment": decision.environment,
        "results": [
            {
                "workflow": result.workflow,
                "target": result.target,
                "file": result.file,
                "violations": [violation_json(v) for v in result.violations],
            }
            for result in decision.results
        ],
        "waivers": {
            "expired": [waiver_json(w) for w in decision.waivers.expired],
            "unused": [waiver_json(w) for w in decision.waivers.unused],
            "expiring": [waiver_json(w) for w in decision.waivers.expiring],
        },
        "summary": decision.summary,
        "diagnostics": [d.to_json() for d in decision.diagnostics],
    }


def violation_json(violation: Violation) -> dict[str, Any]:
    return {
        "rule": violation.rule,
        "severity": violation.severity,
        "enforcement": violation.enforcement,
        "message": violation.message,
        "path": violation.path,
        "line": violation.line,
        "column": violation.column,
        "waived": violation.waived,
        "waiver": violation.waiver,
        "kind": violation.kind,
    }


def waiver_json(waiver: WaiverUse) -> dict[str, Any]:
    return {
        "name": waiver.name,
        "rule": waiver.rule,
        "workflows": list(waiver.workflows),
        "expires": waiver.expires.isoformat(),
        "owner": waiver.owner,
        "ticket": waiver.ticket,
        "file": waiver.file,
    }


def outcome(violation: Violation) -> str:
    """`denied`, `waived` or `warning`: what the violation does to the check."""
    if violation.waived:
        return "waived"
    return "denied" if violation.denies else "warning"


def format_violation(violation: Violation) -> str:
    """`FILE:LINE:COL: RULE message` with the outcome and severity appended."""
    extra = f"waived by {violation.waiver}" if violation.waived else outcome(violation)
    return (
        f"{violation.file}:{violation.line}:{violation.column}: {violation.rule} "
        f"{violation.message} [{violation.severity}, {extra}]"
    )


def grouped(decision: Decision) -> Iterator[tuple[str, str, list[tuple[str, Violation]]]]:
    """(workflow, file, [(target, violation)]) with denied workflows first, violations most
    severe first; identical findings on several targets are listed once with all targets."""
    by_workflow: dict[str, list[WorkflowResult]] = {}
    for result in decision.results:
        by_workflow.setdefault(result.workflow, []).append(result)
    rows = []
    for workflow, results in by_workflow.items():
        merged: dict[tuple[Any, ...], tuple[list[str], Violation]] = {}
        for result in results:
            for v in result.violations:
                key = (v.rule, v.path, v.message, v.enforcement, v.kind, v.waiver)
                merged.setdefault(key, ([], v))[0].append(result.target)
        items = sorted(
            ((", ".join(targets), v) for targets, v in merged.values()),
            key=lambda item: item[1].sort_key(),
        )
        rows.append((workflow, results[0].file, items))
    rows.sort(key=lambda row: (not any(v.denies for _, v in row[2]), row[0]))
    yield from rows


def check_text(decision: Decision) -> list[str]:
    """Compiler-style lines grouped by workflow, then waivers and a summary."""
    lines: list[str] = [d.format() for d in decision.diagnostics]
    if lines:
        lines.append("")
    targets_total = len({r.target for r in decision.results})
    for workflow, _file, items in grouped(decision):
        if not items:
            continue
        lines.append(f"{workflow}")
        for targets, violation in items:
            suffix = f" (targets: {targets})" if targets_total > 1 else ""
            lines.append(f"  {format_violation(violation)}{suffix}")
        lines.append("")
    waivers = decision.waivers
    for label, group in (
        ("expired waiver (waives nothing; renew or remove it)", waivers.expired),
        ("unused waiver (matched no violation)", waivers.unused),
        ("waiver expiring soon", waivers.expiring),
    ):
        for waiver in group:
            lines.append(
                f"{waiver.file}:1:1: {waiver.rule} {label}: '{waiver.name}' expires "
                f"{waiver.expires.isoformat()} (owner {waiver.owner})"
            )
    summary = decision.summary
    lines.append(
        f"environment {decision.environment}: {summary['workflows']} workflows on "
        f"{len(decision.results)} targets checked; {summary['denied']} denied, "
        f"{summary['warnings']} warnings, {summary['waived']} waived"
        + (f", {len(waivers.expired)} expired waivers" if waivers.expired else "")
    )
    if decision.errors:
        lines.append(f"error: {len(decision.errors)} problems prevent a complete check")
    else:
        lines.append("denied" if decision.denied else "passed")
    return lines
