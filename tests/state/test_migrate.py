"""`cpl state migrate`: a state and its applied specs, from a directory to S3 and back."""

from __future__ import annotations

import json

from controlplane.deploy.lock import StateLock
from controlplane.deploy.stores import LocalStore, StateStore
from tests.deploy.conftest import ControlRepo
from tests.state.conftest import Remote, resource, use_remote_state

SPECS = {("retail/orders", "1.0.0"): '{"v": 1}\n', ("retail/billing", "2.1.0"): '{"v": 2}\n'}


def _local_state(repo: ControlRepo) -> LocalStore:
    directory = repo.root / ".cpl/state/local"
    store = LocalStore(directory)
    with StateLock(directory, timeout=0) as lock:
        state = StateStore(store, "local", lock)
        state.record(resource("orders"))
        state.record(resource("billing", "2.1.0"))
        for (workflow, version), text in SPECS.items():
            state.save_spec(workflow, version, text)
    return store


def _events(repo: ControlRepo, event_type: str) -> list[dict]:
    lines = (repo.root / ".cpl/audit/local.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == event_type]


def test_migrate_to_s3_and_back_loses_nothing(offline_repo: ControlRepo, remote: Remote) -> None:
    source = _local_state(offline_repo)
    original = (source.directory / "state.json").read_text()

    moved = offline_repo.cpl(
        "state", "migrate", "--env", "local", "--to", remote.state_url,
        "--lock", remote.lock_url,
    )  # fmt: skip
    assert moved.code == 0, moved.err
    assert f"state: {remote.state_url}" in moved.out and f"lock: {remote.lock_url}" in moved.out
    assert json.loads(remote.object_text("cpl/local.cpl-state.json")) == json.loads(original)
    assert remote.object_text("cpl/local.cpl-specs/retail/billing@2.1.0.json") == '{"v": 2}\n'
    assert (source.directory / "state.json").read_text() == original  # the source stays

    again = offline_repo.cpl(
        "state", "migrate", "--env", "local", "--to", remote.state_url,
        "--lock", remote.lock_url, "--format", "json",
    )  # fmt: skip
    assert again.code == 0, again.err
    assert again.json()["stateCopied"] is False and again.json()["specsCopied"] == 0

    use_remote_state(offline_repo, remote)
    shown = offline_repo.cpl("state", "show", "--env", "local", "--format", "json").json()
    assert shown["serial"] == 2 and shown["resources"] == 2 and shown["specs"] == 2

    back = offline_repo.cpl("state", "migrate", "--env", "local", "--to", ".cpl/state/back")
    assert back.code == 0, back.err
    returned = LocalStore(offline_repo.root / ".cpl/state/back")
    assert json.loads((returned.directory / "state.json").read_text()) == json.loads(original)
    assert {spec: returned.read_spec(*spec) for spec in returned.specs()} == SPECS

    migrated = _events(offline_repo, "dev.cpl.state.migrated")
    assert [(e["data"]["from"], e["data"]["to"]) for e in migrated][-1] == (
        f"s3://{remote.bucket}/cpl/local.cpl-state.json",
        str(returned.directory / "state.json"),
    )


def test_migrate_refuses_a_destination_holding_another_state(
    offline_repo: ControlRepo, remote: Remote
) -> None:
    _local_state(offline_repo)
    other = LocalStore(offline_repo.root / ".cpl/state/other")
    with StateLock(other.directory, timeout=0) as lock:
        StateStore(other, "local", lock).record(resource("shipping"))
    before = (other.directory / "state.json").read_text()

    result = offline_repo.cpl("state", "migrate", "--env", "local", "--to", ".cpl/state/other")

    assert result.code == 1
    assert "already holds another state" in result.err and "Traceback" not in result.err
    assert (other.directory / "state.json").read_text() == before


def test_migrate_to_s3_needs_a_lock_and_stays_in_the_repo(offline_repo: ControlRepo) -> None:
    _local_state(offline_repo)
    no_lock = offline_repo.cpl("state", "migrate", "--env", "local", "--to", "s3://bucket/x")
    assert no_lock.code == 1 and "needs a lock" in no_lock.err
    outside = offline_repo.cpl("state", "migrate", "--env", "local", "--to", "../elsewhere")
    assert outside.code == 1 and "outside the control repo" in outside.err


def test_migrate_without_a_state_says_so(offline_repo: ControlRepo, remote: Remote) -> None:
    result = offline_repo.cpl(
        "state", "migrate", "--env", "local", "--to", remote.state_url,
        "--lock", remote.lock_url,
    )  # fmt: skip
    assert result.code == 1 and "no deploy state in" in result.err
    assert remote.object_keys() == []
