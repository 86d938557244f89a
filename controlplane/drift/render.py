"""Drift reports as text, Markdown (issue / job summary) and SARIF 2.1.0 (code scanning).

SARIF: one result per drifted resource (`CPL-D001` modified, `CPL-D002` missing, `CPL-D003`
unmanaged) located at the workflow's spec file (an unmanaged resource has none: the
environment file), and one result per policy rule that denies on a live state, under the
rule's own id, so code scanning shows live non-compliance next to the check's findings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controlplane.drift.model import DriftItem, DriftReport
from controlplane.policy.decision import Violation
from controlplane.report.check import format_violation
from controlplane.report.markdown import MAX_CHARS
from controlplane.report.sarif import sarif_log

DRIFT_RULES: dict[str, tuple[str, str, str]] = {
    # status: (rule id, name, description)
    "modified": (
        "CPL-D001",
        "LiveResourceModified",
        "A live resource differs from the artifact rendered from its spec.",
    ),
    "missing": (
        "CPL-D002",
        "LiveResourceMissing",
        "A resource a spec describes does not exist on its target.",
    ),
    "unmanaged": (
        "CPL-D003",
        "UnmanagedResource",
        "A live resource carries cpl's marks or lives in cpl's namespace but no spec describes it.",
    ),
}
_MAX_DIFF_LINES = 20


# -- text ------------------------------------------------------------------------------------


def drift_text(report: DriftReport) -> list[str]:
    """One line per drifted or non-compliant resource, its diff, failures, then a summary."""
    lines: list[str] = []
    for failure in report.failures:
        where = f" '{failure.resource}'" if failure.resource else ""
        kind = "unreachable" if failure.resource is None else "read failed"
        lines.append(
            f"{kind}: target {failure.target} ({failure.engine}){where}: {failure.message}"
        )
    for item in report.items:
        if not item.drifted and item.compliant is not False:
            continue
        verdict = {True: "compliant", False: "NON-COMPLIANT", None: "compliance unknown"}
        lines.append(
            f"{item.status:<9} {item.workflow or '-'} on {item.target} ({item.engine}) "
            f"{item.resource} [{verdict[item.compliant]}]"
        )
        for change in item.diff[:_MAX_DIFF_LINES]:
            lines.append(
                f"    {change['path']}: expected {_short(change['expected'])}, "
                f"actual {_short(change['actual'])}"
            )
        if len(item.diff) > _MAX_DIFF_LINES:
            lines.append(f"    ... {len(item.diff) - _MAX_DIFF_LINES} more differences")
        for violation in item.violations:
            lines.append(f"    live: {format_violation(violation)}")
        if item.note:
            lines.append(f"    {item.note}")
    s = report.summary
    shard = f" (tenants {', '.join(report.tenants)})" if report.tenants else ""
    lines.append(
        f"environment {report.environment}{shard}: {s['managed']} managed, {s['in_sync']} in "
        f"sync, {s['modified']} modified, {s['missing']} missing, {s['unmanaged']} unmanaged, "
        f"coverage {coverage_text(report)}, {s['noncompliant']} non-compliant live "
        f"({report.duration:.1f}s, concurrency {report.concurrency})"
    )
    if report.partial:
        lines.append(
            f"partial: {len(report.failures)} reads failed"
            + (f"; unreachable: {', '.join(report.unreachable)}" if report.unreachable else "")
        )
    else:
        lines.append("drift" if report.drifted else "in sync")
    return lines


def coverage_text(report: DriftReport) -> str:
    """`66.7%`; when reads failed, `66.7% of what was read (1 target not read)` or
    `unknown (2 targets not read)`: never a figure that counts what could not be read."""
    unread = len(report.unreachable)
    failed = report.failed_resource_reads
    why = "; ".join(
        [
            *([f"{unread} target{_s(unread)} not read"] if unread else []),
            *([f"{failed} read{_s(failed)} failed"] if failed else []),
        ]
    )
    coverage = report.coverage
    if coverage is None:
        return f"unknown ({why or 'nothing read'})"
    return f"{coverage:.1%} of what was read ({why})" if why else f"{coverage:.1%}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


# -- markdown --------------------------------------------------------------------------------


def drift_markdown(report: DriftReport, limit: int = MAX_CHARS) -> str:
    """A job summary / issue body: verdict, summary table, then one section per resource."""
    s = report.summary
    if report.partial:
        verdict = f"💥 **cpl drift is partial** on `{report.environment}`"
    elif report.drifted:
        verdict = f"❌ **drift found** on `{report.environment}`"
    else:
        verdict = f"✅ **no drift** on `{report.environment}`"
    shard = f" (tenants: {', '.join(report.tenants)})" if report.tenants else ""
    head = [
        "## cpl drift",
        "",
        verdict + shard,
        "",
        "| managed | in sync | modified | missing | unmanaged | coverage | non-compliant "
        "| failed reads |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['managed']} | {s['in_sync']} | {s['modified']} | {s['missing']} | "
        f"{s['unmanaged']} | {coverage_text(report)} | {s['noncompliant']} | "
        f"{s['failed_reads']} |",
        "",
    ]
    if report.failures:
        head += ["### Not read", "", "| target | engine | resource | error |", "|---|---|---|---|"]
        head += [
            f"| `{f.target}` | {f.engine} | {_escape(f.resource or '(whole target)')} | "
            f"{_escape(f.message)} |"
            for f in report.failures
        ]
        head.append("")
    text = "\n".join(head) + "\n"
    relevant = [i for i in report.items if i.drifted or i.compliant is False]
    for shown, item in enumerate(relevant):
        section = _markdown_item(item)
        if len(text) + len(section) > limit - 400:
            text += (
                f"\n> **Truncated:** showing {shown} of {len(relevant)} resources to stay under "
                f"GitHub's limit. Run `cpl drift --env {report.environment} --format json` "
                "for all of them.\n"
            )
            break
        text += section
    return text[:limit]


def _markdown_item(item: DriftItem) -> str:
    icon = {"modified": "✏️", "missing": "🕳️", "unmanaged": "👻", "in-sync": "✅"}[item.status]
    compliance = {True: "compliant", False: "**non-compliant**", None: "not evaluated"}
    title = (
        f"{icon} <b>{_escape(item.status)}</b> <code>{_escape(item.workflow or item.resource)}"
        f"</code> on <code>{_escape(item.target)}</code> ({item.engine}), live state "
        f"{compliance[item.compliant]}"
    )
    lines = [f"<details><summary>{title}</summary>", ""]
    lines.append(f"resource `{item.resource}`" + (f", id `{item.id}`" if item.id else ""))
    lines.append("")
    if item.diff:
        lines += ["| path | expected | actual |", "|---|---|---|"]
        lines += [
            f"| `{_escape(c['path'])}` | {_escape(_short(c['expected']))} | "
            f"{_escape(_short(c['actual']))} |"
            for c in item.diff[:_MAX_DIFF_LINES]
        ]
        if len(item.diff) > _MAX_DIFF_LINES:
            lines.append(f"\n… {len(item.diff) - _MAX_DIFF_LINES} more differences")
        lines.append("")
    if item.violations:
        lines += ["| rule | severity | message |", "|---|---|---|"]
        lines += [f"| `{v.rule}` | {v.severity} | {_escape(v.message)} |" for v in item.violations]
        lines.append("")
    if item.note:
        lines += [_escape(item.note), ""]
    lines += ["</details>", ""]
    return "\n".join(lines) + "\n"


# -- sarif -----------------------------------------------------------------------------------


def drift_sarif(report: DriftReport) -> dict[str, Any]:
    policy_rules: dict[str, Violation] = {}
    results: list[dict[str, Any]] = []
    for item in report.items:
        if item.drifted:
            results.append(_drift_result(item, report.environment))
        for violation in item.violations:
            policy_rules.setdefault(violation.rule, violation)
            results.append(_violation_result(item, violation, report.environment))
    rules = [
        {
            "id": rule_id,
            "name": name,
            "shortDescription": {"text": description},
            "fullDescription": {"text": description},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["cpl", "drift"]},
        }
        for rule_id, name, description in DRIFT_RULES.values()
    ] + [
        {
            "id": rule_id,
            "shortDescription": {"text": f"{rule_id} (policy rule, evaluated on the live state)"},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["cpl", "policy", "live"], "severity": v.severity},
        }
        for rule_id, v in sorted(policy_rules.items())
    ]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    return sarif_log(
        kind="drift",
        environment=report.environment,
        rules=rules,
        results=results,
        successful=not report.partial,
        notifications=[{"level": "error", "message": {"text": f.message}} for f in report.failures],
        summary=report.summary,
    )


def _drift_result(item: DriftItem, environment: str) -> dict[str, Any]:
    rule_id = DRIFT_RULES[item.status][0]
    what = item.workflow or item.resource
    detail = {
        "modified": f"{len(item.diff)} fields differ: "
        + ", ".join(c["path"] for c in item.diff[:5])
        + (" …" if len(item.diff) > 5 else ""),
        "missing": "the resource does not exist on the target",
        "unmanaged": "no spec describes it",
    }[item.status]
    return {
        "ruleId": rule_id,
        "level": "error" if item.compliant is False else "warning",
        "message": {
            "text": f"{item.status}: {what} on target {item.target} ({item.engine}, resource "
            f"{item.resource}): {detail}"
        },
        "locations": [_location(item.file or f"environments/{environment}.yaml")],
        "partialFingerprints": {
            "cplDrift/v1": _fingerprint(rule_id, item.target, item.resource, item.status)
        },
        "properties": {
            "workflow": item.workflow,
            "target": item.target,
            "engine": item.engine,
            "resource": item.resource,
            "status": item.status,
            "compliant": item.compliant,
            "diff": [dict(change) for change in item.diff],
        },
    }


def _violation_result(item: DriftItem, violation: Violation, environment: str) -> dict[str, Any]:
    return {
        "ruleId": violation.rule,
        "level": "error",
        "message": {
            "text": f"live state of {item.workflow} on target {item.target}: {violation.message}"
        },
        "locations": [
            _location(
                item.file or f"environments/{environment}.yaml", violation.line, violation.column
            )
        ],
        "partialFingerprints": {
            "cplDrift/v1": _fingerprint(violation.rule, item.target, item.resource, violation.path)
        },
        "properties": {
            "workflow": item.workflow,
            "target": item.target,
            "resource": item.resource,
            "path": violation.path,
            "severity": violation.severity,
            "live": True,
        },
    }


def _location(file: str, line: int = 1, column: int = 1) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": file, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": max(line, 1), "startColumn": max(column, 1)},
        }
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
