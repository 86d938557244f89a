"""The compliance report of `cpl report --format markdown`: the verdict, each workflow's
result and failing controls, the evidence in brief and the SLO attainment, for a pull
request comment or a wiki page. The HTML page holds the full detail."""

from __future__ import annotations

from controlplane.compliance.model import ComplianceReport
from controlplane.report.slo_markdown import slo_markdown

ICONS = {"pass": "✅ pass", "fail": "❌ fail", "waived": "🏷️ waived"}


def compliance_markdown(report: ComplianceReport) -> str:
    a = report.assessment
    counts = a.counts
    failing = [w for w in a.workflows if w.status == "fail"]
    verdict = (
        f"**Not compliant**: {len(failing)} of {len(a.workflows)} workflows fail a control."
        if failing
        else "**Compliant with waivers**."
        if counts["waived"]
        else "**Compliant**: every control passes for every workflow."
    )
    commit = a.git.commit[:12] if a.git.commit else "no git commit"
    lines = [
        f"# Compliance report: environment {a.environment}",
        "",
        f"Tier {a.tier} · commit `{commit}`{' (uncommitted changes)' if a.git.dirty else ''} · "
        f"policy library `{a.policy.digest[:19]}` · generated "
        f"{report.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC')}",
        "",
        verdict,
        f"Control results: {counts['fail']} fail, {counts['waived']} waived, "
        f"{counts['pass']} pass. Audit chain: {'intact' if report.audit.ok else 'BROKEN'}.",
        "",
        "## Workflows",
        "",
        "| Workflow | Result | Failing controls | Targets |",
        "|---|---|---|---|",
    ]
    for w in a.workflows:
        failed = ", ".join(c.control for c in w.controls if c.status == "fail") or "—"
        lines.append(
            f"| {w.workflow} | {ICONS[w.status]} | {_cell(failed)} | {', '.join(w.targets)} |"
        )
    lines.append("")
    return "\n".join(lines) + "\n" + slo_markdown(report.slo)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
