"""The compliance model of `cpl report`: per workflow and per control, pass / fail / waived.

A control is a `controls` entry of a rule's `# METADATA` (controlplane/policies/README.md); a rule
may serve several
controls and a control may be served by several rules. For one workflow (on every target it is
placed on), a control is

* `fail` when a mandatory violation of a rule mapped to it is not waived,
* `waived` when it has mandatory violations and every one of them is waived,
* `pass` otherwise; advisory findings (and `warn` results) are kept as warnings.

Rules the environment disables are left out (and listed in the evidence); a rule without
`controls` stands for itself (its control is named after the rule id).

The evidence: the git commit (HEAD and whether the tree is dirty), the policy library digest
(computed as `cpl plan` fingerprints it), the waivers of the environment with owner, expiry and
ticket, the last apply per workflow (from the deploy state), and, from the audit log, its
hash-chain status, the last drift run and the compliance history. `cpl check` records no audit
event, so the history is built from `dev.cpl.report.generated` events (one per report, carrying
the pass / fail / waived counts: see `report_event_data`) and `dev.cpl.drift.completed` ones.

This module builds data only; `controlplane.report.html` renders it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from controlplane.audit import DRIFT_COMPLETED, log_paths, verify
from controlplane.compliance.evidence import AccessEvidence, access_evidence
from controlplane.errors import Diagnostic
from controlplane.policy.decision import Decision, Violation
from controlplane.policy.library import builtin_policy_dir, policy_config, policy_paths
from controlplane.spec.environment import Environment
from controlplane.spec.load import Loaded
from controlplane.spec.waiver import Waiver

if TYPE_CHECKING:
    from controlplane.compliance.slo import SloAttainment
    from controlplane.pipeline import DesiredState

Status = Literal["pass", "fail", "waived"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "waived")
Outcome = Literal["fail", "waived", "warning"]

REPORT_GENERATED = "dev.cpl.report.generated"
CHECK_PREFIX = "dev.cpl.check."
HISTORY_LIMIT = 60  # points kept for the chart and table (the most recent ones)


# -- the graded matrix -----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRef:
    """A rule as the control catalogue lists it, with its enforcement in the environment."""

    id: str
    title: str
    severity: str
    enforcement: str  # mandatory | advisory

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "enforcement": self.enforcement,
        }


@dataclass(frozen=True)
class Control:
    """One control and the enabled rules mapped to it."""

    name: str
    rules: tuple[RuleRef, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.to_json() for r in self.rules]}


@dataclass(frozen=True)
class RuleFinding:
    """One violation of a rule behind a control, for one target of the workflow."""

    rule: str
    target: str
    outcome: Outcome
    severity: str
    message: str
    file: str
    line: int
    column: int
    path: str
    waiver: str | None = None

    @classmethod
    def of(cls, violation: Violation, target: str) -> RuleFinding:
        outcome: Outcome = (
            "fail" if violation.denies else "waived" if violation.waived else "warning"
        )
        return cls(
            violation.rule,
            target,
            outcome,
            violation.severity,
            violation.message,
            violation.file,
            violation.line,
            violation.column,
            violation.path,
            violation.waiver,
        )

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "target": self.target,
            "outcome": self.outcome,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "waiver": self.waiver,
        }


@dataclass(frozen=True)
class ControlResult:
    """A control for one workflow: its status and the findings behind it."""

    control: str
    status: Status
    rules: tuple[str, ...]
    findings: tuple[RuleFinding, ...] = ()

    @property
    def blocking(self) -> tuple[RuleFinding, ...]:
        """The findings that decide the status (failing or waived)."""
        return tuple(f for f in self.findings if f.outcome != "warning")

    @property
    def warnings(self) -> tuple[RuleFinding, ...]:
        return tuple(f for f in self.findings if f.outcome == "warning")

    def to_json(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "status": self.status,
            "rules": list(self.rules),
            "findings": [f.to_json() for f in self.findings],
            "warnings": len(self.warnings),
        }


@dataclass(frozen=True)
class Deployment:
    """The last apply of a workflow on one target, as the deploy state records it."""

    target: str
    engine: str
    applied_at: dt.datetime
    version: str
    digest: str
    commit: str | None
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "appliedAt": self.applied_at.isoformat(),
            "version": self.version,
            "digest": self.digest,
            "commit": self.commit,
            "status": self.status,
        }


@dataclass(frozen=True)
class WorkflowCompliance:
    workflow: str
    file: str
    targets: tuple[str, ...]
    controls: tuple[ControlResult, ...]
    deployments: tuple[Deployment, ...] = ()

    @property
    def status(self) -> Status:
        statuses = {c.status for c in self.controls}
        return "fail" if "fail" in statuses else "waived" if "waived" in statuses else "pass"

    @property
    def counts(self) -> dict[str, int]:
        return _counts(c.status for c in self.controls)

    @property
    def warnings(self) -> int:
        return sum(len(c.warnings) for c in self.controls)

    def control(self, name: str) -> ControlResult:
        return next(c for c in self.controls if c.control == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "file": self.file,
            "targets": list(self.targets),
            "status": self.status,
            "counts": self.counts,
            "warnings": self.warnings,
            "controls": [c.to_json() for c in self.controls],
            "lastApply": [d.to_json() for d in self.deployments],
        }


def control_catalogue(decision: Decision) -> tuple[Control, ...]:
    """Every control of the enabled rules, sorted by name; rules sorted by id."""
    by_control: dict[str, list[RuleRef]] = {}
    for rule_id, info in sorted(decision.rules.items()):
        enforcement = decision.enforcement.get(rule_id, "mandatory")
        if enforcement == "disabled":
            continue
        ref = RuleRef(rule_id, info.title, info.severity, enforcement)
        for control in info.controls or (rule_id,):
            by_control.setdefault(control, []).append(ref)
    return tuple(Control(name, tuple(refs)) for name, refs in sorted(by_control.items()))


def grade(
    decision: Decision, controls: Sequence[Control] | None = None
) -> list[WorkflowCompliance]:
    """Per workflow (all its targets together), the status of every control (module doc)."""
    catalogue = control_catalogue(decision) if controls is None else controls
    results: dict[str, list[tuple[str, str, Violation]]] = {}
    targets: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    for result in decision.results:
        targets.setdefault(result.workflow, []).append(result.target)
        files.setdefault(result.workflow, result.file)
        bucket = results.setdefault(result.workflow, [])
        bucket.extend((result.target, v.rule, v) for v in result.violations)
    graded = []
    for workflow in sorted(results):
        rows = []
        for control in catalogue:
            ids = tuple(r.id for r in control.rules)
            findings = tuple(
                sorted(
                    (
                        RuleFinding.of(v, target)
                        for target, rule, v in results[workflow]
                        if rule in ids
                    ),
                    key=_finding_order,
                )
            )
            rows.append(ControlResult(control.name, _status(findings), ids, findings))
        graded.append(
            WorkflowCompliance(
                workflow, files[workflow], tuple(sorted(targets[workflow])), tuple(rows)
            )
        )
    return graded


def _status(findings: Iterable[RuleFinding]) -> Status:
    outcomes = {f.outcome for f in findings}
    if "fail" in outcomes:
        return "fail"
    return "waived" if "waived" in outcomes else "pass"


def _finding_order(finding: RuleFinding) -> tuple[int, str, str, int, int, str]:
    rank = {"fail": 0, "waived": 1, "warning": 2}[finding.outcome]
    return (rank, finding.rule, finding.target, finding.line, finding.column, finding.message)


def _counts(statuses: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    return counts


# -- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitEvidence:
    commit: str | None
    branch: str | None = None
    dirty: bool = False
    subject: str | None = None
    committed_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "subject": self.subject,
            "committedAt": self.committed_at.isoformat() if self.committed_at else None,
        }


@dataclass(frozen=True)
class WaiverEvidence:
    name: str
    rule: str
    workflows: tuple[str, ...]
    owner: str
    expires: dt.date
    ticket: str | None
    reason: str
    file: str
    status: str  # applied | unused | expired
    expiring: bool = False  # within 14 days

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rule": self.rule,
            "workflows": list(self.workflows),
            "owner": self.owner,
            "expires": self.expires.isoformat(),
            "ticket": self.ticket,
            "reason": self.reason,
            "file": self.file,
            "status": self.status,
            "expiring": self.expiring,
        }


@dataclass(frozen=True)
class PolicyEvidence:
    """The policy library: its digest (as `cpl plan` fingerprints it) and what it holds."""

    digest: str
    files: int
    disabled: tuple[str, ...] = ()  # rule ids the environment disables

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": self.files, "disabled": list(self.disabled)}


@dataclass(frozen=True)
class Assessment:
    """What the policy pass over an environment decided, graded per workflow and control."""

    environment: str
    tier: str
    controls: tuple[Control, ...]
    workflows: tuple[WorkflowCompliance, ...]
    git: GitEvidence
    policy: PolicyEvidence
    waivers: tuple[WaiverEvidence, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    state_serial: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Workflow-by-control results by status."""
        return _counts(c.status for w in self.workflows for c in w.controls)

    @property
    def workflow_counts(self) -> dict[str, int]:
        """Workflows by status (a workflow fails when one of its controls fails)."""
        return _counts(w.status for w in self.workflows)

    @property
    def warnings(self) -> int:
        return sum(w.warnings for w in self.workflows)

    def workflow(self, key: str) -> WorkflowCompliance:
        return next(w for w in self.workflows if w.workflow == key)


