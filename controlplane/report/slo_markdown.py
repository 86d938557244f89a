"""The SLO section of the compliance report as Markdown (`cpl report --format markdown`)."""

from __future__ import annotations

from controlplane.compliance.slo import Objective, SloAttainment
from controlplane.runstats import format_seconds

ICONS = {"pass": "✅ met", "fail": "❌ missed", "no-data": "⚪ no data"}
PROFILE_STEPS = 5
"""Slowest steps listed per target."""


def slo_markdown(slo: SloAttainment | None) -> str:
    """The section (empty when the report was made without SLO data)."""
    if slo is None:
        return ""
    lines = [
        "## SLO attainment",
        "",
        f"Finished runs that started in the last {slo.window} (since "
        f"{slo.since.strftime('%Y-%m-%d %H:%M UTC')}), read from each target's engine. An "
        "objective without runs to measure has no data and is never counted as met.",
        "",
    ]
    if not slo.workflows:
        return "\n".join([*lines, "No workflow of this environment declares an SLO.", ""])
    lines += [
        "| Workflow | Target | Runs | Objective | Asked | Observed | Result |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for workflow in slo.workflows:
        for target in workflow.targets:
            runs = "unavailable" if target.unavailable is not None else str(target.runs)
            for objective in target.objectives:
                asked, observed = _values(objective)
                lines.append(
                    f"| {_cell(workflow.workflow)} | {_cell(target.target)} | {runs} | "
                    f"`{objective.name}` | {asked} | {observed} | {ICONS[objective.status]} |"
                )
    lines.append("")
    for workflow in slo.workflows:
        for target in workflow.targets:
            if target.unavailable is not None:
                lines.append(
                    f"- **{_cell(workflow.workflow)} on {_cell(target.target)}**: SLO data "
                    f"unavailable: {_cell(target.unavailable)}"
                )
            elif target.steps:
                slowest = ", ".join(
                    f"`{_cell(step.name)}` p50 {format_seconds(step.durations.p50)} / p95 "
                    f"{format_seconds(step.durations.p95)}"
                    for step in target.steps[:PROFILE_STEPS]
                )
                lines.append(
                    f"- **{_cell(workflow.workflow)} on {_cell(target.target)}**, slowest "
                    f"steps: {slowest}"
                )
    lines.append("")
    return "\n".join(lines)


def _values(objective: Objective) -> tuple[str, str]:
    if objective.name == "successRate":
        observed = "—" if objective.observed is None else f"{objective.observed:.2%}"
        return f"≥ {objective.objective:.2%}", observed
    observed = "—" if objective.observed is None else format_seconds(objective.observed)
    return f"≤ {format_seconds(objective.objective)}", observed


def _cell(text: str) -> str:
    """Text safe in a table cell: no pipes or line breaks."""
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")
