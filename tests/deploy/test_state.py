"""The deploy state: round trip, atomic saves, the backup, and errors a user can act on."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from controlplane.deploy.lock import StateLock
from controlplane.deploy.state import (
    BACKUP_FILE,
    STATE_FILE,
    ResourceKey,
    ResourceState,
    State,
    load_state,
    save_state,
)
from controlplane.deploy.stores import StateStore
from controlplane.errors import ConfigError

APPLIED_AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def resource(
    workflow: str = "retail/order-fulfillment", target: str = "sfn", **fields: Any
) -> ResourceState:
    values: dict[str, Any] = {
        "workflow": workflow,
        "target": target,
        "engine": "stepfunctions",
        "resource_id": "arn:aws:states:us-east-1:123456789012:stateMachine:"
        + workflow.replace("/", "-"),
        "artifact_digest": "sha256:" + "a" * 64,
        "spec_version": "1.2.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "applied_at": APPLIED_AT,
    }
    return ResourceState(**{**values, **fields})


def test_a_new_environment_starts_empty(tmp_path: Path) -> None:
    state = load_state(tmp_path / "state", "prod")
    assert (state.environment, state.serial, state.resources) == ("prod", 0, ())
    assert not (tmp_path / "state").exists()  # reading creates nothing


def test_round_trip_keeps_every_field_and_bumps_the_serial(tmp_path: Path) -> None:
    state = (
        State.new("prod")
        .with_resource(resource())
        .with_resource(
            resource("health/intake", "temporal", engine="temporal", resource_id="ns/intake")
        )
    )
    written = save_state(tmp_path, state)
    assert written.serial == 1
    loaded = load_state(tmp_path, "prod")
    assert loaded == written
    assert loaded.get(ResourceKey("retail/order-fulfillment", "sfn")) == resource()

    document = json.loads((tmp_path / STATE_FILE).read_text())
    assert document["version"] == 1 and document["serial"] == 1
    assert document["lineage"] == state.lineage
    first = document["resources"][0]  # sorted by (workflow, target)
    assert first["workflow"] == "health/intake"
    assert set(document["resources"][1]) == {
        "workflow", "target", "engine", "resourceId", "artifactDigest", "specVersion",
        "gitCommit", "appliedAt", "status",
    }  # fmt: skip
    assert document["resources"][1]["appliedAt"] == "2026-01-02T03:04:05Z"


def test_each_save_keeps_the_previous_document_as_backup(tmp_path: Path) -> None:
    first = save_state(tmp_path, State.new("prod").with_resource(resource()))
    second = save_state(tmp_path, first.with_resource(resource(spec_version="1.3.0")))
    backup = json.loads((tmp_path / BACKUP_FILE).read_text())
    assert backup["serial"] == 1 and backup["resources"][0]["specVersion"] == "1.2.0"
    assert load_state(tmp_path, "prod") == second
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE, BACKUP_FILE]


@pytest.mark.parametrize("failing_rename", [1, 2])
def test_a_crash_before_the_rename_leaves_the_old_state_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_rename: int
) -> None:
    """The new document is fully written to a temporary file; the process 'dies' at the
    backup rotation (1st rename) or at the final rename (2nd)."""
    old = save_state(tmp_path, State.new("prod").with_resource(resource()))
    old_text = (tmp_path / STATE_FILE).read_text()
    real_replace = os.replace
    calls: list[str] = []

    def crash(source: Any, target: Any) -> None:
        calls.append(str(source))
        assert Path(source).read_text()  # the temporary file was written before the rename
        if len(calls) == failing_rename:
            raise OSError("simulated crash")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_state(tmp_path, old.with_resource(resource("retail/returns")))
    monkeypatch.undo()

    assert (tmp_path / STATE_FILE).read_text() == old_text
    assert load_state(tmp_path, "prod") == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no debris


def test_a_crash_while_writing_the_temporary_file_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = save_state(tmp_path, State.new("prod"))

    def broken_fsync(descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_state(tmp_path, old.with_resource(resource()))
    monkeypatch.undo()
    assert load_state(tmp_path, "prod") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"version": 1, "environment": "prod", "seri', "not JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 1, "environment": "prod", "serial": -1, "lineage": "x"}', "serial"),
        ('{"version": 1, "environment": "prod", "serial": 3}', "lineage: Field required"),
    ],
)
def test_a_corrupt_state_is_an_error_naming_the_file_and_the_backup(
    tmp_path: Path, text: str, detail: str
) -> None:
    save_state(tmp_path, save_state(tmp_path, State.new("prod")))
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_state(tmp_path, "prod")
    message = str(caught.value)
    assert f"{tmp_path / STATE_FILE}: the state file is corrupt" in message
    assert detail in message
    assert f"cp {tmp_path / BACKUP_FILE} {tmp_path / STATE_FILE}" in message
    # never silently reset: saving over it is refused too, and the backup survives
    with pytest.raises(ConfigError, match="corrupt"):
        save_state(tmp_path, State.new("prod"))
    assert json.loads((tmp_path / BACKUP_FILE).read_text())["serial"] == 1


def test_a_corrupt_state_without_backup_says_so(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("garbage")
    with pytest.raises(ConfigError, match="there is no backup"):
        load_state(tmp_path, "prod")


def test_other_versions_environments_and_lineages_are_refused(tmp_path: Path) -> None:
    state = save_state(tmp_path, State.new("prod"))
    with pytest.raises(ConfigError, match="environment 'prod', not 'staging'"):
        load_state(tmp_path, "staging")
    with pytest.raises(ConfigError, match="belongs to lineage"):
        save_state(tmp_path, State.new("prod"))
    with pytest.raises(ConfigError, match=r"changed while this command ran \(serial 1, expected 0"):
        save_state(tmp_path, state.model_copy(update={"serial": 0}))
    (tmp_path / STATE_FILE).write_text(json.dumps({**state.to_json(), "version": 2}))
    with pytest.raises(ConfigError, match="state version 2 is not supported"):
        load_state(tmp_path, "prod")


def test_a_removed_state_with_a_backup_is_not_reset(tmp_path: Path) -> None:
    save_state(tmp_path, save_state(tmp_path, State.new("prod")))
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(ConfigError, match="is missing but its backup"):
        load_state(tmp_path, "prod")


def test_the_store_records_each_resource_under_the_lock(tmp_path: Path) -> None:
    with StateLock(tmp_path, timeout=0) as lock:
        store = StateStore(tmp_path, "prod", lock)
        store.record(resource(status="pending"))
        store.record(resource())
        store.record(resource("retail/returns"))
        store.forget(ResourceKey("retail/returns", "sfn"))
        assert store.state.serial == 4
    on_disk = load_state(tmp_path, "prod")
    assert on_disk == store.state
    assert [(r.workflow, r.status) for r in on_disk.resources] == [
        ("retail/order-fulfillment", "applied")
    ]
    with pytest.raises(RuntimeError, match="without holding its lock"):
        store.record(resource())
