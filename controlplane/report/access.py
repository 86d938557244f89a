"""The access section of the HTML compliance report: who started, signalled, approved and
operated what, with the grant that allowed it (`controlplane.compliance.evidence`)."""

from __future__ import annotations

import datetime as dt
import html

from controlplane.compliance.evidence import ACCESS_LIMIT, AccessEntry, AccessEvidence


def access_section(access: AccessEvidence) -> str:
    heading = '<section aria-labelledby="access"><h2 id="access">Access</h2>'
    if not access.total:
        return (
            heading + '<p class="muted">No run, signal, operation or grant is recorded in the '
            "audit log.</p></section>"
        )
    shown = (
        f"the newest {len(access.entries)} of {access.total}"
        if access.total > len(access.entries)
        else f"all {access.total}"
    )
    summary = (
        f"<p>{_e(shown)} access events of the audit log (at most {ACCESS_LIMIT} are listed; "
        "<code>cpl audit export</code> has them all): "
        f"{access.refused} refused, {access.unverified} by a self-declared (unverified) "
        "principal.</p>"
    )
    rows = "".join(_row(entry) for entry in access.entries)
    table = (
        "<table><caption>Who started, signalled, approved and operated what</caption><thead><tr>"
        '<th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Actor</th>'
        '<th scope="col">Workflow</th><th scope="col">Run</th><th scope="col">Detail</th>'
        '<th scope="col">Outcome</th><th scope="col">Grant</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return heading + summary + table + "</section>"


def _row(entry: AccessEntry) -> str:
    actor = _e(entry.actor or "unknown")
    if entry.verified is False:
        actor += ' <span class="muted">(self-declared)</span>'
    elif entry.verified:
        actor += ' <span class="muted">(verified)</span>'
    if entry.roles:
        actor += f'<br><span class="muted">{_e(", ".join(entry.roles))}</span>'
    outcome = (
        '<span class="badge fail">refused</span>'
        if entry.outcome == "refused"
        else '<span class="badge pass">allowed</span>'
    )
    return (
        "<tr>"
        f'<td class="nw">{_e(_when(entry.time))}</td>'
        f"<td>{_e(entry.kind)}</td>"
        f"<td>{actor}</td>"
        f"<td>{_e(entry.workflow or '')}</td>"
        f'<td class="mono">{_e(entry.run_id or "")}</td>'
        f"<td>{_e(entry.detail or '')}</td>"
        f"<td>{outcome}</td>"
        f'<td class="mono">{_e(entry.grant or "")}</td>'
        "</tr>"
    )


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
