"""The compliance model: per workflow and control, pass / fail / waived, and its evidence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from controlplane.audit import DRIFT_COMPLETED, Auditor
from controlplane.compliance.model import (
    REPORT_GENERATED,
    Assessment,
    assess,
    control_catalogue,
    grade,
    history,
    read_audit,
    report_event_data,
)
from controlplane.deploy.plan import Plan, fingerprint
from controlplane.deploy.state import ResourceState, State
from controlplane.pipeline import desired_state
from controlplane.policy.decision import Decision, Violation, WaiverReport, WorkflowResult
from controlplane.policy.library import RuleInfo
from controlplane.spec.load import load_environment
from tests.report.conftest import copy_example

TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def prod_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_example(tmp_path_factory.mktemp("compliance") / "repo")
    state = State(
        environment="prod",
        serial=4,
        lineage="test-lineage",
        resources=(
            ResourceState(
                workflow="finance/fx-rates-refresh",
                target="temporal-prod",
                engine="temporal",
                resource_id="cpl-prod/finance-fx-rates-refresh",
                artifact_digest="sha256:" + "ab" * 32,
                spec_version="1.4.0",
                git_commit="0123456789abcdef0123456789abcdef01234567",
                applied_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
            ),
        ),
    )
    directory = repo / ".cpl" / "state" / "prod"
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps(state.to_json()), encoding="utf-8")
    return repo


@pytest.fixture(scope="module")
def prod(prod_repo: Path) -> Assessment:
    return assess(prod_repo, desired_state(prod_repo, "prod", today=TODAY), TODAY)


def controls_of(assessment: Assessment, rule: str, *, only: bool = False) -> set[str]:
    """The controls `rule` serves (with `only`: those no other rule serves)."""
    return {
        c.name
        for c in assessment.controls
        if rule in {r.id for r in c.rules} and (not only or len(c.rules) == 1)
    }


def failing(assessment: Assessment, workflow: str) -> set[str]:
    return {c.control for c in assessment.workflow(workflow).controls if c.status == "fail"}


def test_fx_rates_refresh_fails_exactly_the_controls_of_p008_and_p016(prod: Assessment) -> None:
    fx = prod.workflow("finance/fx-rates-refresh")
    assert fx.status == "fail"
    expected = controls_of(prod, "CPL-P008") | controls_of(prod, "CPL-P016")
    assert expected and failing(prod, "finance/fx-rates-refresh") == expected
    for name in expected:
        rules = {f.rule for f in fx.control(name).blocking}
        assert rules <= {"CPL-P008", "CPL-P016"} and rules
    assert not [c for c in fx.controls if c.status == "waived"]


def test_legacy_catalog_import_has_waived_p002_and_failing_p011(prod: Assessment) -> None:
    legacy = prod.workflow("retail/legacy-catalog-import")
    assert legacy.status == "fail"
    assert failing(prod, "retail/legacy-catalog-import") == controls_of(prod, "CPL-P011")
    waived = {c.control for c in legacy.controls if c.status == "waived"}
    # Every control of P002 is waived: P001, which shares one of them, passes here.
    assert waived == controls_of(prod, "CPL-P002")
    for name in waived:
        for finding in legacy.control(name).blocking:
            assert (finding.outcome, finding.rule) == ("waived", "CPL-P002")
            assert finding.waiver == "legacy-catalog-no-jitter"


def test_the_other_workflows_pass(prod: Assessment) -> None:
    """Besides the two above, the example's prod has two more known failures: lab-results-ingest
    (CPL-P012, no input schema) and price-feed-export (CPL-P020, unsupported on Argo)."""
    assert failing(prod, "health/lab-results-ingest") == controls_of(prod, "CPL-P012")
    assert failing(prod, "retail/price-feed-export") == controls_of(prod, "CPL-P020")
    known = {
        "finance/fx-rates-refresh",
        "retail/legacy-catalog-import",
        "health/lab-results-ingest",
        "retail/price-feed-export",
    }
    others = [w for w in prod.workflows if w.workflow not in known]
    assert len(others) == 11
    assert all(w.status == "pass" for w in others), [w.workflow for w in others]
    assert prod.workflow_counts == {"pass": 11, "fail": 4, "waived": 0}


def test_advisory_findings_are_warnings_not_failures(prod: Assessment) -> None:
    """CPL-P015 is advisory on prod; CPL-P020 approximations are `warn` results."""
    assert prod.warnings > 0
    for workflow in prod.workflows:
        for control in workflow.controls:
            if control.status == "pass":
                assert all(f.outcome == "warning" for f in control.findings)
    slo = controls_of(prod, "CPL-P015")
    assert slo and all(w.control(name).status == "pass" for w in prod.workflows for name in slo)


def test_every_workflow_is_graded_on_every_control(prod: Assessment) -> None:
    assert len(prod.workflows) == 15
    names = [c.name for c in prod.controls]
    assert names == sorted(names) and len(names) == len(set(names))
    for workflow in prod.workflows:
        assert [c.control for c in workflow.controls] == names
    total = len(prod.workflows) * len(names)
    assert sum(prod.counts.values()) == total


def test_evidence_commit_digest_waivers_and_last_apply(prod_repo: Path, prod: Assessment) -> None:
    import git

    head = git.Repo(prod_repo).head.commit.hexsha
    assert prod.git.commit == head and prod.git.dirty is False and prod.git.branch
    environment = load_environment(prod_repo, "prod")
    planned = fingerprint(prod_repo, environment, Plan("prod", ()), State.new("prod"))
    assert prod.policy.digest == planned.policies  # the digest `cpl plan` records
    assert prod.policy.files > 20 and prod.policy.disabled == ()
    (waiver,) = prod.waivers
    assert (waiver.name, waiver.rule, waiver.owner, waiver.ticket, waiver.status) == (
        "legacy-catalog-no-jitter",
        "CPL-P002",
        "team-catalog",
        "CAT-1187",
        "applied",
    )
    assert waiver.expires == dt.date(2027, 3, 31) and "legacy ERP" in waiver.reason
    (applied,) = prod.workflow("finance/fx-rates-refresh").deployments
    assert (applied.target, applied.version) == ("temporal-prod", "1.4.0")
    assert applied.applied_at == dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    assert prod.workflow("retail/inventory-sync").deployments == ()
    assert prod.state_serial == 4


def test_a_dirty_tree_is_evidence(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    (repo / "workflows" / "retail" / "order-fulfillment.yaml").open("a").write("# edited\n")
    from controlplane.compliance.model import git_evidence

    assert git_evidence(repo).dirty is True
    assert git_evidence(tmp_path / "elsewhere").commit is None


def test_report_events_and_drift_runs_make_the_history(prod_repo: Path, prod: Assessment) -> None:
    auditor = Auditor(prod_repo, "prod", [])
    auditor.emit(REPORT_GENERATED, None, report_event_data(prod))
    auditor.emit(
        DRIFT_COMPLETED, None, {"drifted": True, "partial": False, "counts": {"modified": 1}}
    )
    auditor.emit(REPORT_GENERATED, None, report_event_data(prod))
    audit = read_audit(prod_repo, "prod")
    assert audit.ok and [log.lines for log in audit.logs] == [3]
    assert [p.kind for p in audit.history] == ["report", "drift", "report"]
    first = audit.history[0]
    assert first.counts == prod.counts and first.workflows == prod.workflow_counts
    assert first.ok is False and first.commit == prod.git.commit
    assert audit.last_drift is not None and audit.last_drift.drifted
    assert audit.last_drift.counts == {"modified": 1}


def test_history_orders_by_time_counts_an_event_once_and_keeps_the_last_drift() -> None:
    def event(ident: str, kind: str, time: str, data: dict[str, object]) -> dict[str, object]:
        return {"id": ident, "type": kind, "time": time, "data": data}

    counts = {"counts": {"pass": 3, "fail": 0, "waived": 1}}
    events = [
        event("b", DRIFT_COMPLETED, "2026-11-02T00:00:00Z", {"drifted": False}),
        event("a", REPORT_GENERATED, "2026-11-01T00:00:00Z", counts),
        event("a", REPORT_GENERATED, "2026-11-01T00:00:00Z", counts),  # second file sink
        event("c", DRIFT_COMPLETED, "2026-10-01T00:00:00Z", {"drifted": True}),
        event("d", "dev.cpl.check.denied", "2026-11-03T00:00:00Z", {}),
        event("e", "dev.cpl.apply.succeeded", "2026-11-04T00:00:00Z", {}),
        event("f", REPORT_GENERATED, "not a time", counts),
    ]
    points, last = history(events)
    assert [(p.kind, p.time.day) for p in points] == [
        ("drift", 1),
        ("report", 1),
        ("drift", 2),
        ("check", 3),
    ]
    assert points[1].ok is True and points[1].workflows is None
    assert points[3].ok is False
    assert last is not None and last.drifted is False and last.time.day == 2


def _decision(violations: list[Violation], enforcement: dict[str, str]) -> Decision:
    rules = {
        "CPL-P001": RuleInfo("CPL-P001", "cpl.rules.a", "A", "", "high", ("C-1", "C-2")),
        "CPL-P002": RuleInfo("CPL-P002", "cpl.rules.b", "B", "", "low", ("C-2",)),
        "CPL-P003": RuleInfo("CPL-P003", "cpl.rules.c", "C", "", "low", ()),
        "CPL-P004": RuleInfo("CPL-P004", "cpl.rules.d", "D", "", "low", ("C-4",)),
    }
    return Decision(
        "prod",
        (WorkflowResult("t/w", "x", "workflows/t/w.yaml", tuple(violations)),),
        WaiverReport(),
        rules,
        enforcement=enforcement,
    )


def _violation(rule: str, enforcement: str = "mandatory", waived: bool = False) -> Violation:
    return Violation(
        rule,
        "high",
        enforcement,
        "m",
        "/spec",
        "workflows/t/w.yaml",
        1,
        1,
        waived=waived,
        waiver="w" if waived else None,
    )


@pytest.mark.parametrize(
    ("violations", "expected"),
    [
        ([], {"C-1": "pass", "C-2": "pass", "CPL-P003": "pass"}),
        ([_violation("CPL-P001", waived=True)], {"C-1": "waived", "C-2": "waived"}),
        (
            [_violation("CPL-P001", waived=True), _violation("CPL-P002")],
            {"C-1": "waived", "C-2": "fail"},
        ),
        ([_violation("CPL-P002", "advisory")], {"C-1": "pass", "C-2": "pass"}),
        ([_violation("CPL-P003")], {"CPL-P003": "fail", "C-1": "pass"}),
    ],
)
def test_control_status_rules(violations: list[Violation], expected: dict[str, str]) -> None:
    decision = _decision(
        violations,
        {
            "CPL-P001": "mandatory",
            "CPL-P002": "mandatory",
            "CPL-P003": "mandatory",
            "CPL-P004": "disabled",
        },
    )
    (graded,) = grade(decision)
    statuses = {c.control: c.status for c in graded.controls}
    assert "C-4" not in statuses  # only a disabled rule serves it
    for control, status in expected.items():
        assert statuses[control] == status
    assert [c.name for c in control_catalogue(decision)] == ["C-1", "C-2", "CPL-P003"]


def test_the_event_cpl_drift_records_is_the_last_drift_run(tmp_path: Path) -> None:
    """Written by the drift package's own recorder, read back by the report."""
    from controlplane.drift.audit import record_drift
    from controlplane.drift.model import DriftReport

    repo = copy_example(tmp_path / "repo")
    record_drift(repo, load_environment(repo, "prod"), DriftReport("prod", items=()))
    audit = read_audit(repo, "prod")
    assert audit.last_drift is not None and audit.last_drift.drifted is False
    assert audit.last_drift.counts["managed"] == 0 and "coverage" in audit.last_drift.counts
    assert [p.kind for p in audit.history] == ["drift"]
