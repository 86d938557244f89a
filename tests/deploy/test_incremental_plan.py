"""`cpl plan --base`: only what changed since the ref is planned and read from the engines."""

from __future__ import annotations

from tests.deploy.conftest import ControlRepo


def test_plan_since_a_ref_plans_changes_and_deletes_only(control_repo: ControlRepo) -> None:
    repo = control_repo
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    repo.file("retail/inventory-sync").unlink()
    repo.edit("finance/month-end-close", "timeout: 5d", "timeout: 6d")
    repo.edit("finance/month-end-close", "version: 3.1.0", "version: 3.1.1")

    planned = repo.cpl("plan", "--env", "local", "--base", "HEAD", "--format", "json")
    assert planned.code == 4, planned.out + planned.err
    document = planned.json()
    actions = {(c["workflow"], c["action"]) for c in document["changes"]}
    assert (repo.workflow("retail/inventory-sync"), "delete") in actions
    assert (repo.workflow("finance/month-end-close"), "update") in actions
    # the unchanged workflows are neither planned nor read from their engines
    untouched = {
        repo.workflow("health/appointment-reminders"),
        repo.workflow("retail/price-feed-export"),
    }
    assert not untouched & {c["workflow"] for c in document["changes"]}
    assert document["unchanged"]["workflows"] == 2
    assert "drift" in document["unchanged"]["note"]

    text = repo.cpl("plan", "--env", "local", "--base", "HEAD")
    assert "2 workflow(s) not planned and not read from the live engines" in text.out

    full = repo.cpl("plan", "--env", "local", "--format", "json").json()
    assert full["unchanged"] is None
    assert untouched <= {c["workflow"] for c in full["changes"]}
