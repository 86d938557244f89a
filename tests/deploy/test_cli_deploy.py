"""`cpl plan` / `cpl apply` end to end on the real local engines (moto, Temporal dev server)
and GitOps files for Argo: create, plan-is-empty, update, delete, and stale plan files."""

from __future__ import annotations

import boto3

from tests.deploy.conftest import ControlRepo

RETRY = "retry: {maxAttempts: 3, initialInterval: 500ms"


def _machines(repo: ControlRepo, tenant: str) -> list[str]:
    client = boto3.client(
        "stepfunctions",
        endpoint_url=repo.moto,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    names = [m["name"] for m in client.list_state_machines()["stateMachines"]]
    return sorted(n for n in names if n.startswith(f"{tenant}-"))


def test_plan_apply_then_plan_is_empty_on_every_engine(control_repo: ControlRepo) -> None:
    repo = control_repo
    plan_file = repo.root / "plan.json"
    first = repo.cpl("plan", "--env", "local", "--format", "json", "--out", str(plan_file))
    assert first.code == 4, first.err
    document = first.json()
    assert set(document) >= {"environment", "digest", "base", "changes", "policy", "summary"}
    # four workflows, the Temporal namespace, a resource of its own, and the Prometheus
    # rules files of the Temporal and Argo targets
    assert document["summary"] == {"create": 7, "update": 0, "delete": 0, "noop": 0}
    rules = {c["workflow"] for c in document["changes"] if c["workflow"].startswith("shared:rules")}
    assert rules == {"shared:rules/temporal-local", "shared:rules/argo-local"}
    engines = {c["engine"] for c in document["changes"]}
    assert engines == {"stepfunctions", "temporal", "argo"}
    assert document["policy"]["ok"] is True
    assert set(document["fingerprint"]) >= {"repo", "policies", "live"}

    applied = repo.cpl("apply", "--env", "local", "--plan", str(plan_file))  # no state yet
    assert applied.code == 0, applied.out + applied.err
    assert "7 applied" in applied.out
    for target in ("temporal-local", "argo-local"):  # where the local Prometheus loads them
        rules_file = repo.root / ".cpl/prometheus" / f"{target}.rules.yml"
        assert rules_file.read_text().startswith("# cpl-digest: sha256:")

    again = repo.cpl("plan", "--env", "local")
    assert again.code == 0, again.out + again.err
    assert "no changes: 7 resource(s) up to date" in again.out
    state = repo.state()
    assert {r["status"] for r in state["resources"]} == {"applied"}
    assert len(state["resources"]) == 7
    assert _machines(repo, repo.tenants["retail"]) == [f"{repo.tenants['retail']}-inventory-sync"]
    manifests = sorted(p.name for p in (repo.root / "deploy/argo").rglob("*.yaml"))
    argo = f"{repo.tenants['retail']}-price-feed-export"
    assert manifests == [f"{argo}.identity.yaml", f"{argo}.yaml"]
    events = (repo.root / ".cpl/audit/local.jsonl").read_text().splitlines()
    assert sum('"dev.cpl.apply.succeeded"' in line for line in events) == 7
    assert any('"dev.cpl.apply.completed"' in line for line in events)
    assert any('"dev.cpl.plan.created"' in line for line in events)


def test_update_and_delete_show_field_diffs_then_converge(control_repo: ControlRepo) -> None:
    repo = control_repo
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 2.0.1")
    repo.edit("retail/inventory-sync", RETRY, "retry: {maxAttempts: 4, initialInterval: 500ms")
    repo.file("health/appointment-reminders").unlink()

    planned = repo.cpl("plan", "--env", "local", "--format", "json")
    assert planned.code == 4, planned.err
    changes = {(c["workflow"], c["action"]): c for c in planned.json()["changes"]}
    update = changes[(repo.workflow("retail/inventory-sync"), "update")]
    assert update["breaking"] == []
    retries = [d for d in update["diff"] if d["path"].endswith("/Retry/0/MaxAttempts")]
    assert retries and all((d["before"], d["after"]) == (2, 3) for d in retries), update["diff"]
    assert all(d["path"].startswith("/") for d in update["diff"])
    delete = changes[(repo.workflow("health/appointment-reminders"), "delete")]
    assert delete["resourceId"].startswith("arn:aws:states:")
    assert planned.json()["summary"] == {"create": 0, "update": 1, "delete": 1, "noop": 5}

    text = repo.cpl("plan", "--env", "local")
    assert "~ update" in text.out and "- delete" in text.out and "2.0.0 → 2.0.1" in text.out

    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert "1 applied, 1 deleted" in applied.out
    assert repo.cpl("plan", "--env", "local").code == 0
    assert _machines(repo, repo.tenants["health"]) == []
    assert len(repo.state()["resources"]) == 3 + 1 + 2  # and the namespace, the rules files


def test_apply_refuses_a_stale_plan_file_naming_what_moved(control_repo: ControlRepo) -> None:
    repo = control_repo
    plan_file = repo.root / "plan.json"
    assert repo.cpl("plan", "--env", "local", "--out", str(plan_file)).code == 4
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 2.0.1")

    stale = repo.cpl("apply", "--env", "local", "--plan", str(plan_file))
    assert stale.code == 1
    assert "the plan is stale" in stale.err
    assert "the specs moved: workflows/retail/inventory-sync.yaml changed" in stale.err
    assert repo.state()["resources"] == []

    repo.edit("retail/inventory-sync", "version: 2.0.1", "version: 2.0.0")
    fresh = repo.root / "fresh.json"
    assert repo.cpl("plan", "--env", "local", "--out", str(fresh)).code == 4
    # someone else deploys in between: the live state moved
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    moved = repo.cpl("apply", "--env", "local", "--plan", str(fresh))
    assert moved.code == 1
    assert "the live state moved" in moved.err

    current = repo.root / "current.json"
    repo.edit("retail/inventory-sync", "version: 2.0.0", "version: 2.0.1")
    repo.edit("retail/inventory-sync", RETRY, "retry: {maxAttempts: 5, initialInterval: 500ms")
    assert repo.cpl("plan", "--env", "local", "--out", str(current)).code == 4
    done = repo.cpl("apply", "--env", "local", "--plan", str(current))
    assert done.code == 0, done.out + done.err
    assert "1 applied" in done.out


def test_a_temporal_update_shows_the_spec_fields_that_changed(control_repo: ControlRepo) -> None:
    """Temporal keeps the spec by its digest: the plan shows the workflow's own fields."""
    repo = control_repo
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    repo.edit("finance/month-end-close", "timeout: 5d", "timeout: 6d")
    repo.edit("finance/month-end-close", "version: 3.1.0", "version: 3.1.1")

    planned = repo.cpl("plan", "--env", "local", "--format", "json")
    assert planned.code == 4, planned.out + planned.err
    (update,) = [c for c in planned.json()["changes"] if c["action"] == "update"]
    assert update["workflow"] == repo.workflow("finance/month-end-close")
    paths = {d["path"]: (d["before"], d["after"]) for d in update["diff"]}
    assert paths["/spec/timeout"] == (5 * 86400, 6 * 86400)
    assert paths["/metadata/version"] == ("3.1.0", "3.1.1")
    assert not {"/spec/digest", "/spec/payload", "/schedule/payload"} & set(paths)
