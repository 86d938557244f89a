"""Reports of `cpl plan` and `cpl apply`: the stable plan JSON (docs/plan.md), text, and Markdown
for a PR.

The plan JSON is also the plan file of `cpl plan --out` (read back by `cpl apply --plan`): it
adds `version`, `createdAt`, `commit` and `fingerprint` (the digests of the repo content, the
policy library and the live state the plan saw) to the stable plan shape (docs/plan.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from controlplane.deploy.apply import ApplyResult, Outcome
from controlplane.deploy.plan import Plan, PlannedChange
from controlplane.policy.decision import Decision
from controlplane.report.check import check_json, check_text

PLAN_FILE_VERSION = 1
MAX_CHARS = 65_000
_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "noop": "="}
_VALUE_CHARS = 80


def plan_json(
    plan: Plan, decision: Decision, *, commit: str | None = None, created: dt.datetime | None = None
) -> dict[str, Any]:
    """`{"environment", "digest", "base", "changes", "policy", "summary"}` plus the plan file's
    provenance (`version`, `createdAt`, `commit`, `fingerprint`)."""
    return {
        "version": PLAN_FILE_VERSION,
        "environment": plan.environment,
        "digest": plan.digest,
        "base": plan.base,
        "changes": [c.to_json() for c in plan.changes],
        "policy": check_json(decision),
        "summary": plan.summary,
        "planned": not decision.errors,  # false: documents are invalid, no plan was made
        "createdAt": (created or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z"),
        "commit": commit,
        "fingerprint": plan.fingerprint.to_json() if plan.fingerprint else None,
        "unchanged": _unchanged(plan),
    }


UNCHANGED_NOTE = (
    "not planned and not read from the live engines: unchanged since the base; "
    "the scheduled drift job covers them"
)


def _unchanged(plan: Plan) -> dict[str, Any] | None:
    """With `--base`: how many workflows were left out, and why that is safe."""
    if plan.base is None:
        return None
    return {"workflows": plan.unchanged, "note": UNCHANGED_NOTE}


def plan_text(plan: Plan, decision: Decision, *, verbose: bool = False) -> list[str]:
    """The plan for a terminal: one line per change, its diff and breaking changes, the policy
    verdict and the summary (noops only with `verbose`)."""
    base = f", changes since {plan.base}" if plan.base else ""
    lines = [f"plan for environment '{plan.environment}'{base} ({plan.digest[:19]})"]
    for change in plan.changes:
        if change.action == "noop" and not verbose:
            continue
        lines.extend(_change_lines(change))
    if plan.base is not None and plan.unchanged:
        lines.append(f"{plan.unchanged} workflow(s) {UNCHANGED_NOTE}")
    lines.append("")
    lines.extend(f"policy: {line}" for line in check_text(decision))
    lines.append(not_planned(decision) if decision.errors else summary_line(plan))
    return lines


def not_planned(decision: Decision) -> str:
    """What a plan of invalid documents says instead of its summary: an empty plan there
    means "not computed", never "no changes" (planning them would delete their resources)."""
    return (
        f"no plan: {len(decision.errors)} invalid document(s) or unplaceable workflow(s) "
        "(above); nothing was compared with the state or the engines"
    )


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if plan.empty:
        return f"no changes: {s['noop']} resource(s) up to date"
    return (
        f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
        f"{s['noop']} unchanged"
    )


def _change_lines(change: PlannedChange) -> Iterator[str]:
    version = ""
    if change.previous_version and change.version and change.previous_version != change.version:
        version = f" {change.previous_version} → {change.version}"
    elif change.version and change.action == "create":
        version = f" {change.version}"
    yield (
        f"  {_SYMBOLS[change.action]} {change.action:<6} {change.workflow} @ {change.target} "
        f"({change.engine} {change.resource}){version}"
    )
    if (change.action == "update" and not change.diff and change.reason) or change.forget:
        yield f"      {change.reason}"
    for item in change.diff:
        yield f"      {item['path']}: {_short(item['before'])} → {_short(item['after'])}"
    for breaking in change.breaking:
        yield f"      BREAKING {breaking.path}: {breaking.reason}"
    if change.breaking:
        yield f"      (breaking changes need a major version bump; this one is {change.bump})"


def _short(value: Any) -> str:
    text = "∅" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def plan_markdown(plan: Plan, decision: Decision, limit: int = MAX_CHARS) -> str:
    """The plan as a pull-request comment, kept under `limit` characters."""
    verdict = "❌ denied" if decision.denied else ("⚠️ invalid" if decision.errors else "✅ allowed")
    s = plan.summary
    head = [
        f"### cpl plan: `{plan.environment}`"
        + (f" (changes since `{plan.base}`)" if plan.base else ""),
        "",
        f"**Policy:** {verdict} · "
        + (
            "**Changes:** not planned"
            if decision.errors
            else f"**Changes:** {s['create']} create, {s['update']} update, "
            f"{s['delete']} delete, {s['noop']} unchanged"
        )
        + f" · digest `{plan.digest[:19]}`",
        "",
    ]
    rows = [
        "| | workflow | target | engine | resource | version | breaking |",
        "|---|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    for change in plan.pending:
        version = " → ".join(v for v in (change.previous_version, change.version) if v) or ""
        rows.append(
            f"| {_SYMBOLS[change.action]} {change.action} | `{change.workflow}` | {change.target} "
            f"| {change.engine} | `{change.resource}` | {version} | "
            f"{len(change.breaking) or ''} |"
        )
        if change.diff or change.breaking:
            body = [f"<details><summary>{change.workflow} @ {change.target}</summary>", ""]
            body += [f"- **breaking** `{b.path}`: {b.reason}" for b in change.breaking]
            if change.diff:
                body.append("")
                body.append("```diff")
                for item in change.diff:
                    body.append(f"- {item['path']}: {_short(item['before'])}")
                    body.append(f"+ {item['path']}: {_short(item['after'])}")
                body.append("```")
            body += ["</details>", ""]
            details.append("\n".join(body))
    policy = ["", "#### Policy", "", "```", *check_text(decision), "```"]
    if decision.errors:
        body = [f"**No plan:** {not_planned(decision).removeprefix('no plan: ')}."]
    else:
        body = rows if plan.pending else ["No changes."]
    text = "\n".join(head + body + [""])
    tail = "\n".join(policy) + "\n"
    budget = limit - len(text) - len(tail) - 200
    shown: list[str] = []
    for block in details:
        if budget - len(block) < 0:
            shown.append(
                f"_{len(details) - len(shown)} more diff(s) not shown: the comment would exceed "
                f"{limit} characters; see the plan file or `cpl plan --format json`._\n"
            )
            break
        budget -= len(block)
        shown.append(block)
    return text + "\n".join(shown) + tail


def outcome_line(outcome: Outcome) -> str:
    change = outcome.change
    where = f"{change.action} {change.workflow} @ {change.target}"
    if outcome.ok:
        warning = f": warning: {outcome.message}" if outcome.message else ""
        return f"{outcome.status:<8} {where} ({outcome.seconds:.1f}s){warning}"
    return f"{outcome.status.upper():<8} {where}: {outcome.message}"


def apply_text(result: ApplyResult) -> list[str]:
    s = result.summary
    warned = [o for o in result.outcomes if o.ok and o.message]
    lines = [outcome_line(o) for o in [*warned, *result.failed]]
    verdict = "applied" if result.ok else "PARTIAL: some changes failed"
    lines.append(
        f"{verdict}: {s['applied']} applied, {s['deleted']} deleted, {s['failed']} failed, "
        f"{s['skipped']} not attempted in {result.seconds:.1f}s"
    )
    if not result.ok:
        lines.append(
            "the state records exactly what was applied; fix the cause and run `cpl apply` "
            "again to converge"
        )
    return lines