@dataclass(frozen=True)
class AuditLog:
    """The hash-chain verdict on one audit log file."""

    file: str
    ok: bool
    lines: int
    first_bad_line: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "lines": self.lines,
            "firstBadLine": self.first_bad_line,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DriftRun:
    """A `dev.cpl.drift.completed` event: when drift ran and what it found."""

    time: dt.datetime
    drifted: bool
    partial: bool
    counts: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "drifted": self.drifted,
            "partial": self.partial,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class HistoryPoint:
    """One point of the compliance history: a report (counts), a drift run or a check."""

    time: dt.datetime
    kind: Literal["report", "drift", "check"]
    counts: Mapping[str, int] | None = None  # report: workflow-by-control results by status
    workflows: Mapping[str, int] | None = None  # report: workflows by status
    ok: bool | None = None  # drift: no drift; check: passed
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "kind": self.kind,
            "counts": dict(self.counts) if self.counts is not None else None,
            "workflows": dict(self.workflows) if self.workflows is not None else None,
            "ok": self.ok,
            "commit": self.commit,
        }


@dataclass(frozen=True)
class AuditEvidence:
    logs: tuple[AuditLog, ...] = ()
    last_drift: DriftRun | None = None
    history: tuple[HistoryPoint, ...] = ()
    recorded: bool = False  # this report's own event was written
    problem: str | None = None  # why it was not
    access: AccessEvidence = field(default_factory=AccessEvidence)

    @property
    def ok(self) -> bool:
        return all(log.ok for log in self.logs)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "logs": [log.to_json() for log in self.logs],
            "lastDrift": self.last_drift.to_json() if self.last_drift else None,
            "history": [p.to_json() for p in self.history],
            "recorded": self.recorded,
            "problem": self.problem,
            "access": self.access.to_json(),
        }


