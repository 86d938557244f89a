"""`cpl plan`: breaking changes and the version bump they need (CPL-P017), `--base`, the
Markdown PR comment, and what a stale fingerprint reports."""

from __future__ import annotations

from controlplane.deploy.plan import Fingerprint, moved
from tests.deploy.conftest import ControlRepo

REMOVED_STEP = (
    "          next: update-storefront\n"
    "        - name: update-storefront\n"
    "          type: task\n"
    "          activity: inventory.update-stock\n"
    "          idempotencyKey: $.batchId\n"
    "          parameters: {batchId: $.batchId, levels: $.levels}\n"
    "          end: true\n"
)


def test_removing_a_step_without_a_major_bump_is_denied(control_repo: ControlRepo) -> None:
    repo = control_repo
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    repo.edit("retail/inventory-sync", REMOVED_STEP, "          end: true\n")
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 2.1.0")

    planned = repo.cpl("plan", "--env", "local", "--format", "json")
    assert planned.code == 3, planned.err
    document = planned.json()
    denied = [
        v["rule"]
        for r in document["policy"]["results"]
        for v in r["violations"]
        if v["enforcement"] == "mandatory" and not v["waived"]
    ]
    assert denied == ["CPL-P017"]
    (change,) = [c for c in document["changes"] if c["action"] == "update"]
    assert change["bump"] == "minor"
    assert any("update-storefront" in b["reason"] for b in change["breaking"]), change
    refused = repo.cpl("apply", "--env", "local", "--yes")
    assert refused.code == 3
    assert "CPL-P017" in refused.err

    repo.edit("retail/inventory-sync", "version: 2.1.0", "version: 3.0.0")
    assert repo.cpl("plan", "--env", "local").code == 4
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    assert repo.cpl("plan", "--env", "local").code == 0


def test_base_limits_the_plan_to_workflows_changed_since_the_ref(
    control_repo: ControlRepo,
) -> None:
    repo = control_repo
    repo.edit("retail/inventory-sync", REMOVED_STEP, "          end: true\n")
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 3.0.0")

    planned = repo.cpl("plan", "--env", "local", "--base", "HEAD", "--format", "json")
    assert planned.code == 4, planned.err
    document = planned.json()
    assert document["base"] == "HEAD"
    assert [(c["workflow"], c["action"]) for c in document["changes"]] == [
        (repo.workflow("retail/inventory-sync"), "create")
    ]
    assert document["changes"][0]["bump"] == "major"
    assert document["changes"][0]["breaking"]

    markdown = repo.cpl("plan", "--env", "local", "--base", "HEAD", "--format", "markdown")
    assert markdown.out.startswith("### cpl plan: `local` (changes since `HEAD`)")
    assert "✅ allowed" in markdown.out and "inventory-sync" in markdown.out
    assert len(markdown.out) < 65_000


def test_a_moved_fingerprint_names_files_and_resources() -> None:
    saved = Fingerprint(
        "r1", "p1", "l1", {"workflows/a.yaml": "x"}, {"policies/a.rego": "y"}, {"a@t": "z"}, 3
    )
    current = Fingerprint(
        "r2", "p2", "l2", {"workflows/a.yaml": "x2"}, {"policies/b.rego": "y"}, {"a@t": "z2"}, 3
    )
    assert moved(saved, current) == [
        "the specs moved: workflows/a.yaml changed",
        "the policies moved: policies/a.rego removed, policies/b.rego added",
        "the live state moved: a@t changed",
    ]
    assert moved(saved, saved) == []
