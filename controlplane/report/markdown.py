"""Markdown of a policy decision for a pull-request comment (under 65,000 characters).

GitHub rejects comments over 65,536 characters: the report keeps the verdict, the summary
table and the waivers, and cuts the violation details with a note when they do not fit.
"""

from __future__ import annotations

from controlplane.policy.decision import Decision, Violation
from controlplane.report.check import grouped, outcome

MAX_CHARS = 65_000
_ICONS = {"denied": "❌", "warning": "⚠️", "waived": "🏷️"}


def check_markdown(decision: Decision, link_base: str | None = None, limit: int = MAX_CHARS) -> str:
    """The PR comment; `link_base` (e.g. `https://github.com/o/r/blob/SHA/`) makes
    `file:line` references links."""
    head = _head(decision)
    tail = _waivers(decision) + _diagnostics(decision)
    budget = limit - len(head) - len(tail) - 400  # room for the truncation note
    body: list[str] = []
    used = 0
    shown = 0
    total = 0
    truncated = False
    for workflow, file, items in grouped(decision):
        if not items:
            continue
        total += len(items)
        if truncated:
            continue
        denied = sum(1 for _, v in items if v.denies)
        summary = f"{workflow}: {denied} denied, {len(items) - denied} other"
        section = [
            f"<details{' open' if denied else ''}><summary><b>{_escape(summary)}</b> "
            f"(<code>{_escape(file)}</code>)</summary>\n",
            "| | rule | severity | where | message | targets |",
            "|---|---|---|---|---|---|",
        ]
        for targets, violation in items:
            row = _row(violation, targets, link_base)
            if used + sum(len(s) + 1 for s in section) + len(row) + 20 > budget:
                truncated = True
                break
            section.append(row)
            shown += 1
        section.append("\n</details>\n")
        if len(section) > 4:  # at least one row made it
            text = "\n".join(section)
            used += len(text) + 1
            body.append(text)
    if truncated:
        body.append(
            f"> **Truncated:** showing {shown} of {total} findings to stay under GitHub's "
            f"comment limit. Run `cpl check --env {decision.environment}` or see the SARIF "
            "report for all of them.\n"
        )
    report = head + "\n".join(body) + tail
    return report[:limit]


def _head(decision: Decision) -> str:
    s = decision.summary
    if decision.errors:
        verdict = f"💥 **cpl check could not complete** on `{decision.environment}`"
    elif decision.denied:
        verdict = f"❌ **cpl check denied** on `{decision.environment}`"
    else:
        verdict = f"✅ **cpl check passed** on `{decision.environment}`"
    return "\n".join(
        [
            "## cpl policy check",
            "",
            verdict,
            "",
            "| workflows | targets | denied | warnings | waived | expired waivers |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['workflows']} | {len(decision.results)} | {s['denied']} | {s['warnings']} "
            f"| {s['waived']} | {len(decision.waivers.expired)} |",
            "",
            "",
        ]
    )


def _row(violation: Violation, targets: str, link_base: str | None) -> str:
    where = f"{violation.file}:{violation.line}"
    if link_base:
        where = f"[{_escape(where)}]({link_base}{violation.file}#L{violation.line})"
    else:
        where = f"`{where}`"
    kind = outcome(violation)
    note = f" (waiver `{violation.waiver}`)" if violation.waived else ""
    return (
        f"| {_ICONS[kind]} | `{violation.rule}` | {violation.severity} | {where} | "
        f"{_escape(violation.message)}{note} | {_escape(targets)} |"
    )


def _waivers(decision: Decision) -> str:
    waivers = decision.waivers
    rows = [
        (label, w)
        for label, group in (
            ("❌ expired", waivers.expired),
            ("⚠️ expiring soon", waivers.expiring),
            ("unused", waivers.unused),
            ("applied", waivers.applied),
        )
        for w in group
    ]
    if not rows:
        return ""
    lines = [
        "",
        "### Waivers",
        "",
        "| status | waiver | rule | workflows | expires | owner |",
        "|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {label} | `{w.name}` | `{w.rule}` | {_escape(', '.join(w.workflows))} | "
        f"{w.expires.isoformat()} | {_escape(w.owner)} |"
        for label, w in rows
    )
    return "\n".join(lines) + "\n"


def _diagnostics(decision: Decision) -> str:
    if not decision.diagnostics:
        return ""
    lines = ["", "<details><summary>Problems</summary>", "", "```"]
    lines.extend(d.format() for d in decision.diagnostics[:200])
    lines.extend(["```", "", "</details>", ""])
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
