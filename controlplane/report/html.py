"""The auditor's compliance report of `cpl report` as one self-contained HTML page.

Inline CSS, no scripts, fonts, images or links to anything outside the page: the history chart
is inline SVG drawn here. Every value from the model goes through `_e` (html.escape). The page
is a function of the report: the same report renders to the same bytes (the generation time is
part of the report).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence

from controlplane.compliance.model import (
    Assessment,
    AuditEvidence,
    ComplianceReport,
    ControlResult,
    Deployment,
    HistoryPoint,
    RuleFinding,
    WaiverEvidence,
    WorkflowCompliance,
)
from controlplane.report.access import access_section
from controlplane.report.slo_html import slo_section

LABELS = {"pass": "Pass", "fail": "Fail", "waived": "Waived", "warning": "Warning"}
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "waived": "#9a6700"}
CHART_WIDTH, CHART_HEIGHT = 960, 260

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color: #1f2328; background: #f6f8fa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 24px 0 6px; display: flex; gap: 8px; align-items: center; }
p.lede { margin: 0 0 16px; color: #59636e; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; color: #59636e; }
th, td { border: 1px solid #d0d7de; padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; font-weight: 600; }
.nw, td.num, th.num { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; min-width: 58px; padding: 1px 8px; border-radius: 10px;
  font-size: 12px; font-weight: 700; text-align: center; letter-spacing: .02em;
  border: 1px solid transparent; white-space: nowrap; }
.badge.pass { color: #116329; background: #dafbe1; border-color: #1a7f37; }
.badge.fail { color: #a40e26; background: #ffebe9; border-color: #cf222e; }
.badge.waived { color: #7d4e00; background: #fff8c5; border-color: #9a6700; }
.badge.warning { color: #59636e; background: #eaeef2; border-color: #8c959f; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 16px 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; }
.card .value { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .label { color: #59636e; font-size: 12.5px; }
.card.fail { border-left: 6px solid #cf222e; }
.card.waived { border-left: 6px solid #9a6700; }
.card.pass { border-left: 6px solid #1a7f37; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.verdict.fail { background: #ffebe9; border: 1px solid #cf222e; }
.verdict.pass { background: #dafbe1; border: 1px solid #1a7f37; }
.verdict.waived { background: #fff8c5; border: 1px solid #9a6700; }
dl.facts { display: grid; grid-template-columns: 220px 1fr; gap: 4px 16px; margin: 8px 0; }
dl.facts dt { color: #59636e; }
dl.facts dd { margin: 0; }
.muted { color: #59636e; }
.warn-text { color: #a40e26; font-weight: 600; }
section.workflow { border-top: 1px solid #eaeef2; }
details { margin: 4px 0 8px; }
summary { cursor: pointer; color: #0969da; }
figure { margin: 8px 0 0; }
figcaption { color: #59636e; font-size: 12.5px; }
ul.inline { margin: 4px 0; padding-left: 20px; columns: 2; }
@media print { body { background: #fff; } main { padding: 0; } a { color: inherit; } }
"""


def render_html(report: ComplianceReport) -> str:
    """The whole page (module doc)."""
    a = report.assessment
    title = f"Compliance report: {a.environment}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network: nothing on this page may load from anywhere (defence in depth).
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(report),
        _summary(a),
        _history(report.audit),
        _overview(a),
        _workflows(a),
        _controls(a),
        slo_section(report.slo),
        _evidence(a, report.audit),
        access_section(report.audit.access),
        _footer(report),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- sections ---------------------------------------------------------------------------------


def _header(report: ComplianceReport) -> str:
    a = report.assessment
    commit = a.git.commit[:12] if a.git.commit else "no git commit"
    dirty = " (uncommitted changes)" if a.git.dirty else ""
    return (
        "<header>"
        f"<h1>Compliance report: environment {_e(a.environment)}</h1>"
        f'<p class="lede">Tier {_e(a.tier)} &middot; commit <code>{_e(commit)}</code>{_e(dirty)}'
        f" &middot; policy library <code>{_e(_short_digest(a.policy.digest))}</code>"
        f" &middot; generated {_e(_when(report.generated_at))}</p>"
        "</header>"
    )


