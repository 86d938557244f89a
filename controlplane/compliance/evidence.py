"""Evidence of who did what (docs/security.md, "Evidence"): the audit events of `cpl check`
(with the waivers it used), and the access section of `cpl report` read back from the audit
trail: runs started, signals accepted or refused, approvals, admin operations, dead-letter
replays and just-in-time grants, each with its actor and the grant that allowed it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from controlplane.audit import (
    ACCESS_DENIED,
    CHECK_DENIED,
    CHECK_PASSED,
    DLQ_PURGED,
    DLQ_REPLAYED,
    GRANT_APPROVED,
    GRANT_REQUESTED,
    GRANT_REVOKED,
    RUN_STARTED,
    SIGNAL_ACCEPTED,
    SIGNAL_REFUSED,
    WAIVER_USED,
    AuditError,
    Auditor,
)
from controlplane.policy.decision import Decision
from controlplane.spec.environment import Environment

# What each access event is, in the report's words.
ACCESS_KINDS: Final[Mapping[str, str]] = {
    RUN_STARTED: "run started",
    SIGNAL_ACCEPTED: "signal accepted",
    SIGNAL_REFUSED: "signal refused",
    ACCESS_DENIED: "access denied",
    GRANT_REQUESTED: "grant requested",
    GRANT_APPROVED: "grant approved",
    GRANT_REVOKED: "grant revoked",
    DLQ_REPLAYED: "dead letter replayed",
    DLQ_PURGED: "dead letter purged",
}
_DLQ_OPERATIONS: Final = ("replay", "purge")
ACCESS_LIMIT: Final = 500  # entries in a report: the newest; the audit export has them all


def record_check(
    repo: Path, environment: Environment, decision: Decision, base: str | None
) -> list[str]:
    """Record `dev.cpl.check.passed|denied` and one `dev.cpl.waiver.used` per waiver the
    decision applied; returns warnings (an audit trail that cannot take the events does not
    hide the decision from the person who asked for it)."""
    auditor = Auditor.for_environment(repo, environment)
    applied = decision.waivers.applied
    data: dict[str, Any] = {
        "ok": decision.ok,
        "base": base,
        "summary": decision.summary,
        "denied": sorted({r.workflow for r in decision.results if r.denied}),
        "waivers": [
            {"waiver": w.name, "rule": w.rule, "workflows": list(w.workflows)} for w in applied
        ],
        "rules": sorted({v.rule for v in decision.violations if v.denies}),
    }
    warnings: list[str] = []
    try:
        with auditor.batch():
            recorded = auditor.emit(CHECK_PASSED if decision.ok else CHECK_DENIED, None, data)
            warnings += recorded.warnings
            for waiver in applied:
                used = {
                    "waiver": waiver.name,
                    "rule": waiver.rule,
                    "workflows": list(waiver.workflows),
                    "expires": waiver.expires.isoformat(),
                }
                warnings += auditor.emit(WAIVER_USED, None, used).warnings
    except AuditError as exc:
        warnings.append(f"the check was not recorded in the audit trail: {exc.message}")
    return warnings


@dataclass(frozen=True)
class AccessEntry:
    """One access event as the report shows it."""

    time: dt.datetime
    kind: str  # ACCESS_KINDS' words
    actor: str | None
    verified: bool | None
    workflow: str | None
    run_id: str | None
    operation: str | None  # start | signal | admin | apply | sync | grant | replay | purge
    detail: str | None  # the signal and step, the role, the dead letter
    outcome: str  # allowed | refused
    grant: str | None
    roles: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "kind": self.kind,
            "actor": self.actor,
            "verified": self.verified,
            "workflow": self.workflow,
            "runId": self.run_id,
            "operation": self.operation,
            "detail": self.detail,
            "outcome": self.outcome,
            "grant": self.grant,
            "roles": list(self.roles),
        }


@dataclass(frozen=True)
class AccessEvidence:
    """Who started, approved and operated what, newest first (at most ACCESS_LIMIT)."""

    entries: tuple[AccessEntry, ...] = ()
    total: int = 0

    @property
    def refused(self) -> int:
        return sum(1 for e in self.entries if e.outcome == "refused")

    @property
    def unverified(self) -> int:
        return sum(1 for e in self.entries if e.verified is False)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "shown": len(self.entries),
            "refused": self.refused,
            "unverified": self.unverified,
            "entries": [e.to_json() for e in self.entries],
        }


def access_evidence(events: Iterable[Mapping[str, Any]]) -> AccessEvidence:
    """The access entries of an environment's audit events (an event read from two log
    files counts once)."""
    entries: list[AccessEntry] = []
    seen: set[str] = set()
    for event in events:
        kind = ACCESS_KINDS.get(str(event.get("type", "")))
        ident = str(event.get("id", ""))
        data = event.get("data")
        time = _time(event.get("time"))
        if kind is None or time is None or not isinstance(data, dict) or ident in seen:
            continue
        seen.add(ident)
        entries.append(_entry(str(event["type"]), kind, time, data, event.get("subject")))
    entries.sort(key=lambda e: e.time, reverse=True)
    return AccessEvidence(tuple(entries[:ACCESS_LIMIT]), len(entries))


def _entry(
    event_type: str, kind: str, time: dt.datetime, data: Mapping[str, Any], subject: Any
) -> AccessEntry:
    refused = event_type in (SIGNAL_REFUSED, ACCESS_DENIED)
    operation = _text(data.get("operation"))
    if event_type in (DLQ_REPLAYED, DLQ_PURGED):
        operation = "replay" if event_type == DLQ_REPLAYED else "purge"
    detail = " ".join(
        part
        for part in (
            _text(data.get("signal")),
            f"step {data['step']}" if _text(data.get("step")) else None,
            f"role {data['role']}" if _text(data.get("role")) else None,
            f"dead letter {data['id']}"
            if operation in ("replay", "purge") and data.get("id")
            else None,
            f"missing {', '.join(map(str, data['missing']))}"
            if isinstance(data.get("missing"), list) and data["missing"]
            else None,
        )
        if part
    )
    roles = data.get("roles")
    verified = data.get("verified")
    return AccessEntry(
        time=time,
        kind=kind,
        actor=_text(data.get("actor")),
        verified=verified if isinstance(verified, bool) else None,
        workflow=_text(data.get("workflow")) or _text(subject),
        run_id=_text(data.get("runId")),
        operation=operation,
        detail=detail or None,
        outcome="refused" if refused else "allowed",
        grant=_text(data.get("grant")),
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
    )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
