"""The SLO section of the HTML compliance report (`compliance/slo.py` builds its data):
per workflow with an `slo`, each objective on each target, met, missed or without data, the
chart of them all, and the step profile of the latest runs."""

from __future__ import annotations

import html

from controlplane.compliance.slo import Objective, SloAttainment, TargetSlo
from controlplane.report.charts import objectives_svg, profile_svg
from controlplane.runstats import format_seconds

LABELS = {"pass": "MET", "fail": "MISSED", "no-data": "NO DATA"}
BADGES = {"pass": "pass", "fail": "fail", "no-data": "warning"}


def slo_section(slo: SloAttainment | None) -> str:
    """The section (empty when the report was made without SLO data)."""
    if slo is None:
        return ""
    head = (
        '<section aria-labelledby="slo"><h2 id="slo">SLO attainment</h2>'
        f'<p class="muted">Runs that started in the last {_e(slo.window)} (since '
        f"{_e(slo.since.strftime('%Y-%m-%d %H:%M UTC'))}) and have finished, read from each "
        "target's engine (at most 1000 per workflow and target). The success rate is "
        "succeeded / finished runs; completion times are nearest-rank percentiles of the "
        "succeeded runs. An objective without runs to measure has no data: it is never "
        "counted as met.</p>"
    )
    if not slo.workflows:
        return (
            head + '<p class="muted">No workflow of this environment declares an SLO.</p></section>'
        )
    counts = slo.counts
    summary = (
        f"<p>{_e(len(slo.workflows))} workflows with an SLO: {_badge('pass')} "
        f"{_e(counts['pass'])} &middot; {_badge('fail')} {_e(counts['fail'])} &middot; "
        f"{_badge('no-data')} {_e(counts['no-data'])}</p>"
    )
    rows = [(w.workflow, t) for w in slo.workflows for t in w.targets]
    chart = (
        "<figure>" + objectives_svg(rows) + "<figcaption>Each objective on each target: the "
        "bar is what the runs show, the tick the objective.</figcaption></figure>"
        if any(t.objectives for _, t in rows)
        else ""
    )
    parts = [head, summary, chart]
    for index, (workflow, target) in enumerate(rows):
        parts.append(_target(workflow, target, index))
    parts.append("</section>")
    return "".join(parts)


def _target(workflow: str, target: TargetSlo, index: int) -> str:
    title = f"{workflow} on {target.target} ({target.engine})"
    parts = [f"<h3>{_badge(target.status)} {_e(title)}</h3>"]
    if target.unavailable is not None:
        parts.append(
            f'<p class="warn-text">SLO data unavailable for this target: '
            f"{_e(target.unavailable)}</p>"
        )
    else:
        rate = f"{target.succeeded / target.runs:.2%}" if target.runs else "no runs"
        parts.append(
            f'<p class="muted">{_e(target.runs)} finished runs, {_e(target.succeeded)} '
            f"succeeded ({_e(rate)}); completion time p50 "
            f"{_e(format_seconds(target.durations.p50))}, p95 "
            f"{_e(format_seconds(target.durations.p95))}, max "
            f"{_e(format_seconds(target.durations.max))}</p>"
        )
    rows = "".join(_objective_row(o) for o in target.objectives)
    parts.append(
        '<table><thead><tr><th scope="col">Objective</th><th scope="col">Asked</th>'
        '<th scope="col">Observed</th><th scope="col">Result</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    if target.steps:
        parts.append(
            "<figure>"
            + profile_svg(target.steps, f"Step durations of {title}", f"profile-{index}")
            + "<figcaption>Step durations over the latest runs with step timings, slowest "
            "(p95) first.</figcaption></figure>"
        )
    return "".join(parts)


def _objective_row(objective: Objective) -> str:
    if objective.name == "successRate":
        asked = f"≥ {objective.objective:.2%}"
        observed = "—" if objective.observed is None else f"{objective.observed:.2%}"
    else:
        asked = f"≤ {format_seconds(objective.objective)}"
        observed = format_seconds(objective.observed) if objective.observed is not None else "—"
    return (
        f'<tr><th scope="row"><code>{_e(objective.name)}</code></th><td>{_e(asked)}</td>'
        f'<td class="num">{_e(observed)}</td><td>{_badge(objective.status)}</td></tr>'
    )


def _badge(status: str) -> str:
    return f'<span class="badge {BADGES[status]}">{LABELS[status]}</span>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
