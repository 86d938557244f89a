"""The policy decision: findings turned into enforced, located, possibly waived violations.

Enforcement per rule is the environment's `policy.enforcement`, overridden per rule id by
`policy.rules`: `mandatory` violations deny, `advisory` ones warn, `disabled` rules are not
reported. `warn` results of a rule (CPL-P020's approximations) are warnings whatever the
enforcement. Waivers (`cpl schema --kind Waiver`) turn matching violations into `waived`; an
expired waiver
waives nothing and denies the check by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.errors import Diagnostic, ExitCode
from controlplane.policy.engine import PolicyEngine, open_engine
from controlplane.policy.inputs import PolicyInput
from controlplane.policy.library import SEVERITIES, Finding, RuleInfo
from controlplane.spec.environment import Environment
from controlplane.spec.load import Loaded
from controlplane.spec.locate import did_you_mean
from controlplane.spec.waiver import Waiver

Locate = Callable[[str, str], tuple[int, int]]
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}  # critical = 0
UNKNOWN_RULE = "CPL-C004"


@dataclass(frozen=True)
class Violation:
    rule: str
    severity: str
    enforcement: str  # mandatory | advisory
    message: str
    path: str
    file: str
    line: int
    column: int
    kind: str = "deny"  # deny | warn (a `warn` result is never failing)
    waived: bool = False
    waiver: str | None = None

    @property
    def denies(self) -> bool:
        return self.kind == "deny" and self.enforcement == "mandatory" and not self.waived

    @property
    def warns(self) -> bool:
        return not self.waived and not self.denies

    def sort_key(self) -> tuple[int, int, str, int, int, str]:
        return (
            0 if self.denies else 1,
            SEVERITY_RANK.get(self.severity, len(SEVERITY_RANK)),
            self.rule,
            self.line,
            self.column,
            self.message,
        )


@dataclass(frozen=True)
class WorkflowResult:
    workflow: str
    target: str
    file: str
    violations: tuple[Violation, ...]

    @property
    def denied(self) -> bool:
        return any(v.denies for v in self.violations)


@dataclass(frozen=True)
class WaiverUse:
    """A waiver as reported: expired, unused or expiring soon."""

    name: str
    rule: str
    workflows: tuple[str, ...]
    expires: dt.date
    owner: str
    file: str
    ticket: str | None = None

    @classmethod
    def of(cls, loaded: Loaded[Waiver]) -> WaiverUse:
        spec = loaded.model.spec
        return cls(
            loaded.model.name,
            spec.rule,
            tuple(spec.workflows),
            spec.expires,
            spec.owner,
            loaded.file,
            spec.ticket,
        )


@dataclass(frozen=True)
class WaiverReport:
    expired: tuple[WaiverUse, ...] = ()
    unused: tuple[WaiverUse, ...] = ()
    expiring: tuple[WaiverUse, ...] = ()
    applied: tuple[WaiverUse, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Outcome of one check of an environment."""

    environment: str
    results: tuple[WorkflowResult, ...]
    waivers: WaiverReport
    rules: Mapping[str, RuleInfo]
    diagnostics: tuple[Diagnostic, ...] = ()
    enforcement: Mapping[str, str] = field(default_factory=dict)

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    @property
    def denied(self) -> bool:
        """A mandatory violation (not waived), or an expired waiver."""
        return any(r.denied for r in self.results) or bool(self.waivers.expired)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.denied and not self.errors

    @property
    def exit_code(self) -> ExitCode:
        if self.errors:
            return ExitCode.ERROR
        return ExitCode.DENIED if self.denied else ExitCode.OK

    @property
    def summary(self) -> dict[str, int]:
        violations = self.violations
        return {
            "workflows": len({r.workflow for r in self.results}),
            "denied": sum(1 for v in violations if v.denies),
            "warnings": sum(1 for v in violations if v.warns),
            "waived": sum(1 for v in violations if v.waived),
        }


@dataclass(frozen=True)
class Located:
    """A finding with where it comes from in the workflow's file (`source`: the pointer the
    user wrote, see `PolicyInput.origin`)."""

    finding: Finding
    source: str
    line: int
    column: int


@dataclass(frozen=True)
class Subject:
    """What one policy input was about: a (workflow, target) and the workflow's file."""

    workflow: str
    target: str
    file: str


def evaluate(
    inputs: Iterable[PolicyInput],
    environment: Environment,
    waivers: Sequence[Loaded[Waiver]] = (),
    today: dt.date | None = None,
    *,
    engine: PolicyEngine | None = None,
    repo: Path | None = None,
    locate: Locate | None = None,
    diagnostics: Iterable[Diagnostic] = (),
) -> Decision:
    """Evaluate every input in one batched engine pass and decide.

    `engine` defaults to the environment's (embedded OPA, or `policy.server`), loaded from
    `repo`; `locate` maps (file, JSON pointer) to (line, column), e.g. `LoadResult.locate`.
    """
    inputs = list(inputs)
    owned = engine is None
    engine = engine or open_engine(environment, repo or Path("."))
    try:
        outcomes = engine.evaluate([i.document for i in inputs])
        rules = dict(engine.rules)
    finally:
        if owned:
            engine.close()
    subjects = [Subject(i.workflow, i.target, i.file) for i in inputs]
    return decide(
        subjects,
        locate_findings(inputs, outcomes, locate),
        rules,
        environment,
        waivers,
        today,
        diagnostics=diagnostics,
    )