@dataclass(frozen=True)
class ComplianceReport:
    """The whole report: the assessment, the audit evidence and when it was made."""

    assessment: Assessment
    audit: AuditEvidence
    generated_at: dt.datetime
    slo: SloAttainment | None = None  # SLO attainment over the window (compliance/slo.py)

    def to_json(self) -> dict[str, Any]:
        a = self.assessment
        return {
            **({"slo": self.slo.to_json()} if self.slo is not None else {}),
            "environment": a.environment,
            "tier": a.tier,
            "generatedAt": self.generated_at.isoformat(),
            "summary": {
                **a.counts,
                "workflows": len(a.workflows),
                "workflowCounts": a.workflow_counts,
                "controls": len(a.controls),
                "warnings": a.warnings,
            },
            "controls": [c.to_json() for c in a.controls],
            "workflows": [w.to_json() for w in a.workflows],
            "evidence": {
                "git": a.git.to_json(),
                "policy": a.policy.to_json(),
                "waivers": [w.to_json() for w in a.waivers],
                "stateSerial": a.state_serial,
                "audit": self.audit.to_json(),
                "diagnostics": [d.to_json() for d in a.diagnostics],
            },
        }


# -- assembling ------------------------------------------------------------------------------


def assess(repo: Path, desired: DesiredState, today: dt.date | None = None) -> Assessment:
    """Grade the policy pass of `cpl check` (`controlplane.pipeline.desired_state`) over an
    environment, with the evidence from the repo, the policy library and the deploy state."""
    from controlplane.deploy.stores import open_store

    decision, environment = desired.decision, desired.environment
    state = open_store(environment, repo).load(environment.name)
    applied: dict[str, list[Deployment]] = {}
    for resource in state.resources:
        applied.setdefault(resource.workflow, []).append(
            Deployment(
                resource.target,
                str(resource.engine),
                resource.applied_at,
                resource.spec_version,
                resource.artifact_digest,
                resource.git_commit,
                resource.status,
            )
        )
    workflows = tuple(
        WorkflowCompliance(
            w.workflow, w.file, w.targets, w.controls, tuple(applied.get(w.workflow, ()))
        )
        for w in grade(decision)
    )
    return Assessment(
        environment=environment.name,
        tier=environment.spec.tier,
        controls=control_catalogue(decision),
        workflows=workflows,
        git=git_evidence(repo),
        policy=policy_evidence(repo, environment, decision),
        waivers=waiver_evidence(
            desired.loaded.waivers, decision, environment.name, today or dt.date.today()
        ),
        diagnostics=decision.diagnostics,
        state_serial=state.serial,
    )


