"""The bodies posted to webhooks: Slack-compatible (`text` plus Block Kit `blocks`) or the
plain JSON of a notice, both bounded.

Slack's limits (api.slack.com/reference/block-kit): a message's `text` at most 40,000
characters, at most 50 blocks, a header's text 150, a section's text 3,000, at most 10
fields of 2,000 each. cpl stays well inside them (`SLACK_FINDINGS` findings, a short
`text`), and `bounded_json` keeps any body under `MAX_BODY` bytes by dropping findings.
Text from documents is escaped for Slack's mrkdwn (`&`, `<`, `>`), so a finding cannot
mention `<!channel>` or forge a link.
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.notify.notice import Notice

SLACK_FINDINGS = 10
"""Findings shown in a Slack message (the rest are counted)."""
SLACK_MAX_TEXT = 40_000
SLACK_MAX_BLOCKS = 50
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_MAX = 10
_FALLBACK_MAX = 4000  # the notification text phones show: short, well under SLACK_MAX_TEXT
MAX_BODY = 64 * 1024
"""Bytes of a posted body at most."""


def render(notice: Notice, fmt: str) -> bytes:
    """The body for a webhook of format `fmt` (`slack` or `json`), as UTF-8 JSON bytes."""
    if fmt == "slack":
        return bounded_json(notice, slack_payload)
    return bounded_json(notice, lambda n: n.to_json())


def bounded_json(notice: Notice, build: Any) -> bytes:
    """`build(notice)` as JSON bytes, dropping findings from the end until it fits."""
    findings = notice.findings
    while True:
        candidate = _with_findings(notice, findings)
        body = json.dumps(build(candidate), ensure_ascii=False, separators=(",", ":"))
        encoded = body.encode("utf-8")
        if len(encoded) <= MAX_BODY or not findings:  # texts are bounded: this fits
            return encoded
        findings = findings[: len(findings) // 2]


def _with_findings(notice: Notice, findings: tuple[Any, ...]) -> Notice:
    from dataclasses import replace

    return notice if findings is notice.findings else replace(notice, findings=findings)


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: a header, the environment and counts, the first
    findings with `file:line`, how many more, the error, a link to the CI run."""
    shown = notice.findings[:SLACK_FINDINGS]
    more = notice.total - len(shown)
    fields = [
        _field("Environment", notice.environment),
        _field("Command", f"cpl {notice.command} (exit {notice.exit_code})"),
    ]
    for name, value in notice.counts.items():
        if len(fields) >= _FIELDS_MAX:
            break
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            continue
        fields.append(_field(name.replace("_", " "), str(value)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(notice.title, _HEADER_MAX)}},
        {"type": "section", "fields": fields},
    ]
    for finding in shown:
        line = f"`{_code(finding.where)}` {escape(finding.text)}"
        blocks.append(_section(line))
    if more > 0:
        blocks.append(_context(f"… and {more} more"))
    if notice.error:
        blocks.append(_section(f"*Error:* {escape(notice.error)}"))
    if notice.run_url:
        blocks.append(_context(f"<{notice.run_url}|View the run>"))
    return {"text": _fallback(notice, shown, more), "blocks": blocks[:SLACK_MAX_BLOCKS]}


def _fallback(notice: Notice, shown: tuple[Any, ...], more: int) -> str:
    lines = [f"{notice.title} (exit {notice.exit_code})"]
    counts = ", ".join(
        f"{k}: {v}" for k, v in notice.counts.items() if isinstance(v, int | float | str)
    )
    if counts:
        lines.append(counts)
    lines += [f"{f.where}: {f.text}" for f in shown]
    if more > 0:
        lines.append(f"… and {more} more")
    if notice.error:
        lines.append(f"error: {notice.error}")
    return _cut(escape("\n".join(lines)), _FALLBACK_MAX)


def escape(text: str) -> str:
    """Text for Slack's mrkdwn: the three characters Slack asks to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return escape(text.replace("`", "'"))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(f"*{escape(name)}*\n{escape(value)}", _FIELD_MAX)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}]}