def _summary(a: Assessment) -> str:
    counts, by_workflow = a.counts, a.workflow_counts
    failing = [w.workflow for w in a.workflows if w.status == "fail"]
    if failing:
        verdict, text = (
            "fail",
            (
                f"Not compliant: {len(failing)} of {len(a.workflows)} workflows fail at least one "
                f"control ({', '.join(failing)})."
            ),
        )
    elif counts["waived"]:
        verdict, text = "waived", "Compliant with waivers: every failing control is waived."
    else:
        verdict, text = "pass", "Compliant: every control passes for every workflow."
    cards = [
        ("", len(a.workflows), "workflows"),
        ("", len(a.controls), "controls"),
        ("fail", counts["fail"], f"failing results ({by_workflow['fail']} workflows)"),
        ("waived", counts["waived"], "waived results"),
        ("pass", counts["pass"], "passing results"),
    ]
    items = "".join(
        f'<div class="card {kind}"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for kind, value, label in cards
    )
    notes = []
    if a.warnings:
        notes.append(f"{a.warnings} advisory findings (warnings, not failing)")
    errors = [d for d in a.diagnostics if d.severity == "error"]
    if errors:
        notes.append(f"{len(errors)} errors while checking: see Evidence")
    note = f'<p class="muted">{_e("; ".join(notes))}.</p>' if notes else ""
    return (
        '<section aria-labelledby="summary"><h2 id="summary">Summary</h2>'
        f'<div class="verdict {verdict}">{_badge(verdict)} {_e(text)}</div>'
        f'<div class="cards">{items}</div>{note}'
        '<p class="muted">A result is one control for one workflow (on all its targets). '
        "A control fails when a mandatory violation of a rule mapped to it is not waived, is "
        "waived when all such violations are waived, and passes otherwise.</p>"
        "</section>"
    )


def _history(audit: AuditEvidence) -> str:
    points = list(audit.history)
    head = (
        '<section aria-labelledby="history"><h2 id="history">Compliance over the audit history</h2>'
    )
    if not points:
        return head + '<p class="muted">No report or drift run recorded yet.</p></section>'
    rows = []
    for point in reversed(points[-12:]):
        rows.append(
            "<tr>"
            f'<td class="nw">{_e(_when(point.time, zone=False))}</td>'
            f"<td>{_e(_point_kind(point))}</td>"
            f"<td>{_point_result(point)}</td>"
            f'<td class="num">{_e(_count(point.workflows, "fail"))}</td>'
            f'<td class="num">{_e(_count(point.workflows, "waived"))}</td>'
            f'<td class="num">{_e(_count(point.workflows, "pass"))}</td>'
            f'<td class="num">{_e(_count(point.counts, "fail"))}</td>'
            f'<td class="nw"><code>{_e((point.commit or "")[:10])}</code></td>'
            "</tr>"
        )
    table = (
        "<table><caption>Most recent events, newest first</caption><thead><tr>"
        '<th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Result</th>'
        '<th scope="col" class="num">Workflows failing</th>'
        '<th scope="col" class="num">Workflows waived</th>'
        '<th scope="col" class="num">Workflows passing</th>'
        '<th scope="col" class="num">Failing results</th><th scope="col">Commit</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        head + "<figure>" + history_svg(points) + "<figcaption>Bars: workflows by result at each "
        "report (<code>dev.cpl.report.generated</code>); markers below: drift runs "
        "(<code>dev.cpl.drift.completed</code>) and policy checks, filled green when clean, "
        f"red when not. {len(points)} events.</figcaption></figure>" + table + "</section>"
    )


