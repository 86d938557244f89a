"""Evidence in the audit trail: `cpl check` records its outcome with the waivers it used, and
`cpl report` shows who started, signalled, approved and operated what, with the grant that
allowed it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.audit import (
    ACCESS_DENIED,
    DLQ_REPLAYED,
    GRANT_APPROVED,
    RUN_STARTED,
    SIGNAL_ACCEPTED,
    SIGNAL_REFUSED,
    Auditor,
)
from controlplane.cli import run
from controlplane.spec.load import load_environment
from tests.report.test_report_command import parse


def _events(repo: Path, env: str = "prod") -> list[dict[str, Any]]:
    log = repo / ".cpl" / "audit" / f"{env}.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_check_records_its_outcome_and_the_waivers_it_used(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["check", "--env", "prod", "--repo", str(example_repo), "--today", "2026-11-25"])
    capsys.readouterr()
    events = _events(example_repo)
    [check] = [e for e in events if e["type"].startswith("dev.cpl.check.")]
    assert check["type"] == ("dev.cpl.check.passed" if code == 0 else "dev.cpl.check.denied")
    assert check["data"]["ok"] is (code == 0)
    assert {"waiver": "legacy-catalog-no-jitter", "rule": "CPL-P002"}.items() <= (
        check["data"]["waivers"][0].items()
    )
    [used] = [e for e in events if e["type"] == "dev.cpl.waiver.used"]
    assert used["data"]["workflows"] == ["retail/legacy-catalog-import"]
    assert used["data"]["expires"] == "2027-03-31"
    # A check is a history point of the report.
    assert run(["audit", "verify", "--env", "prod", "--repo", str(example_repo)]) == 0


def _record_access(repo: Path) -> None:
    """The events `cpl run`, `cpl signal`, the worker, `cpl access` and `cpl dlq` write."""
    auditor = Auditor.for_environment(repo, load_environment(repo, "prod"))
    common = {"workflow": "retail/order-fulfillment", "target": "temporal-main"}
    auditor.emit(
        GRANT_APPROVED,
        None,
        {**common, "actor": "bob", "verified": True, "grant": "g-7f3a", "role": "operator",
         "operation": "grant", "expires": "2026-11-25T12:00:00Z"},
    )  # fmt: skip
    auditor.emit(
        RUN_STARTED,
        "retail/order-fulfillment",
        {**common, "actor": "alice", "verified": True, "roles": ["orders-operator"],
         "operation": "start", "runId": "retail-order-fulfillment-1"},
    )  # fmt: skip
    auditor.emit(
        SIGNAL_REFUSED,
        "retail/order-fulfillment",
        {**common, "actor": "mallory", "verified": False, "operation": "signal",
         "signal": "approve", "step": "manager-approval", "runId": "retail-order-fulfillment-1",
         "missing": ["finance-approver"]},
    )  # fmt: skip
    auditor.emit(
        SIGNAL_ACCEPTED,
        "retail/order-fulfillment",
        {**common, "actor": "carol", "verified": True, "operation": "admin", "signal": "pause",
         "runId": "retail-order-fulfillment-1", "grant": "g-7f3a"},
    )  # fmt: skip
    auditor.emit(ACCESS_DENIED, "retail/order-fulfillment", {**common, "actor": "dave",
                 "operation": "start", "missing": ["orders-operator"]})  # fmt: skip
    auditor.emit(
        DLQ_REPLAYED,
        "retail/order-fulfillment",
        {**common, "id": "dl-1", "runId": "retail-order-fulfillment-2"},
    )


def test_the_report_shows_who_did_what_with_which_grant(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record_access(example_repo)
    out = tmp_path / "report.json"
    args = ["report", "--env", "prod", "--repo", str(example_repo), "--today", "2026-11-25"]
    assert run([*args, "--format", "json", "-o", str(out)]) == 0
    access = json.loads(out.read_text(encoding="utf-8"))["evidence"]["audit"]["access"]
    assert access["total"] == 6 and access["refused"] == 2 and access["unverified"] == 1
    by_actor = {e["actor"]: e for e in access["entries"]}
    assert by_actor["carol"]["grant"] == "g-7f3a" and by_actor["carol"]["detail"] == "pause"
    assert by_actor["mallory"]["outcome"] == "refused"
    assert by_actor["mallory"]["detail"] == "approve step manager-approval missing finance-approver"
    assert by_actor["alice"]["runId"] == "retail-order-fulfillment-1"
    [replay] = [e for e in access["entries"] if e["kind"] == "dead letter replayed"]
    assert replay["runId"] == "retail-order-fulfillment-2" and replay["operation"] == "replay"

    page_file = tmp_path / "report.html"
    assert run([*args, "-o", str(page_file)]) == 0
    capsys.readouterr()
    page = parse(page_file).content
    assert "Who started, signalled, approved and operated what" in page
    assert "mallory (self-declared)" in page and "alice (verified)" in page
    assert "2 refused, 1 by a self-declared (unverified) principal" in page


def test_a_report_without_access_events_says_so(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page_file = tmp_path / "report.html"
    args = ["report", "--env", "prod", "--repo", str(example_repo), "--today", "2026-11-25"]
    assert run([*args, "-o", str(page_file)]) == 0
    capsys.readouterr()
    assert "No run, signal, operation or grant is recorded" in parse(page_file).content


def test_a_check_whose_trail_is_broken_still_gives_its_decision(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--env", "prod", "--repo", str(example_repo), "--today", "2026-11-25"]
    expected = run([*args, "--format", "json"])
    capsys.readouterr()
    log = example_repo / ".cpl" / "audit" / "prod.jsonl"
    with log.open("ab") as handle:
        handle.write(b'{"cut short')  # a crash mid-write: nothing is appended after it
    before = log.read_bytes()
    assert run([*args, "--format", "json"]) == expected
    out, err = capsys.readouterr()
    assert json.loads(out)["environment"] == "prod"
    assert "the check was not recorded in the audit trail" in err
    assert log.read_bytes() == before  # the broken log is kept as it is, as evidence