def git_evidence(repo: Path) -> GitEvidence:
    """HEAD of the git repository holding `repo`, and whether its tree is dirty."""
    import git

    try:
        git_repo = git.Repo(repo, search_parent_directories=True)
        head = git_repo.head.commit
    except Exception:  # not a repository, no commit yet, git missing: no provenance
        return GitEvidence(commit=None)
    try:
        branch: str | None = git_repo.active_branch.name
    except TypeError:  # detached HEAD
        branch = None
    return GitEvidence(
        commit=str(head.hexsha),
        branch=branch,
        dirty=bool(git_repo.is_dirty(untracked_files=True)),
        subject=str(head.summary),
        committed_at=head.committed_datetime,
    )


def policy_evidence(repo: Path, environment: Environment, decision: Decision) -> PolicyEvidence:
    """The library digest exactly as `cpl plan`'s fingerprint computes it (`policies`)."""
    from controlplane.deploy.plan import file_digests
    from controlplane.engines.translator import digest_of

    files = file_digests(repo, [builtin_policy_dir(), *policy_paths(environment, repo)])
    count = len(files)
    files["<policy.data>"] = digest_of(policy_config(environment))
    disabled = tuple(sorted(r for r, level in decision.enforcement.items() if level == "disabled"))
    return PolicyEvidence(digest_of(files), count, disabled)


def waiver_evidence(
    waivers: Sequence[Loaded[Waiver]], decision: Decision, environment: str, today: dt.date
) -> tuple[WaiverEvidence, ...]:
    """The waivers of the environment, each with its status in this decision."""
    applied = {w.name for w in decision.waivers.applied}
    found = []
    for loaded in waivers:
        waiver = loaded.model
        if environment not in waiver.spec.environments:
            continue
        if waiver.is_expired(today):
            status = "expired"
        else:
            status = "applied" if waiver.name in applied else "unused"
        found.append(
            WaiverEvidence(
                name=waiver.name,
                rule=waiver.spec.rule,
                workflows=tuple(waiver.spec.workflows),
                owner=waiver.spec.owner,
                expires=waiver.spec.expires,
                ticket=waiver.spec.ticket,
                reason=waiver.spec.reason.strip(),
                file=loaded.file,
                status=status,
                expiring=status != "expired" and waiver.expires_within(today),
            )
        )
    return tuple(sorted(found, key=lambda w: w.name))