def history_svg(points: Sequence[HistoryPoint]) -> str:
    """The history chart: one slot per event, oldest left; reports as stacked bars of
    workflows by result, drift runs and checks as markers in a lane under the bars."""
    width, height = CHART_WIDTH, CHART_HEIGHT
    left, right, top = 44, 16, 16
    lane_y, axis_y = height - 58, height - 74  # marker lane, bars' baseline
    plot_w = width - left - right
    plot_h = axis_y - top
    most = max([sum((p.workflows or {}).values()) for p in points if p.kind == "report"] + [1])
    tick = max(1, -(-most // 4))  # whole workflows per grid step
    top_value = tick * 4
    slot = plot_w / max(len(points), 1)
    bar_w = max(2.0, min(36.0, slot * 0.7))
    out = [
        "<svg "
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        'style="width:100%;height:auto;font-family:system-ui,DejaVu Sans,sans-serif">',
        '<title id="chart-title">Workflows by compliance result over the audit history</title>',
        f'<desc id="chart-desc">{_e(_chart_description(points))}</desc>',
    ]
    for step in range(5):  # grid and y labels
        value = top_value * step / 4
        y = axis_y - plot_h * step / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{"#8c959f" if step == 0 else "#eaeef2"}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#59636e">{_e(_fmt_number(value))}</text>'
        )
    out.append(
        f'<text x="{left}" y="{lane_y + 4}" font-size="11" text-anchor="end" fill="#59636e" '
        f'dx="-6">drift</text>'
    )
    for index, point in enumerate(points):
        centre = left + slot * (index + 0.5)
        if point.kind == "report" and point.workflows is not None:
            y = axis_y
            for status in ("pass", "waived", "fail"):
                value = point.workflows.get(status, 0)
                if not value:
                    continue
                h = plot_h * value / top_value
                y -= h
                out.append(
                    f'<rect x="{centre - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                    f'height="{h:.1f}" fill="{COLOURS[status]}">'
                    f"<title>{_e(_when(point.time))}: {_e(value)} workflows "
                    f"{_e(LABELS[status].lower())}</title></rect>"
                )
        else:
            colour = COLOURS["pass"] if point.ok else COLOURS["fail"]
            shape = (
                f'<circle cx="{centre:.1f}" cy="{lane_y}" r="6" fill="{colour}"/>'
                if point.kind == "drift"
                else f'<rect x="{centre - 5:.1f}" y="{lane_y - 5}" width="10" height="10" '
                f'fill="{colour}"/>'
            )
            out.append(
                f"<g>{shape}<title>{_e(_when(point.time))}: {_e(_point_kind(point))}, "
                f"{_e(_point_outcome(point))}</title></g>"
            )
    for index in _label_slots(len(points)):
        centre = left + slot * (index + 0.5)
        out.append(
            f'<text x="{centre:.1f}" y="{height - 30}" font-size="11" text-anchor="middle" '
            f'fill="#59636e">{_e(points[index].time.astimezone(dt.UTC).strftime("%m-%d"))}'
            f'<tspan x="{centre:.1f}" dy="13">'
            f"{_e(points[index].time.astimezone(dt.UTC).strftime('%H:%M'))}</tspan></text>"
        )
    legend_x = left
    for status in ("pass", "waived", "fail"):
        out.append(
            f'<rect x="{legend_x}" y="{height - 11}" width="10" height="10" '
            f'fill="{COLOURS[status]}"/><text x="{legend_x + 14}" y="{height - 2}" '
            f'font-size="11" fill="#1f2328">{_e(LABELS[status])}</text>'
        )
        legend_x += 70
    out.append(
        f'<circle cx="{legend_x + 5}" cy="{height - 6}" r="5" fill="#59636e"/>'
        f'<text x="{legend_x + 14}" y="{height - 2}" font-size="11" fill="#1f2328">'
        "drift run</text>"
    )
    legend_x += 80
    out.append(
        f'<rect x="{legend_x}" y="{height - 11}" width="10" height="10" fill="#59636e"/>'
        f'<text x="{legend_x + 14}" y="{height - 2}" font-size="11" fill="#1f2328">'
        "policy check</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _overview(a: Assessment) -> str:
    rows = []
    for w in a.workflows:
        counts = w.counts
        rows.append(
            "<tr>"
            f'<th scope="row"><a href="#{_e(_anchor(w.workflow))}">{_e(w.workflow)}</a></th>'
            f"<td>{_badge(w.status)}</td>"
            f'<td class="num">{_e(counts["fail"])}</td>'
            f'<td class="num">{_e(counts["waived"])}</td>'
            f'<td class="num">{_e(counts["pass"])}</td>'
            f'<td class="num">{_e(w.warnings)}</td>'
            f"<td>{_e(', '.join(w.targets))}</td>"
            f"<td>{_last_apply_brief(w.deployments)}</td>"
            "</tr>"
        )
    return (
        '<section aria-labelledby="workflows"><h2 id="workflows">Workflows</h2>'
        "<table><thead><tr>"
        '<th scope="col">Workflow</th><th scope="col">Result</th>'
        '<th scope="col" class="num">Controls failing</th>'
        '<th scope="col" class="num">Controls waived</th>'
        '<th scope="col" class="num">Controls passing</th>'
        '<th scope="col" class="num">Warnings</th>'
        '<th scope="col">Targets</th><th scope="col">Last apply</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _workflows(a: Assessment) -> str:
    waivers = {w.name: w for w in a.waivers}
    sections = [_workflow(w, waivers) for w in a.workflows]
    return (
        '<section aria-labelledby="details"><h2 id="details">Controls per workflow</h2>'
        + "".join(sections)
        + "</section>"
    )


def _workflow(w: WorkflowCompliance, waivers: Mapping[str, WaiverEvidence]) -> str:
    anchor = _anchor(w.workflow)
    decided = [c for c in w.controls if c.status != "pass"]
    decided.sort(key=lambda c: (0 if c.status == "fail" else 1, c.control))
    passing = [c for c in w.controls if c.status == "pass"]
    parts = [
        f'<section class="workflow" aria-labelledby="{_e(anchor)}">',
        f'<h3 id="{_e(anchor)}">{_e(w.workflow)} {_badge(w.status)}</h3>',
        '<dl class="facts">',
        f"<dt>Spec</dt><dd><code>{_e(w.file)}</code></dd>",
        f"<dt>Targets</dt><dd>{_e(', '.join(w.targets))}</dd>",
        f"<dt>Last apply</dt><dd>{_last_apply(w.deployments)}</dd>",
        "</dl>",
    ]
    if decided:
        rows = []
        for control in decided:
            rows.extend(_control_rows(control, waivers))
        parts.append(
            f"<table><caption>Controls that fail or are waived for {_e(w.workflow)}</caption>"
            '<thead><tr><th scope="col">Control</th><th scope="col">Result</th>'
            '<th scope="col">Rule</th><th scope="col">Target</th><th scope="col">Finding</th>'
            '<th scope="col">Waiver</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    passing_rows = "".join(
        f'<tr><th scope="row">{_e(c.control)}</th><td>{_badge("pass")}</td>'
        f"<td>{_e(', '.join(c.rules))}</td>"
        f'<td class="num">{_e(len(c.warnings))}</td></tr>'
        for c in passing
    )
    parts.append(
        f"<details><summary>{_e(len(passing))} of {_e(len(w.controls))} controls pass"
        "</summary>"
        f"<table><caption>Controls that pass for {_e(w.workflow)}</caption>"
        '<thead><tr><th scope="col">Control</th><th scope="col">Result</th>'
        '<th scope="col">Rules</th><th scope="col" class="num">Warnings</th></tr></thead>'
        f"<tbody>{passing_rows}</tbody></table></details>"
    )
    warnings = sorted(
        {(f.rule, f.target, f.message, f.location) for c in w.controls for f in c.warnings}
    )
    if warnings:
        rows_w = "".join(
            f"<tr><td>{_e(rule)}</td><td>{_e(target)}</td><td>{_e(message)}</td>"
            f"<td><code>{_e(location)}</code></td></tr>"
            for rule, target, message, location in warnings
        )
        parts.append(
            f"<details><summary>{_e(len(warnings))} advisory findings (warnings)</summary>"
            f"<table><caption>Advisory findings for {_e(w.workflow)}</caption>"
            '<thead><tr><th scope="col">Rule</th><th scope="col">Target</th>'
            '<th scope="col">Finding</th><th scope="col">Location</th></tr></thead>'
            f"<tbody>{rows_w}</tbody></table></details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _control_rows(control: ControlResult, waivers: Mapping[str, WaiverEvidence]) -> list[str]:
    findings = control.blocking
    rows = []
    for index, finding in enumerate(findings):
        head = ""
        if index == 0:
            span = f' rowspan="{len(findings)}"' if len(findings) > 1 else ""
            head = (
                f'<th scope="row"{span}>{_e(control.control)}</th>'
                f"<td{span}>{_badge(control.status)}</td>"
            )
        rows.append(
            f'<tr>{head}<td class="nw">{_e(finding.rule)}</td>'
            f'<td class="nw">{_e(finding.target)}</td>'
            f"<td>{_finding_cell(finding)}</td><td>{_waiver_cell(finding, waivers)}</td></tr>"
        )
    return rows


def _finding_cell(finding: RuleFinding) -> str:
    return (
        f"{_badge(finding.outcome)} {_e(finding.message)}<br>"
        f'<code class="muted">{_e(finding.location)}</code>'
    )


def _waiver_cell(finding: RuleFinding, waivers: Mapping[str, WaiverEvidence]) -> str:
    if finding.waiver is None:
        return '<span class="muted">none</span>'
    waiver = waivers.get(finding.waiver)
    if waiver is None:
        return f"<code>{_e(finding.waiver)}</code>"
    ticket = f", ticket {_e(waiver.ticket)}" if waiver.ticket else ""
    return (
        f"<code>{_e(waiver.name)}</code><br>owner {_e(waiver.owner)}, expires "
        f"{_e(waiver.expires.isoformat())}{ticket}"
    )


def _controls(a: Assessment) -> str:
    rows = []
    for control in a.controls:
        failing, waived, passing = [], [], 0
        for w in a.workflows:
            status = w.control(control.name).status
            if status == "fail":
                failing.append(w.workflow)
            elif status == "waived":
                waived.append(w.workflow)
            else:
                passing += 1
        overall = "fail" if failing else "waived" if waived else "pass"
        rules = "<br>".join(
            f"<code>{_e(r.id)}</code> {_e(r.title)} "
            f'<span class="muted">({_e(r.severity)}, {_e(r.enforcement)})</span>'
            for r in control.rules
        )
        rows.append(
            f'<tr><th scope="row">{_e(control.name)}</th><td>{_badge(overall)}</td>'
            f"<td>{rules}</td><td>{_e(', '.join(failing)) or '&mdash;'}</td>"
            f"<td>{_e(', '.join(waived)) or '&mdash;'}</td>"
            f'<td class="num">{_e(passing)}</td></tr>'
        )
    return (
        '<section aria-labelledby="controls"><h2 id="controls">Controls</h2>'
        '<p class="muted">Each control and the policy rules mapped to it (the '
        "<code>controls</code> metadata of the rules), across all workflows.</p>"
        "<table><thead><tr>"
        '<th scope="col">Control</th><th scope="col">Result</th><th scope="col">Rules</th>'
        '<th scope="col">Failing workflows</th><th scope="col">Waived for</th>'
        '<th scope="col" class="num">Workflows passing</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _evidence(a: Assessment, audit: AuditEvidence) -> str:
    git = a.git
    if git.commit:
        commit = f"<code>{_e(git.commit)}</code>"
        if git.branch:
            commit += f" on branch <code>{_e(git.branch)}</code>"
        if git.subject:
            commit += f"<br>{_e(git.subject)}"
        if git.committed_at:
            commit += f' <span class="muted">({_e(_when(git.committed_at))})</span>'
        tree = (
            '<span class="warn-text">dirty: the working tree has uncommitted changes, so the '
            "checked documents may differ from the commit</span>"
            if git.dirty
            else "clean (the checked documents are the commit's)"
        )
    else:
        commit, tree = '<span class="warn-text">not a git repository</span>', "&mdash;"
    disabled = ", ".join(a.policy.disabled) or "none"
    drift = audit.last_drift
    if drift is None:
        drift_text = '<span class="muted">no drift run recorded in the audit log</span>'
    else:
        counts = ", ".join(
            f"{k} {'unknown' if v is None else v}" for k, v in sorted(drift.counts.items())
        )
        outcome = "drift found" if drift.drifted else "no drift"
        drift_text = (
            f"{_badge('fail' if drift.drifted else 'pass', outcome)} {_e(_when(drift.time))}"
            f"{' (partial: some targets unreachable)' if drift.partial else ''}"
            f'<br><span class="muted">{_e(counts)}</span>'
        )
    recorded = (
        "yes: <code>dev.cpl.report.generated</code> appended to the audit log"
        if audit.recorded
        else f'<span class="warn-text">no: {_e(audit.problem or "not recorded")}</span>'
    )
    facts = [
        ("Environment", f"{_e(a.environment)} (tier {_e(a.tier)})"),
        ("Git commit (HEAD)", commit),
        ("Working tree", tree),
        (
            "Policy library digest",
            f"<code>{_e(a.policy.digest)}</code><br>"
            f'<span class="muted">{_e(a.policy.files)} policy files and the environment\'s '
            "policy data, digested as <code>cpl plan</code> fingerprints them</span>",
        ),
        ("Rules disabled here", _e(disabled)),
        ("Deploy state serial", _e(a.state_serial)),
        ("Last drift run", drift_text),
        ("This report recorded", recorded),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        '<section aria-labelledby="evidence"><h2 id="evidence">Evidence</h2>'
        f'<dl class="facts">{items}</dl>'
        + _audit_logs(audit)
        + _waivers(a.waivers)
        + _diagnostics(a)
        + "</section>"
    )


def _audit_logs(audit: AuditEvidence) -> str:
    if not audit.logs:
        return '<p class="muted">The environment writes no audit log file.</p>'
    rows = []
    for log in audit.logs:
        if log.ok:
            status = _badge("pass", "intact")
            detail = "hash chain verified"
        else:
            status = _badge("fail", "broken")
            detail = f"line {log.first_bad_line}: {log.reason}"
        rows.append(
            f"<tr><td><code>{_e(log.file)}</code></td><td>{status}</td>"
            f'<td class="num">{_e(log.lines)}</td><td>{_e(detail)}</td></tr>'
        )
    return (
        "<table><caption>Audit log hash chain (<code>cpl audit verify</code>)</caption>"
        '<thead><tr><th scope="col">Log</th><th scope="col">Chain</th>'
        '<th scope="col" class="num">Events</th><th scope="col">Detail</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _waivers(waivers: Sequence[WaiverEvidence]) -> str:
    if not waivers:
        return '<p class="muted">No waiver applies to this environment.</p>'
    rows = []
    for w in waivers:
        status = {"applied": "waived", "expired": "fail", "unused": "warning"}[w.status]
        label = w.status + (", expiring soon" if w.expiring else "")
        rows.append(
            "<tr>"
            f'<th scope="row"><code>{_e(w.name)}</code><br>'
            f'<span class="muted mono">{_e(w.file)}</span></th>'
            f"<td>{_badge(status, label)}</td>"
            f'<td class="nw">{_e(w.rule)}</td>'
            f"<td>{_e(', '.join(w.workflows))}</td>"
            f"<td>{_e(w.owner)}</td>"
            f'<td class="nw">{_e(w.expires.isoformat())}</td>'
            f'<td class="nw">{_e(w.ticket or "")}</td>'
            f"<td>{_e(w.reason)}</td>"
            "</tr>"
        )
    return (
        "<table><caption>Waivers for this environment</caption><thead><tr>"
        '<th scope="col">Waiver</th><th scope="col">Status</th><th scope="col">Rule</th>'
        '<th scope="col">Workflows</th><th scope="col">Owner</th><th scope="col">Expires</th>'
        '<th scope="col">Ticket</th><th scope="col">Reason</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _diagnostics(a: Assessment) -> str:
    if not a.diagnostics:
        return ""
    rows = "".join(
        f"<tr><td>{_badge('fail' if d.severity == 'error' else 'warning', d.severity)}</td>"
        f"<td><code>{_e(d.file)}:{_e(d.line)}:{_e(d.column)}</code></td>"
        f"<td>{_e(d.code)}</td><td>{_e(d.message)}</td></tr>"
        for d in a.diagnostics
    )
    return (
        "<table><caption>Diagnostics of the check</caption><thead><tr>"
        '<th scope="col">Severity</th><th scope="col">Location</th><th scope="col">Code</th>'
        f'<th scope="col">Message</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _footer(report: ComplianceReport) -> str:
    return (
        '<footer><p class="muted">Produced by <code>cpl report --env '
        f"{_e(report.assessment.environment)}</code> at {_e(_when(report.generated_at))}. "
        "This page is self-contained: it loads nothing from the network.</p></footer>"
    )


# -- helpers -----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: str, label: str | None = None) -> str:
    return f'<span class="badge {_e(status)}">{_e((label or LABELS[status]).upper())}</span>'


def _anchor(workflow: str) -> str:
    return "wf-" + workflow.replace("/", "--")


def _when(moment: dt.datetime, *, zone: bool = True) -> str:
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return text + " UTC" if zone else text


def _short_digest(digest: str) -> str:
    return digest[:19] if digest.startswith("sha256:") else digest[:12]


def _last_apply_brief(deployments: Sequence[Deployment]) -> str:
    if not deployments:
        return '<span class="muted">never applied</span>'
    latest = max(deployments, key=lambda d: d.applied_at)
    return f"{_e(_when(latest.applied_at))}<br>version {_e(latest.version)}"


def _last_apply(deployments: Sequence[Deployment]) -> str:
    if not deployments:
        return '<span class="muted">never applied to this environment (no deploy state)</span>'
    lines = []
    for d in sorted(deployments, key=lambda d: d.target):
        commit = f", commit <code>{_e(d.commit[:12])}</code>" if d.commit else ""
        status = (
            "" if d.status == "applied" else f' <span class="warn-text">({_e(d.status)})</span>'
        )
        lines.append(
            f"{_e(d.target)} ({_e(d.engine)}): {_e(_when(d.applied_at))}, version "
            f"{_e(d.version)}, digest <code>{_e(_short_digest(d.digest))}</code>{commit}{status}"
        )
    return "<br>".join(lines)


def _point_kind(point: HistoryPoint) -> str:
    return {"report": "report", "drift": "drift run", "check": "policy check"}[point.kind]


def _point_outcome(point: HistoryPoint) -> str:
    if point.kind == "drift":
        return "no drift" if point.ok else "drift found"
    if point.kind == "check":
        return "passed" if point.ok else "denied"
    return "compliant" if point.ok else "not compliant"


def _point_result(point: HistoryPoint) -> str:
    status = "pass" if point.ok else "fail"
    return _badge(status, _point_outcome(point))


def _count(counts: Mapping[str, int] | None, status: str) -> str:
    return "" if counts is None else str(counts.get(status, 0))


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _label_slots(count: int, most: int = 8) -> list[int]:
    """Which slots get a date label: at most `most`, always the first and the last."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _chart_description(points: Iterable[HistoryPoint]) -> str:
    points = list(points)
    reports = [p for p in points if p.kind == "report" and p.workflows is not None]
    drifts = [p for p in points if p.kind == "drift"]
    text = f"{len(reports)} reports and {len(drifts)} drift runs."
    if reports:
        last = reports[-1].workflows or {}
        text += (
            f" Latest report: {last.get('fail', 0)} workflows failing, "
            f"{last.get('waived', 0)} waived, {last.get('pass', 0)} passing."
        )
    return text
