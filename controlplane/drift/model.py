"""What a drift run found: one item per resource, the targets it could not read, a summary.

Statuses (docs/drift.md): `in-sync` (live equals desired after normalization and ignore rules),
`modified` (field-level differences remain), `missing` (desired, but nothing live),
`unmanaged` (live in a target with cpl's marks, or in a Temporal namespace cpl deploys to,
but in no spec). Coverage is managed / all found: the live resources a spec describes
(`in-sync` + `modified`) over every live resource found (those plus `unmanaged`), counted only
on the targets whose live resources could be listed: a target that could not be read would
hide its unmanaged resources. It is unknown (`None`) when reads failed and nothing live was
found on the targets that were read, and 1.0 when every target was read and nothing is live.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from controlplane.engines.live import Change
from controlplane.errors import ExitCode
from controlplane.policy.decision import Violation
from controlplane.redaction import mask_diff, redact_text
from controlplane.report.check import violation_json
from controlplane.spec.environment import EngineName

Status = Literal["in-sync", "modified", "missing", "unmanaged"]
STATUSES: tuple[Status, ...] = ("in-sync", "modified", "missing", "unmanaged")
DRIFT_STATUSES: frozenset[str] = frozenset({"modified", "missing", "unmanaged"})


@dataclass(frozen=True)
class DriftItem:
    """One resource of one target and how its live state compares with the desired one.

    `compliant` is the policy verdict on the *live* state (None until evaluated): no
    mandatory, unwaived violation when the library runs on the live document. `violations`
    are the violations that deny there. `live` is the live document (not reported). The
    values of `diff` and `ignored` have their secrets masked (`controlplane.redaction`).
    """

    workflow: str | None
    target: str
    engine: EngineName
    resource: str
    status: Status
    diff: tuple[Change, ...] = ()
    ignored: tuple[Change, ...] = ()
    id: str | None = None
    file: str | None = None
    compliant: bool | None = None
    violations: tuple[Violation, ...] = ()
    note: str = ""
    live: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every report format and the audit events show these diffs: secret values masked
        sides = ("expected", "actual")
        object.__setattr__(self, "diff", mask_diff(self.diff, sides))
        object.__setattr__(self, "ignored", mask_diff(self.ignored, sides))

    @property
    def drifted(self) -> bool:
        return self.status in DRIFT_STATUSES

    @property
    def tenant(self) -> str | None:
        return self.workflow.split("/", 1)[0] if self.workflow else None

    def to_json(self) -> dict[str, Any]:
        """The stable drift item (docs/drift.md), plus `id`, `file`, `ignored`, `violations`,
        `note`."""
        return {
            "workflow": self.workflow,
            "target": self.target,
            "engine": self.engine,
            "resource": self.resource,
            "status": self.status,
            "diff": [dict(change) for change in self.diff],
            "compliant": self.compliant,
            "violations": [violation_json(v) for v in self.violations],
            "ignored": [dict(change) for change in self.ignored],
            "id": self.id,
            "file": self.file,
            "note": self.note,
        }


@dataclass(frozen=True)
class ReadFailure:
    """A read that failed after retries: a whole target (`resource` None) or one resource."""

    target: str
    engine: EngineName
    message: str
    resource: str | None = None
    transient: bool = False

    def __post_init__(self) -> None:
        # engine errors may name an endpoint with credentials, or echo a value
        object.__setattr__(self, "message", redact_text(self.message))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "resource": self.resource,
            "transient": self.transient,
            "message": self.message,
        }


@dataclass(frozen=True)
class TargetStats:
    """Per-target counters of one run (for metrics)."""

    target: str
    engine: EngineName
    reads: int = 0
    failures: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "reads": self.reads,
            "failures": self.failures,
            "skipped": self.skipped,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift run over an environment (or some of its tenants)."""

    environment: str
    items: tuple[DriftItem, ...]
    failures: tuple[ReadFailure, ...] = ()
    targets: tuple[TargetStats, ...] = ()
    tenants: tuple[str, ...] = ()
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    duration: float = 0.0
    concurrency: int = 1

    @property
    def drifted(self) -> bool:
        return any(item.drifted for item in self.items)

    @property
    def unreachable(self) -> list[str]:
        """Targets that could not be read (every resource of them is unknown)."""
        return sorted({f.target for f in self.failures if f.resource is None})

    @property
    def partial(self) -> bool:
        """Some target or resource could not be read: the report is incomplete."""
        return bool(self.failures)

    @property
    def noncompliant(self) -> list[DriftItem]:
        return [item for item in self.items if item.compliant is False]

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def targets_read(self) -> list[str]:
        """Targets whose live resources could be listed (what coverage is computed on)."""
        unread = set(self.unreachable)
        return sorted({stats.target for stats in self.targets} - unread)

    @property
    def failed_resource_reads(self) -> int:
        """Reads of single resources that failed on targets that could be listed (a target
        that went down also fails the reads in flight: those are counted as the target)."""
        unread = set(self.unreachable)
        return sum(1 for f in self.failures if f.resource is not None and f.target not in unread)

    @property
    def coverage(self) -> float | None:
        """Managed over all live resources found, on the targets that could be read (see the
        module doc); None when it is unknown because reads failed and nothing was found."""
        unread = set(self.unreachable)
        read = [item for item in self.items if item.target not in unread]
        managed = sum(1 for item in read if item.status in ("in-sync", "modified"))
        found = managed + sum(1 for item in read if item.status == "unmanaged")
        if found:
            return round(managed / found, 4)
        return None if self.failures else 1.0

    @property
    def summary(self) -> dict[str, Any]:
        """The drift summary (docs/drift.md; `coverage` may be null: unknown), with counts of
        non-compliant live states, unreachable targets, failed reads and targets read."""
        in_sync, modified = self.count("in-sync"), self.count("modified")
        return {
            "managed": in_sync + modified,
            "in_sync": in_sync,
            "modified": modified,
            "missing": self.count("missing"),
            "unmanaged": self.count("unmanaged"),
            "coverage": self.coverage,
            "noncompliant": len(self.noncompliant),
            "unreachable": len(self.unreachable),
            "failed_reads": len(self.failures),
            "targets_read": len(self.targets_read),
        }

    @property
    def exit_code(self) -> ExitCode:
        """1 when the report is partial (something could not be read), else 5 on drift."""
        if self.partial:
            return ExitCode.ERROR
        return ExitCode.DRIFT if self.drifted else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The stable drift shape (docs/drift.md), plus `partial`, `unreachable`, `failures` and
        timing."""
        return {
            "environment": self.environment,
            "drifted": self.drifted,
            "items": [item.to_json() for item in self.items],
            "summary": self.summary,
            "partial": self.partial,
            "unreachable": self.unreachable,
            "failures": [failure.to_json() for failure in self.failures],
            "tenants": list(self.tenants),
            "targets": [stats.to_json() for stats in self.targets],
            "started": self.started.isoformat(),
            "duration": round(self.duration, 3),
            "concurrency": self.concurrency,
        }
