"""Apply: make a plan live through a backend, recording state after every resource.

`apply(plan, decision, backend, store=...)` refuses a denied plan (and one whose documents
are invalid), then makes the changes: creates and updates first, deletes last; one change at
a time per target, in the plan's order, and the targets in parallel (bounded). Around every
change it

1. records the resource as `pending` in the state (keeping what was applied before, so the
   next plan still compares against the last version known to be live),
2. calls the backend,
3. records it as `applied` (or forgets it, for a delete), or as `failed`,

and emits `dev.cpl.apply.succeeded` / `dev.cpl.apply.failed` (docs/security.md, "Audit integrity").
Killing the process at
any point leaves either the previous record or a `pending` one: the next plan reads the live
engines, so a resource created but not recorded shows up as an update (never a second create)
and a deleted but still recorded one as a delete that finds nothing to delete.

A failing resource does not stop the others. After a *transient* failure (the engine is
unreachable), the remaining changes of that target are not attempted: they fail with the
reason, the state keeps what it had for them, and the next apply converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from controlplane.deploy.backend import Backend
from controlplane.deploy.plan import Plan, PlannedChange, save_applied_spec
from controlplane.deploy.state import ResourceState, now
from controlplane.deploy.stores import StateStore
from controlplane.engines import ResourceError
from controlplane.engines.translator import is_shared
from controlplane.engines.warnings import collecting
from controlplane.errors import CplError, ExitCode
from controlplane.policy.decision import Decision
from controlplane.spec.model import Workflow

PLAN_CREATED = "dev.cpl.plan.created"
APPLY_STARTED = "dev.cpl.apply.started"
APPLY_SUCCEEDED = "dev.cpl.apply.succeeded"
APPLY_FAILED = "dev.cpl.apply.failed"
APPLY_COMPLETED = "dev.cpl.apply.completed"
DEFAULT_CONCURRENCY = 4

Emit = Callable[[str, str | None, dict[str, Any]], None]
"""An audit event sink: (event type, subject `tenant/workflow` or None, data)."""

Status = Literal["applied", "deleted", "failed", "skipped"]


class ApplyRefused(CplError):
    """The plan may not be applied (denied: exit 3; invalid or stale: exit 1)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one planned change; `message` is why it failed or, when it
    succeeded, the warnings of the change (e.g. a development Prometheus not running)."""

    change: PlannedChange
    status: Status
    message: str = ""
    transient: bool = False
    resource_id: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "deleted")

    def to_json(self) -> dict[str, Any]:
        change = self.change
        return {
            "action": change.action,
            "workflow": change.workflow,
            "target": change.target,
            "engine": change.engine,
            "resource": change.resource,
            "resourceId": self.resource_id or change.resource_id,
            "status": self.status,
            "message": self.message,
            "transient": self.transient,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ApplyResult:
    """Every change of the plan and what became of it."""

    environment: str
    plan_digest: str
    outcomes: tuple[Outcome, ...]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.ERROR

    @property
    def summary(self) -> dict[str, int]:
        return {
            status: sum(1 for o in self.outcomes if o.status == status)
            for status in ("applied", "deleted", "failed", "skipped")
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "planDigest": self.plan_digest,
            "ok": self.ok,
            "results": [o.to_json() for o in self.outcomes],
            "summary": self.summary,
            "seconds": round(self.seconds, 3),
        }


def refuse_unless_allowed(decision: Decision) -> None:
    """ApplyRefused unless the decision allows deploying (no errors, not denied)."""
    if decision.errors:
        raise ApplyRefused(
            f"refusing to apply: {len(decision.errors)} invalid document(s) or unplaceable "
            "workflow(s) (run `cpl check` for the details)",
            diagnostics=list(decision.errors),
        )
    if decision.denied:
        denials = sorted({v.rule for v in decision.violations if v.denies})
        expired = [w.name for w in decision.waivers.expired]
        what = ", ".join(denials + [f"expired waiver {name}" for name in expired])
        raise ApplyRefused(
            f"refusing to apply a denied plan ({what}); fix the violations or waive them",
            exit_code=ExitCode.DENIED,
        )


def apply(
    plan: Plan,
    decision: Decision,
    backend: Backend,
    *,
    store: StateStore,
    emit: Emit | None = None,
    progress: Callable[[Outcome], None] | None = None,
    workflows: Mapping[str, Workflow] | None = None,
    git_commit: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ApplyResult:
    """Make `plan` live through `backend`; refuses (ApplyRefused) a denied plan.

    `store` is the environment's state, opened under its lock; `workflows` (by key) are the
    specs being applied, kept next to the state for the next plan's change document.
    """
    refuse_unless_allowed(decision)
    started = time.monotonic()
    run = _Run(plan, backend, store, emit or _no_events, progress, workflows or {}, git_commit)
    run.emit(
        APPLY_STARTED,
        None,
        {
            "environment": plan.environment,
            "digest": plan.digest,
            "backend": backend.name,
            "commit": git_commit,
            "counts": plan.summary,
        },
    )
    changes = plan.pending
    phases = [
        [c for c in changes if c.action in ("create", "update")],
        [c for c in changes if c.action == "delete"],
    ]
    outcomes: dict[int, Outcome] = {}
    for phase in phases:
        by_target: dict[str, list[tuple[int, PlannedChange]]] = {}
        for change in phase:
            by_target.setdefault(change.target, []).append((changes.index(change), change))
        if not by_target:
            continue
        workers = max(1, min(concurrency, len(by_target)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cpl-apply") as pool:
            for done in pool.map(run.target, by_target.values()):
                outcomes.update(done)
    result = ApplyResult(
        plan.environment,
        plan.digest,
        tuple(outcomes[i] for i in sorted(outcomes)),
        time.monotonic() - started,
    )
    run.emit(
        APPLY_COMPLETED,
        None,
        {
            "environment": plan.environment,
            "digest": plan.digest,
            "outcome": "succeeded" if result.ok else "failed",
            "counts": result.summary,
            "serial": store.state.serial,
        },
    )
    return result


def _subject(change: PlannedChange) -> str | None:
    """The event subject: the workflow; none for a shared resource (its key is in the data)."""
    return None if is_shared(change.workflow) else change.workflow


def _no_events(event_type: str, subject: str | None, data: dict[str, Any]) -> None:
    return None


class _Run:
    """One apply in progress: the state writes and events of concurrent targets, serialized."""

    def __init__(
        self,
        plan: Plan,
        backend: Backend,
        store: StateStore,
        emit: Emit,
        progress: Callable[[Outcome], None] | None,
        workflows: Mapping[str, Workflow],
        git_commit: str | None,
    ) -> None:
        self.plan = plan
        self.backend = backend
        self.store = store
        self._emit = emit
        self.progress = progress
        self.workflows = workflows
        self.git_commit = git_commit
        self._lock = threading.Lock()

    def emit(self, event_type: str, subject: str | None, data: dict[str, Any]) -> None:
        with self._lock:
            self._emit(event_type, subject, data)

    def target(self, changes: Iterable[tuple[int, PlannedChange]]) -> dict[int, Outcome]:
        """The changes of one target, in order; after an unreachable engine, skip the rest."""
        results: dict[int, Outcome] = {}
        unreachable: Outcome | None = None
        for index, change in changes:
            if unreachable is not None:
                outcome = Outcome(
                    change,
                    "skipped",
                    f"not attempted: target '{change.target}' failed before "
                    f"({unreachable.message})",
                    transient=True,
                )
                self._report(outcome)
            else:
                outcome = self.one(change)
                if outcome.status == "failed" and outcome.transient:
                    unreachable = outcome
            results[index] = outcome
        return results

    def one(self, change: PlannedChange) -> Outcome:
        started = time.monotonic()
        if change.forget:  # the live resource is managed through another target now
            with self._lock:
                self.store.forget(change.key)
            seconds = time.monotonic() - started
            outcome = Outcome(change, "deleted", resource_id=change.resource_id, seconds=seconds)
            self.emit(APPLY_SUCCEEDED, _subject(change), self._event(change, outcome))
            self._report(outcome)
            return outcome
        pending = self._pending(change)
        with self._lock:
            self.store.record(pending)
        try:
            with collecting() as warnings:
                applied = self.backend.apply_change(change)
        except ResourceError as error:
            return self._failed(change, pending, error.message, error.transient, started)
        except Exception as error:  # a backend bug must not lose what happened to the others
            message = f"internal error in the {self.backend.name} backend: {error!r}"
            return self._failed(change, pending, message, False, started)
        with self._lock:
            if applied is None:
                self.store.forget(change.key)
                status: Status = "deleted"
            else:
                workflow = self.workflows.get(change.workflow)
                if workflow is not None:
                    save_applied_spec(self.store.backend, workflow)
                if applied.git_commit is None and self.git_commit is not None:
                    applied = applied.model_copy(update={"git_commit": self.git_commit})
                self.store.record(applied)
                status = "applied"
        outcome = Outcome(
            change,
            status,
            "; ".join(warnings),  # it succeeded: a message is a warning
            resource_id=applied.resource_id if applied else change.resource_id,
            seconds=time.monotonic() - started,
        )
        self.emit(APPLY_SUCCEEDED, _subject(change), self._event(change, outcome))
        self._report(outcome)
        return outcome

    def _pending(self, change: PlannedChange) -> ResourceState:
        recorded = self.store.state.get(change.key)
        if recorded is not None:
            return recorded.model_copy(update={"status": "pending"})
        return ResourceState(
            workflow=change.workflow,
            target=change.target,
            engine=change.engine,
            resource_id=change.resource_id or change.resource,
            artifact_digest=change.digest or "",
            spec_version=change.version or "0.0.0",
            git_commit=self.git_commit,
            applied_at=now(),
            status="pending",
        )

    def _failed(
        self,
        change: PlannedChange,
        pending: ResourceState,
        message: str,
        transient: bool,
        started: float,
    ) -> Outcome:
        with self._lock:
            self.store.record(pending.model_copy(update={"status": "failed"}))
        outcome = Outcome(change, "failed", message, transient, seconds=time.monotonic() - started)
        self.emit(APPLY_FAILED, _subject(change), self._event(change, outcome))
        self._report(outcome)
        return outcome

    def _event(self, change: PlannedChange, outcome: Outcome) -> dict[str, Any]:
        data: dict[str, Any] = {
            "environment": self.plan.environment,
            "workflow": change.workflow,
            "target": change.target,
            "engine": change.engine,
            "resource": change.resource,
            "id": outcome.resource_id or change.resource_id,
            "action": change.action,
            "version": change.version,
            "previousVersion": change.previous_version,
            "digest": change.digest,
            "planDigest": self.plan.digest,
            "backend": self.backend.name,
            # the state's serial once this change is recorded: `cpl audit verify` compares
            # the log's last serial with the state's to notice a log that lost its tail
            "serial": self.store.state.serial,
        }
        if outcome.status == "failed":
            data["error"] = outcome.message
            data["transient"] = outcome.transient
        return data

    def _report(self, outcome: Outcome) -> None:
        if self.progress is not None:
            with self._lock:
                self.progress(outcome)
