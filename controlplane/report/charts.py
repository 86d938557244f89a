"""Small inline SVG charts of the report's SLO section: objectives met or missed, and where
a workflow's runs spend their time. No scripts, fonts or links: every text goes through
`html.escape`, and the same data draws the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from controlplane.compliance.slo import Objective, TargetSlo
from controlplane.runstats import StepProfile, format_seconds

COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "no-data": "#8c959f"}
WIDTH = 960
ROW = 22
LABEL_W = 360
MAX_STEPS = 12


def objectives_svg(rows: Sequence[tuple[str, TargetSlo]]) -> str:
    """One bar per objective of every (workflow, target): the observed value against the
    objective (the black tick). A success rate is drawn from 0 to 100 %; a completion time on a
    scale of twice its objective (longer bars are cut at the edge). Grey: no data."""
    items = [(label, t, o) for label, t in rows for o in t.objectives]
    height = 28 + ROW * max(len(items), 1) + 24
    plot_x, plot_w = LABEL_W + 10, WIDTH - LABEL_W - 200
    out = [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="slo-title slo-desc" '
        'style="width:100%;height:auto;font-family:system-ui,DejaVu Sans,sans-serif">',
        '<title id="slo-title">SLO objectives: observed against objective</title>',
        f'<desc id="slo-desc">{_e(_describe(items))}</desc>',
    ]
    for index, (label, target, objective) in enumerate(items):
        y = 20 + index * ROW
        out.append(
            f'<text x="{LABEL_W}" y="{y + 13}" font-size="11.5" text-anchor="end" '
            f'fill="#1f2328">{_e(label)} · {_e(target.target)} · {_e(objective.name)}</text>'
            f'<rect x="{plot_x}" y="{y + 3}" width="{plot_w}" height="12" fill="#f6f8fa" '
            'stroke="#d0d7de" stroke-width="1"/>'
        )
        scale = 1.0 if objective.name == "successRate" else 2 * objective.objective or 1.0
        tick = plot_x + plot_w * min(objective.objective / scale, 1.0)
        if objective.observed is not None:
            bar = plot_w * min(objective.observed / scale, 1.0)
            out.append(
                f'<rect x="{plot_x}" y="{y + 3}" width="{bar:.1f}" height="12" '
                f'fill="{COLOURS[objective.status]}"><title>{_e(_observed(objective))}'
                "</title></rect>"
            )
        out.append(
            f'<line x1="{tick:.1f}" y1="{y}" x2="{tick:.1f}" y2="{y + 18}" stroke="#1f2328" '
            'stroke-width="2"/>'
            f'<text x="{plot_x + plot_w + 8}" y="{y + 13}" font-size="11.5" '
            f'fill="{COLOURS[objective.status]}">{_e(_observed(objective))}</text>'
        )
    legend_y = height - 8
    x = plot_x
    for status, label in (("pass", "met"), ("fail", "missed"), ("no-data", "no data")):
        out.append(
            f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS[status]}"/>'
            f'<text x="{x + 14}" y="{legend_y}" font-size="11" fill="#1f2328">{label}</text>'
        )
        x += 80
    out.append(
        f'<line x1="{x + 4}" y1="{legend_y - 11}" x2="{x + 4}" y2="{legend_y + 1}" '
        f'stroke="#1f2328" stroke-width="2"/><text x="{x + 12}" y="{legend_y}" '
        'font-size="11" fill="#1f2328">objective</text></svg>'
    )
    return "".join(out)


def profile_svg(steps: Sequence[StepProfile], title: str, ident: str) -> str:
    """The slowest steps (at most MAX_STEPS), each a p95 bar with its p50 inside it and a
    tick at its max; `ident` is the chart's unique id on the page."""
    shown = list(steps[:MAX_STEPS])
    height = 20 + ROW * max(len(shown), 1) + 22
    label_w = 200
    plot_x, plot_w = label_w + 10, WIDTH - label_w - 250
    longest = max([s.durations.max or 0.0 for s in shown] + [1e-3])
    out = [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{ident}" '
        'style="width:100%;height:auto;font-family:system-ui,DejaVu Sans,sans-serif">',
        f'<title id="{ident}">{_e(title)}</title>',
    ]
    for index, step in enumerate(shown):
        y = 10 + index * ROW
        d = step.durations
        p95 = plot_w * (d.p95 or 0.0) / longest
        p50 = plot_w * (d.p50 or 0.0) / longest
        peak = plot_x + plot_w * (d.max or 0.0) / longest
        out.append(
            f'<text x="{label_w}" y="{y + 13}" font-size="11.5" text-anchor="end" '
            f'fill="#1f2328">{_e(step.name)}</text>'
            f'<rect x="{plot_x}" y="{y + 3}" width="{p95:.1f}" height="12" fill="#9ecbff">'
            f"<title>{_e(step.name)}: p95 {_e(format_seconds(d.p95))}</title></rect>"
            f'<rect x="{plot_x}" y="{y + 6}" width="{p50:.1f}" height="6" fill="#0969da">'
            f"<title>{_e(step.name)}: p50 {_e(format_seconds(d.p50))}</title></rect>"
            f'<line x1="{peak:.1f}" y1="{y + 2}" x2="{peak:.1f}" y2="{y + 16}" '
            'stroke="#59636e" stroke-width="1.5"/>'
            f'<text x="{plot_x + plot_w + 8}" y="{y + 13}" font-size="11" fill="#59636e">'
            f"p50 {_e(format_seconds(d.p50))} · p95 {_e(format_seconds(d.p95))} · "
            f"n={_e(d.count)}</text>"
        )
    legend_y = height - 6
    out.append(
        f'<rect x="{plot_x}" y="{legend_y - 9}" width="10" height="10" fill="#0969da"/>'
        f'<text x="{plot_x + 14}" y="{legend_y}" font-size="11" fill="#1f2328">p50</text>'
        f'<rect x="{plot_x + 60}" y="{legend_y - 9}" width="10" height="10" fill="#9ecbff"/>'
        f'<text x="{plot_x + 74}" y="{legend_y}" font-size="11" fill="#1f2328">p95</text>'
        f'<line x1="{plot_x + 124}" y1="{legend_y - 10}" x2="{plot_x + 124}" '
        f'y2="{legend_y + 1}" stroke="#59636e" stroke-width="1.5"/>'
        f'<text x="{plot_x + 130}" y="{legend_y}" font-size="11" fill="#1f2328">max</text>'
        "</svg>"
    )
    return "".join(out)


def _observed(objective: Objective) -> str:
    if objective.observed is None:
        return "no data"
    if objective.name == "successRate":
        return f"{objective.observed:.2%} (objective ≥ {objective.objective:.2%})"
    return (
        f"{format_seconds(objective.observed)} (objective ≤ {format_seconds(objective.objective)})"
    )


def _describe(items: Sequence[tuple[str, TargetSlo, Objective]]) -> str:
    counts = {"pass": 0, "fail": 0, "no-data": 0}
    for _, _, objective in items:
        counts[objective.status] += 1
    return (
        f"{len(items)} objectives: {counts['pass']} met, {counts['fail']} missed, "
        f"{counts['no-data']} without data."
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
