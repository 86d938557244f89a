"""SARIF 2.1.0 of a policy decision, as GitHub code scanning ingests it.

One result per violation (per target), located at the YAML file, line and column of the
offending node. Waived violations carry an external suppression with the waiver's name;
`level` is `error` for mandatory violations and `warning` for advisory ones and `warn`
results.
"""

from __future__ import annotations

import hashlib
from typing import Any

from controlplane import __version__
from controlplane.policy.decision import Decision, Violation
from controlplane.policy.library import RuleInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/cpl-dev/cpl"
# GitHub ranks security alerts by `security-severity` (a number as a string, 0-10).
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def check_sarif(decision: Decision) -> dict[str, Any]:
    rules = sorted(decision.rules.values(), key=lambda info: info.id)
    index = {info.id: i for i, info in enumerate(rules)}
    results = [
        _result(violation, result.workflow, result.target, index)
        for result in decision.results
        for violation in result.violations
    ]
    return sarif_log(
        kind="check",
        environment=decision.environment,
        rules=[_rule(info, decision.enforcement.get(info.id, "mandatory")) for info in rules],
        results=results,
        successful=not decision.errors,
        notifications=[
            {
                "level": "error" if d.severity == "error" else "warning",
                "message": {"text": f"{d.code} {d.message}"},
                "locations": [_location(d.file, d.line, d.column)],
            }
            for d in decision.diagnostics
        ],
        summary=decision.summary,
    )


def sarif_log(
    *,
    kind: str,
    environment: str,
    rules: list[dict[str, Any]],
    results: list[dict[str, Any]],
    successful: bool,
    notifications: list[dict[str, Any]],
    summary: dict[str, Any],
) -> dict[str, Any]:
    """One SARIF 2.1.0 log with one run of cpl (`kind`: check, drift) for an environment."""
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cpl",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"cpl/{kind}/{environment}/"},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "file:///"}},
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": successful,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "properties": {"environment": environment, "summary": summary},
            }
        ],
    }


def _rule(info: RuleInfo, enforcement: str) -> dict[str, Any]:
    level = {"mandatory": "error", "advisory": "warning"}.get(enforcement, "none")
    return {
        "id": info.id,
        "name": _pascal(info.package.rsplit(".", 1)[-1]),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.description or info.title},
        "help": {
            "text": info.description or info.title,
            "markdown": f"**{info.id}** {info.title}\n\n{info.description}\n\n"
            + "\n".join(f"- {control}" for control in info.controls),
        },
        "defaultConfiguration": {"level": level, "enabled": enforcement != "disabled"},
        "properties": {
            "severity": info.severity,
            "controls": list(info.controls),
            "tags": ["cpl", "policy", "compliance", info.severity],
            "security-severity": _SECURITY_SEVERITY.get(info.severity, "5.0"),
        },
    }


def _result(
    violation: Violation, workflow: str, target: str, index: dict[str, int]
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": violation.rule,
        "level": "error"
        if violation.kind == "deny" and violation.enforcement == "mandatory"
        else "warning",
        "message": {"text": f"{violation.message} ({workflow} on target {target})"},
        "locations": [_location(violation.file, violation.line, violation.column)],
        "partialFingerprints": {"cplFinding/v1": _fingerprint(violation, workflow, target)},
        "properties": {
            "workflow": workflow,
            "target": target,
            "path": violation.path,
            "severity": violation.severity,
            "enforcement": violation.enforcement,
            "kind": violation.kind,
        },
    }
    if violation.rule in index:
        result["ruleIndex"] = index[violation.rule]
    if violation.waived:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"waiver {violation.waiver}",
            }
        ]
    return result


def _location(file: str, line: int, column: int) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": file, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": max(line, 1), "startColumn": max(column, 1)},
        }
    }


def _fingerprint(violation: Violation, workflow: str, target: str) -> str:
    text = "\0".join((violation.rule, workflow, target, violation.path, violation.message))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))
