"""What a notification says, whatever its format: a `Notice` made from a command's result.

Every text in a notice has gone through the console's redaction (`redact_text`: URLs
redacted, credential formats masked) and every JSON value through `mask_secrets`; engine
error text of a regulated workflow is replaced as on the console (`redact_run_error`). No
live documents, diffs or run data are included: findings name a file, a rule, a resource.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controlplane.redaction import mask_secrets, redact_text

if TYPE_CHECKING:
    from controlplane.deploy.apply import ApplyResult
    from controlplane.drift import DriftReport
    from controlplane.policy.decision import Decision

MAX_FINDINGS = 20
"""Findings a notice carries at most (the payloads show fewer: see `payload`)."""
MAX_TEXT = 500
"""Characters of one finding's text at most."""

_GITHUB_PART = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True)
class Finding:
    """One line of a notice: where (`file:line`, or a resource) and what."""

    where: str
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """One notification: the event, the environment, the command's exit code and summary,
    the first findings (`total` counts them all), an error message, a link to the CI run."""

    event: str
    command: str
    environment: str
    title: str
    exit_code: int
    counts: dict[str, Any]
    findings: tuple[Finding, ...] = ()
    total: int = 0
    error: str | None = None
    run_url: str | None = field(default_factory=lambda: run_url())

    def to_json(self) -> dict[str, Any]:
        """The plain JSON payload: the command's JSON summary and its first findings."""
        return {
            "source": "cpl",
            "event": self.event,
            "command": self.command,
            "environment": self.environment,
            "title": self.title,
            "exitCode": self.exit_code,
            "summary": self.counts,
            "findings": [{"where": f.where, "text": f.text, **f.detail} for f in self.findings],
            "totalFindings": self.total,
            "error": self.error,
            "run": self.run_url,
        }


def run_url() -> str | None:
    """The CI run's page when GitHub Actions' variables name one."""
    server = os.environ.get("GITHUB_SERVER_URL", "")
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    run_id = os.environ.get("GITHUB_RUN_ID", "")
    if not (server.startswith("https://") and _GITHUB_PART.match(repository) and run_id.isdigit()):
        return None
    return f"{redact_text(server.rstrip('/'))}/{repository}/actions/runs/{run_id}"


def _text(value: object) -> str:
    text = redact_text(str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def check_notice(decision: Decision) -> Notice:
    """`cpl check` was denied: its denying violations and expired waivers."""
    findings: list[Finding] = []
    denying = sorted(
        (
            (result.workflow, result.target, v)
            for result in decision.results
            for v in result.violations
            if v.denies
        ),
        key=lambda row: (row[2].file, row[2].line, row[2].rule, row[1]),
    )
    for workflow, target, v in denying:
        findings.append(
            Finding(
                f"{v.file}:{v.line}",
                _text(f"{v.rule} {v.message} ({workflow} on {target})"),
                {"rule": v.rule, "workflow": workflow, "target": target, "severity": v.severity},
            )
        )
    for waiver in decision.waivers.expired:
        findings.append(
            Finding(waiver.file, _text(f"waiver {waiver.name} expired {waiver.expires}"))
        )
    return Notice(
        event="check-denied",
        command="check",
        environment=decision.environment,
        title=f"cpl check denied on {decision.environment}",
        exit_code=int(decision.exit_code),
        counts=mask_secrets(dict(decision.summary)),
        findings=tuple(findings[:MAX_FINDINGS]),
        total=len(findings),
    )


def drift_notice(report: DriftReport) -> Notice:
    """`cpl drift` found drift: the drifted resources (no diffs: they hold live values)."""
    drifted = [item for item in report.items if item.drifted]
    findings = [
        Finding(
            f"{item.file}" if item.file else f"{item.target}/{item.resource}",
            _text(
                f"{item.status} {item.resource} on {item.target}"
                + (f" ({item.workflow})" if item.workflow else "")
                + (f", {len(item.diff)} field(s) differ" if item.diff else "")
                + (", NON-COMPLIANT" if item.compliant is False else "")
            ),
            {
                "status": item.status,
                "workflow": item.workflow,
                "target": item.target,
                "resource": _text(item.resource),
            },
        )
        for item in drifted
    ]
    title = f"cpl drift found drift on {report.environment}"
    if report.partial:
        title += " (partial: some reads failed)"
    return Notice(
        event="drift",
        command="drift",
        environment=report.environment,
        title=title,
        exit_code=int(report.exit_code),
        counts=mask_secrets(dict(report.summary)),
        findings=tuple(findings[:MAX_FINDINGS]),
        total=len(findings),
    )


def apply_notice(
    environment: str,
    exit_code: int,
    result: ApplyResult | None = None,
    error: str | None = None,
    classifications: dict[str, str | None] | None = None,
) -> Notice:
    """`cpl apply` failed: the changes that failed, or the error that stopped it."""
    from controlplane.redaction import redact_run_error

    findings: list[Finding] = []
    if result is not None:
        for outcome in result.failed:
            change = outcome.change
            classification = (classifications or {}).get(change.workflow or "")
            shown = redact_run_error({"error": "", "cause": outcome.message}, classification)
            message = shown["cause"] if shown else ""
            findings.append(
                Finding(
                    f"{change.target}/{_text(change.resource)}",
                    _text(f"{outcome.status} {change.action} {change.workflow}: {message}"),
                    {
                        "status": outcome.status,
                        "action": change.action,
                        "workflow": change.workflow,
                        "target": change.target,
                    },
                )
            )
    counts: dict[str, Any] = dict(result.summary) if result is not None else {}
    return Notice(
        event="apply-failed",
        command="apply",
        environment=environment,
        title=f"cpl apply failed on {environment}",
        exit_code=exit_code,
        counts=counts,
        findings=tuple(findings[:MAX_FINDINGS]),
        total=len(findings),
        error=_text(error) if error else None,
    )
