"""The jobs of ci/github/ run, step by step, on a `cpl init` repo with a pull request on top
of `main`, against the session's Temporal dev server (tests/ci/actions.py says how)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from controlplane.ci.body import MAX_CHARS
from controlplane.engines.temporal.devserver import free_port
from tests.ci.actions import WORKFLOWS, Job
from tests.ci.conftest import Control

pytestmark = pytest.mark.integration

PR = WORKFLOWS / "cpl-pr.yml"
APPLY = WORKFLOWS / "cpl-apply.yml"
DRIFT = WORKFLOWS / "cpl-drift.yml"
MARKER = "<!-- cpl-plan:local -->"
COMMENTS = "repos/acme/control/issues/7/comments"


LOCAL = {"CPL_ENV": "local"}  # the workflows' default is staging


def _pull_request_job(control: Control) -> Job:
    runner = control.runner(
        **{
            "github.base_ref": "main",
            "github.event.pull_request.number": "7",
            "github.event.pull_request.head.sha": str(control.repository.head.commit.hexsha),
        }
    )
    return runner.job(PR, "plan", env=LOCAL)


def _merge(control: Control) -> str:
    repository = control.repository
    repository.git.checkout("-q", "main")
    repository.git.merge("--no-ff", "-q", "-m", "Merge pull request #7", "next-version")
    return str(repository.head.commit.hexsha)


def _apply_job(control: Control, merged: str, plan: Path) -> Job:
    head = str(control.repository.commit(merged).parents[1].hexsha)
    control.answer(
        f"repos/acme/control/commits/{merged}/pulls",
        [{"number": 7, "merged_at": "2026-01-01T00:00:00Z", "head": {"sha": head}}],
    )
    control.answer(
        "repos/acme/control/actions/workflows/cpl-pr.yml/runs",
        {"workflow_runs": [{"id": 99}]},
    )
    control.artifact("cpl-plan-local", [plan, plan.with_name("cpl-plan.md")])
    return control.runner(**{"github.sha": merged}).job(APPLY, "apply", env=LOCAL)


def test_a_pull_request_is_planned_commented_once_and_applied_on_merge(control: Control) -> None:
    control.answer(COMMENTS, [{"id": 5, "body": "<!-- cpl-plan:prod -->\nanother environment"}])
    job = _pull_request_job(control)
    assert not job.failed, [(s.name, s.code, s.stderr) for s in job.steps]
    plan = job.step("Plan")
    assert (plan.outputs["exit-code"], plan.outcome) == ("4", "success")  # pending passes
    plan_file = Path(plan.outputs["plan-file"])
    document = json.loads(plan_file.read_text(encoding="utf-8"))
    assert (document["environment"], document["base"]) == ("local", control.base)
    assert document["summary"]["create"] >= 1 and document["policy"]["ok"] is True
    assert job.step("Upload SARIF to code scanning").ran
    assert Path(job.step("Upload SARIF to code scanning").with_["sarif_file"]).is_file()
    kept = job.step("Keep the plan file")
    assert kept.ran and kept.with_["name"] == "cpl-plan-local"
    assert str(plan_file) in kept.with_["path"].split()

    body = Path(job.step("Compose the plan comment").outputs["body"]).read_text(encoding="utf-8")
    assert body.startswith(MARKER + "\n") and len(body) < MAX_CHARS
    assert "✅ allowed" in body and "`example/hello`" in body and "cpl-plan-local" in body
    posts = [c for c in control.calls() if "--method" in c]
    assert [(c[2], c[3]) for c in posts] == [("POST", COMMENTS)]
    assert posts[0][-1] == f"body=@{control.root / 'cpl-comment.md'}"

    # the next push updates that comment in place
    control.answer(
        COMMENTS, [{"id": 5, "body": "<!-- cpl-plan:prod -->"}, {"id": 42, "body": body}]
    )
    (control.gh / "log.jsonl").unlink()
    assert not _pull_request_job(control).failed
    (update,) = [c for c in control.calls() if "--method" in c]
    assert update[2:4] == ["PATCH", "repos/acme/control/issues/comments/42"]

    merged = _merge(control)
    applied = _apply_job(control, merged, plan_file)
    assert not applied.failed, [(s.name, s.code, s.stdout, s.stderr) for s in applied.steps]
    step = applied.step("Apply the reviewed plan")
    assert step.outputs["exit-code"] == "0" and "applied" in step.stdout
    runs = [c for c in control.calls() if c[0] == "api" and "/runs?" in c[1]]
    head = str(control.repository.commit(merged).parents[1].hexsha)
    assert f"head_sha={head}&event=pull_request&status=success" in runs[-1][1]
    assert "example/hello" in {r.get("workflow") for r in control.resources()}

    # the nightly drift run: in sync, so an open drift issue of the environment is closed
    control.answer("issue-list", [{"number": 3, "body": "<!-- cpl-drift:local -->\nold"}])
    drift = control.runner(**{"matrix.environment": "local"}).job(DRIFT, "drift")
    assert not drift.failed, [(s.name, s.code, s.stdout, s.stderr) for s in drift.steps]
    assert drift.step("Drift").outputs["exit-code"] == "0"
    issue_calls = [c for c in control.calls() if c[0] == "issue" and c[1] != "list"]
    assert [c[:3] for c in issue_calls] == [["issue", "comment", "3"], ["issue", "close", "3"]], [
        (s.name, s.ran, s.outputs, s.stdout, s.stderr) for s in drift.steps
    ]


def test_a_stale_plan_fails_the_apply_and_nothing_is_applied(control: Control) -> None:
    control.answer(COMMENTS, [])
    job = _pull_request_job(control)
    assert job.step("Plan").outputs["exit-code"] == "4"
    plan_file = Path(job.step("Plan").outputs["plan-file"])
    merged = _merge(control)
    # main moves on after the review: the reviewed plan no longer describes what is merged
    control.edit("timeout: 10m", "timeout: 11m", "hello: a longer timeout")
    applied = _apply_job(control, merged, plan_file)
    assert applied.failed
    step = applied.step("Apply the reviewed plan")
    assert (step.outputs["exit-code"], step.outputs["outcome"]) == ("1", "stale")
    assert "::error::The reviewed plan is stale" in step.stdout
    assert "the specs moved" in step.stderr
    assert control.resources() == []


def test_a_merge_without_a_reviewed_plan_applies_nothing(control: Control) -> None:
    merged = _merge(control)
    control.answer(f"repos/acme/control/commits/{merged}/pulls", [])
    job = control.runner(**{"github.sha": merged}).job(APPLY, "apply", env=LOCAL)
    assert job.failed
    assert "found no merged pull request" in job.step("Find the reviewed plan").stdout
    assert not job.step("Apply the reviewed plan").ran
    assert control.resources() == []


def test_a_denied_change_fails_the_pull_request_after_commenting(control: Control) -> None:
    control.answer(COMMENTS, [])
    control.edit("      idempotencyKey: $.name\n", "", "greet without an idempotency key")
    job = _pull_request_job(control)
    assert job.failed
    check, plan = job.step("Policy check"), job.step("Plan")
    assert (check.outputs["exit-code"], check.outcome) == ("3", "failure")
    assert (plan.outputs["exit-code"], plan.outcome) == ("3", "failure")
    assert job.step("Upload SARIF to code scanning").ran
    body = Path(job.step("Compose the plan comment").outputs["body"]).read_text(encoding="utf-8")
    assert body.startswith(MARKER) and "❌ denied" in body and "CPL-P004" in body
    assert [c[2] for c in control.calls() if "--method" in c] == ["POST"]


def test_drift_opens_one_issue_per_environment(control: Control) -> None:
    """Live state that differs from the specs (here: a change merged but never applied) keeps
    one issue open, with the drift report as its body; the job passes (drift is exit 5)."""
    merged = _merge(control)
    assert merged
    control.answer("issue-list", [{"number": 8, "body": "<!-- cpl-drift:prod -->"}])
    job = control.runner(**{"matrix.environment": "local"}).job(DRIFT, "drift")
    assert not job.failed, [(s.name, s.code, s.stdout, s.stderr) for s in job.steps]
    assert job.step("Drift").outputs["exit-code"] == "5"
    body_file = Path(job.step("Compose the issue body").outputs["body"])
    body = body_file.read_text(encoding="utf-8")
    assert body.startswith("<!-- cpl-drift:local -->\n") and len(body) < MAX_CHARS
    writes = [c for c in control.calls() if c[0] in ("issue", "label") and c[1] != "list"]
    assert [c[:2] for c in writes] == [["label", "create"], ["issue", "create"]]
    assert writes[1][writes[1].index("--body-file") + 1] == str(body_file)
    assert writes[1][writes[1].index("--title") + 1] == "cpl drift: local"


def test_an_unreadable_engine_fails_the_drift_job_and_says_so_in_the_issue(
    control: Control,
) -> None:
    local = control.root / "environments" / "local.yaml"
    address = re.search(r"address: (\S+)", local.read_text(encoding="utf-8"))
    assert address is not None
    local.write_text(
        local.read_text(encoding="utf-8").replace(address.group(1), f"127.0.0.1:{free_port()}"),
        encoding="utf-8",
    )
    control.answer("issue-list", [{"number": 4, "body": "<!-- cpl-drift:local -->\nold"}])
    job = control.runner(**{"matrix.environment": "local"}).job(DRIFT, "drift")
    assert job.failed
    assert job.step("Drift").outputs["exit-code"] == "1"
    (edit,) = [c for c in control.calls() if c[:2] == ["issue", "edit"]]
    assert edit[2] == "4"  # the open issue is updated, not a second one opened
    assert (
        edit[edit.index("--title") + 1] == "cpl drift: local (partial: an engine could not be read)"
    )


def test_invalid_documents_fail_the_pull_request_before_any_plan(control: Control) -> None:
    control.answer(COMMENTS, [])
    control.edit("classification: internal", "classification: secret", "an unknown class")
    job = _pull_request_job(control)
    assert job.failed
    assert job.step("Validate").outcome == "failure"
    assert "CPL-S004" in job.step("Validate").stdout
    assert not job.step("Plan").ran and not job.step("Keep the plan file").ran
    assert [c for c in control.calls() if "--method" in c] == []  # no comment of a non-plan
