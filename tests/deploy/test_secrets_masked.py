"""Secret values never reach an output or a stored file of plan, apply and drift: they are
masked with a digest (`***sha256:…`), so a changed secret still shows as changed, and an
unchanged one does not make every plan an update (real moto and Temporal engines)."""

from __future__ import annotations

import json
from pathlib import Path

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ControlRepo, write_repo

SFN = "retail/inventory-sync"
TEMPORAL = "finance/month-end-close"

# one value per class: number and list under secret keys, a Bearer value, a password in a
# connection string, a token in a URL query, a key under a secret word, an AWS key id
OLD = {
    "password": "31337420",
    "apiKeys": '["k-first-0001", "k-second-0002"]',
    "headers": '{Authorization: "Bearer abcdefghijklmnop0123456789"}',
    "dsn": '"postgres://admin:pg-pass-0001@db/x"',
    "hook": '"https://hooks.example.com/x?token=hook-token-0001"',
    "client_secret": '"cs-value-0001"',
    "note": '"AKIAIOSFODNN7EXAMPLE"',
}
NEW = {
    "password": "99887766",
    "apiKeys": '["k-first-0009", "k-second-0002"]',
    "headers": '{Authorization: "Bearer zyxwvutsrqponm9876543210"}',
    "dsn": '"postgres://admin:pg-pass-0009@db/x"',
    "hook": '"https://hooks.example.com/x?token=hook-token-0009"',
    "client_secret": '"cs-value-0009"',
    "note": '"AKIAZZZZZZZZZZZZZZZZ"',
}
PLANTED = [
    "31337420", "99887766", "k-first-0001", "k-first-0009", "k-second-0002",
    "abcdefghijklmnop0123456789", "zyxwvutsrqponm9876543210", "pg-pass-0001", "pg-pass-0009",
    "hook-token-0001", "hook-token-0009", "cs-value-0001", "cs-value-0009",
    "AKIAIOSFODNN7EXAMPLE", "AKIAZZZZZZZZZZZZZZZZ",
]  # fmt: skip


def _flow(values: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items())


def _plant(repo: ControlRepo, values: dict[str, str]) -> None:
    sfn = "parameters: {since: $.lastRun, source: wms-eu"
    repo.edit(SFN, sfn, f"{sfn}, {_flow(values)}")
    temporal = "parameters: {period: $.period, entities: $.entities"
    repo.edit(TEMPORAL, temporal, f"{temporal}, {_flow(values)}")


def _assert_clean(text: str, where: str) -> None:
    leaked = [value for value in PLANTED if value in text]
    assert not leaked, f"{where} shows {leaked}"


def test_plans_drift_and_stored_specs_mask_secrets(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [SFN, TEMPORAL])
    env = repo.root / "environments/local.yaml"
    env.write_text(env.read_text().replace("rules: {}", "rules: {CPL-P018: advisory}", 1))
    _plant(repo, OLD)

    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    specs = sorted((repo.root / ".cpl/state/local/specs").rglob("*.json"))
    assert len(specs) == 2
    for spec in specs:
        stored = spec.read_text()
        _assert_clean(stored, str(spec))
        assert "***sha256:" in stored
        assert "$.period" in stored or "$.lastRun" in stored  # data paths stay readable

    # masked copies compare equal to the masked current spec: nothing to do
    again = repo.cpl("plan", "--env", "local", "--format", "json")
    assert again.code == 0, again.out + again.err

    repo.edit(SFN, "version: 2.0.0", "version: 2.0.1")
    repo.edit(TEMPORAL, "version: 3.1.0", "version: 3.1.1")
    repo.edit(TEMPORAL, "timeout: 5d", "timeout: 6d")  # a non-secret field still shows
    for key in (SFN, TEMPORAL):
        path = repo.file(key)
        text = path.read_text()
        for name, value in OLD.items():
            text = text.replace(f"{name}: {value}", f"{name}: {NEW[name]}")
        path.write_text(text)

    plan_file = repo.root / "plan.json"
    planned = repo.cpl("plan", "--env", "local", "--format", "json", "--out", str(plan_file))
    assert planned.code == 4, planned.out + planned.err
    _assert_clean(planned.out, "plan --format json")
    _assert_clean(plan_file.read_text(), "the plan file")
    text = repo.cpl("plan", "--env", "local")
    _assert_clean(text.out + text.err, "plan (text)")
    updates = {c["workflow"]: c for c in json.loads(plan_file.read_text())["changes"]}
    for key in (SFN, TEMPORAL):
        diff = {d["path"].rsplit("/", 1)[-1]: d for d in updates[repo.workflow(key)]["diff"]}
        password = diff["password"]
        assert str(password["before"]).startswith("***sha256:")
        assert str(password["after"]).startswith("***sha256:")
        assert password["before"] != password["after"]
    temporal_paths = {d["path"]: d for d in updates[repo.workflow(TEMPORAL)]["diff"]}
    assert (
        temporal_paths["/spec/timeout"]["before"],
        temporal_paths["/spec/timeout"]["after"],
    ) == (
        5 * 86400,
        6 * 86400,
    )

    for output_format in ("json", "text", "markdown", "sarif"):
        drift = repo.cpl("drift", "--env", "local", "--format", output_format)
        assert drift.code == 5, drift.out + drift.err
        _assert_clean(drift.out + drift.err, f"drift --format {output_format}")
    report = json.loads(repo.cpl("drift", "--env", "local", "--format", "json").out)
    masked = [
        change
        for item in report["items"]
        for change in item["diff"]
        if change["path"].endswith("/password")
    ]
    assert masked and all(str(c["expected"]).startswith("***sha256:") for c in masked)

    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    _assert_clean(applied.out + applied.err, "apply")
    for spec in (repo.root / ".cpl/state/local/specs").rglob("*.json"):
        _assert_clean(spec.read_text(), str(spec))
    audit = (repo.root / ".cpl/audit/local.jsonl").read_text()
    _assert_clean(audit, "the audit log")
    assert repo.cpl("plan", "--env", "local").code == 0