def locate_findings(
    inputs: Sequence[PolicyInput], outcomes: Sequence[Sequence[Finding]], locate: Locate | None
) -> list[list[Located]]:
    """Each input's findings with the file position of what they point at."""
    located = []
    for item, findings in zip(inputs, outcomes, strict=True):
        here = []
        for finding in findings:
            source = item.origin(finding.path)
            line, column = locate(item.file, source) if locate else (1, 1)
            here.append(Located(finding, source, line, column))
        located.append(here)
    return located


def decide(
    subjects: Sequence[Subject],
    located: Sequence[Sequence[Located]],
    rules: Mapping[str, RuleInfo],
    environment: Environment,
    waivers: Sequence[Loaded[Waiver]] = (),
    today: dt.date | None = None,
    *,
    diagnostics: Iterable[Diagnostic] = (),
) -> Decision:
    """The decision from located findings: the environment's enforcement, the waivers and
    `today` are applied here, after evaluation (so evaluated findings can be kept and
    decided again under other waivers or another day)."""
    today = today or dt.date.today()
    policy = environment.spec.policy
    enforcement = {rule: policy.rules.get(rule, policy.enforcement) for rule in rules}
    notes = list(diagnostics) + _unknown_rules(environment, rules, waivers)
    here = [w for w in waivers if environment.name in w.model.spec.environments]
    active = [w for w in here if not w.model.is_expired(today)]
    used: set[str] = set()
    results = []
    for item, findings in zip(subjects, located, strict=True):
        violations = []
        for place in findings:
            finding = place.finding
            level = enforcement.get(finding.rule, policy.enforcement)
            if level == "disabled":
                continue
            info = rules.get(finding.rule)
            waiver = _matching(active, finding, item.workflow, place.source)
            if waiver is not None:
                used.add(waiver.model.name)
            violations.append(
                Violation(
                    rule=finding.rule,
                    severity=info.severity if info else "medium",
                    enforcement=level if finding.kind == "deny" else "advisory",
                    message=finding.message,
                    path=finding.path,
                    file=item.file,
                    line=place.line,
                    column=place.column,
                    kind=finding.kind,
                    waived=waiver is not None,
                    waiver=waiver.model.name if waiver is not None else None,
                )
            )
        violations.sort(key=Violation.sort_key)
        results.append(WorkflowResult(item.workflow, item.target, item.file, tuple(violations)))
    checked = {i.workflow for i in subjects}
    report = WaiverReport(
        expired=tuple(WaiverUse.of(w) for w in here if w.model.is_expired(today)),
        # Only waivers for workflows this run checked can be called unused (with --base,
        # unchanged workflows are not checked).
        unused=tuple(
            WaiverUse.of(w)
            for w in active
            if w.model.name not in used and checked & set(w.model.spec.workflows)
        ),
        expiring=tuple(WaiverUse.of(w) for w in active if w.model.expires_within(today)),
        applied=tuple(WaiverUse.of(w) for w in active if w.model.name in used),
    )
    return Decision(
        environment=environment.name,
        results=tuple(results),
        waivers=report,
        rules=rules,
        diagnostics=tuple(sorted(notes)),
        enforcement=enforcement,
    )


def _matching(
    waivers: Sequence[Loaded[Waiver]], finding: Finding, workflow: str, source: str
) -> Loaded[Waiver] | None:
    for waiver in waivers:
        spec = waiver.model.spec
        if spec.rule != finding.rule or workflow not in spec.workflows:
            continue
        if spec.path and not (_under(finding.path, spec.path) or _under(source, spec.path)):
            continue
        return waiver
    return None


def _under(path: str, prefix: str) -> bool:
    """Whether JSON pointer `path` is `prefix` or inside it (token-wise, not char-wise)."""
    prefix = prefix.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def _unknown_rules(
    environment: Environment, rules: Mapping[str, Any], waivers: Sequence[Loaded[Waiver]]
) -> list[Diagnostic]:
    """Warnings for rule ids that name no loaded rule (a typo silently configures nothing)."""
    known = sorted(rules)
    found = []
    for rule in environment.spec.policy.rules:
        if rule not in rules:
            found.append(
                Diagnostic(
                    f"environments/{environment.name}.yaml",
                    1,
                    1,
                    UNKNOWN_RULE,
                    f"policy.rules names unknown rule {rule}{did_you_mean(rule, known)}",
                    f"/spec/policy/rules/{rule}",
                    "warning",
                )
            )
    for waiver in waivers:
        rule = waiver.model.spec.rule
        if rule not in rules:
            found.append(
                Diagnostic(
                    waiver.file,
                    1,
                    1,
                    UNKNOWN_RULE,
                    f"waiver '{waiver.model.name}' names unknown rule {rule}"
                    f"{did_you_mean(rule, known)}",
                    "/spec/rule",
                    "warning",
                )
            )
    return found