def report_event_data(assessment: Assessment) -> dict[str, Any]:
    """The data of this report's `dev.cpl.report.generated` event (a history point)."""
    return {
        "environment": assessment.environment,
        "counts": assessment.counts,
        "workflowCounts": assessment.workflow_counts,
        "summary": {
            "workflows": len(assessment.workflows),
            "controls": len(assessment.controls),
            "warnings": assessment.warnings,
        },
        "commit": assessment.git.commit,
        "policyDigest": assessment.policy.digest,
    }


def read_audit(repo: Path, environment: Environment | str) -> AuditEvidence:
    """Chain status of every audit log file of the environment, its last drift run and the
    compliance history (module doc)."""
    from controlplane.audit.anchor import anchor_for
    from controlplane.audit.reconcile import against_state
    from controlplane.deploy.stores import open_store

    # A log is also held against the deploy state (a cut or deleted log): see reconcile.
    state = (
        open_store(environment, repo).load(environment.name)
        if isinstance(environment, Environment)
        else None
    )
    logs = []
    events: list[dict[str, Any]] = []
    for path in log_paths(repo, environment):
        verdict = verify(path)
        if state is not None:
            verdict = against_state(verdict, state)
        if isinstance(environment, Environment):
            audit = environment.spec.audit
            verdict = anchor_for(repo, audit.anchor, environment.spec.aws).check(verdict)
        logs.append(
            AuditLog(
                _display(repo, path),
                verdict.ok,
                verdict.lines,
                verdict.first_bad_line,
                verdict.reason,
            )
        )
        events.extend(_events(path))
    points, last_drift = history(events)
    return AuditEvidence(
        tuple(logs),
        last_drift,
        tuple(points[-HISTORY_LIMIT:]),
        access=access_evidence(events),
    )


def history(events: Iterable[Mapping[str, Any]]) -> tuple[list[HistoryPoint], DriftRun | None]:
    """History points of report, drift and check events, oldest first, and the last drift run.

    The same event read from two log files (an environment with two file sinks) counts once.
    """
    points: list[tuple[dt.datetime, str, HistoryPoint]] = []
    seen: set[str] = set()
    last_drift: DriftRun | None = None
    for event in events:
        kind = str(event.get("type", ""))
        ident = str(event.get("id", ""))
        time = _time(event.get("time"))
        data = event.get("data")
        if time is None or not isinstance(data, dict) or ident in seen:
            continue
        point: HistoryPoint | None = None
        if kind == REPORT_GENERATED:
            counts = data.get("counts")
            by_workflow = data.get("workflowCounts")
            if isinstance(counts, dict):
                point = HistoryPoint(
                    time,
                    "report",
                    counts={s: _int(counts.get(s)) for s in STATUSES},
                    workflows={s: _int(by_workflow.get(s)) for s in STATUSES}
                    if isinstance(by_workflow, dict)
                    else None,
                    ok=_int(counts.get("fail")) == 0,
                    commit=_str(data.get("commit")),
                )
        elif kind == DRIFT_COMPLETED:
            drifted = bool(data.get("drifted"))
            point = HistoryPoint(time, "drift", ok=not drifted)
            run = DriftRun(
                time,
                drifted,
                bool(data.get("partial")),
                dict(data.get("counts") or data.get("summary") or {}),
            )
            if last_drift is None or run.time >= last_drift.time:
                last_drift = run
        elif kind.startswith(CHECK_PREFIX):
            point = HistoryPoint(time, "check", ok=kind.endswith(".passed"))
        if point is not None:
            seen.add(ident)
            points.append((time, ident, point))
    points.sort(key=lambda item: (item[0], item[1]))
    return [p for _, _, p in points], last_drift


def _events(path: Path) -> list[dict[str, Any]]:
    """The parseable events of a log (a bad line is the chain verdict's business)."""
    if not path.exists():
        return []
    events = []
    with path.open("rb") as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _display(repo: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
