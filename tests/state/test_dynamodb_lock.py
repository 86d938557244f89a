"""The lock of a state in S3: a DynamoDB item (on moto) with a holder and a renewed lease."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from controlplane.deploy.lock import LockTimeout
from controlplane.deploy.locks.dynamodb import DynamoLock
from controlplane.deploy.stores import StateStore
from controlplane.deploy.stores.s3 import S3Store
from tests.deploy.conftest import ControlRepo
from tests.state.conftest import Remote, resource, use_remote_state

LOCK_ID = "bucket/cpl/prod.cpl-state.json"


def _lock(
    remote: Remote, *, timeout: float = 0, lease: float = 60, command: str = "cpl apply"
) -> DynamoLock:
    return DynamoLock(
        remote.table,
        LOCK_ID,
        remote.aws,
        timeout=timeout,
        command=command,
        lease=lease,
        poll_interval=0.05,
    )


def _item(remote: Remote) -> dict[str, Any]:
    answer = remote.dynamodb.get_item(
        TableName=remote.table, Key={"LockID": {"S": LOCK_ID}}, ConsistentRead=True
    )
    return dict(answer.get("Item") or {})


def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_the_lock_is_an_item_naming_its_holder_removed_on_release(remote: Remote) -> None:
    with _lock(remote, command="cpl apply --env prod") as lock:
        assert lock.held
        item = _item(remote)
        assert item
        holder = json.loads(item["Info"]["S"])
        assert holder["pid"] == os.getpid() and holder["command"] == "cpl apply --env prod"
        assert {"host", "user", "startedAt"} <= set(holder)
        assert float(item["Expires"]["N"]) > time.time() + 30
    assert not lock.held
    assert _item(remote) == {}


def test_a_second_holder_gives_up_after_its_timeout_naming_the_first(remote: Remote) -> None:
    with _lock(remote, command="cpl apply --env prod --yes"):
        waiting = _lock(remote, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as raised:
            waiting.acquire()
        assert time.monotonic() - started >= 0.3
    message = str(raised.value)
    assert f"pid {os.getpid()} (cpl apply --env prod --yes)" in message
    assert "gave up after 0.3s" in message and "cpl state unlock" in message


def test_a_waiting_holder_takes_the_lock_once_it_is_released(remote: Remote) -> None:
    first = _lock(remote)
    first.acquire()
    second = _lock(remote, timeout=20)
    taken = threading.Event()

    def wait_for_it() -> None:
        second.acquire()
        taken.set()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    assert not taken.wait(0.3)  # still held by the first
    first.release()
    thread.join(20)
    assert taken.is_set() and second.held
    second.release()


def test_the_lock_of_a_runner_that_died_expires(remote: Remote) -> None:
    # What a runner killed while applying leaves behind: its item, never renewed again.
    remote.dynamodb.put_item(
        TableName=remote.table,
        Item={
            "LockID": {"S": LOCK_ID},
            "Info": {
                "S": json.dumps(
                    {
                        "pid": 1,
                        "host": "gone",
                        "user": "ci",
                        "command": "cpl apply",
                        "startedAt": "2026-01-01T00:00:00Z",
                    }
                )
            },
            "Token": {"S": "theirs"},
            "Expires": {"N": str(int(time.time()) - 1)},
        },
    )
    with _lock(remote) as lock:
        assert lock.held
        assert _item(remote)["Token"]["S"] != "theirs"


def test_a_long_apply_renews_its_lease(remote: Remote) -> None:
    with _lock(remote, lease=2) as lock:
        first = float(_item(remote)["Expires"]["N"])
        _until(lambda: float(_item(remote)["Expires"]["N"]) > first)
        # past the first lease's end, the lock is still held
        _until(lambda: time.time() > first + 0.5)
        assert lock.held
        with pytest.raises(LockTimeout):
            _lock(remote).acquire()


def test_a_holder_whose_lock_was_broken_cannot_write_the_state(remote: Remote) -> None:
    store = S3Store(remote.state_url, "prod", remote.aws)
    lock = DynamoLock(
        remote.table, store.lock_key, remote.aws, timeout=0, command="cpl apply", lease=1.5
    )
    with lock:
        state = StateStore(store, "prod", lock)
        assert _lock_of(remote, store.lock_key).force_unlock() is not None
        _until(lambda: not lock.held)  # the next renewal finds the lock gone
        with pytest.raises(RuntimeError, match="without holding its lock"):
            state.record(resource("orders"))
    assert S3Store(remote.state_url, "prod", remote.aws).read() is None


def _lock_of(remote: Remote, key: str) -> DynamoLock:
    return DynamoLock(remote.table, key, remote.aws, timeout=0, command="cpl state unlock")


def test_cpl_state_unlock_force_removes_a_stuck_lock_and_audits_it(
    offline_repo: ControlRepo, remote: Remote
) -> None:
    use_remote_state(offline_repo, remote)
    key = f"{remote.bucket}/cpl/local.cpl-state.json"
    stuck = _lock_of(remote, key)
    stuck.command = "cpl apply --env local --yes"
    stuck.acquire()
    try:
        refused = offline_repo.cpl("state", "unlock", "--env", "local")
        assert refused.code == 1 and "--force" in refused.err

        shown = offline_repo.cpl("state", "show", "--env", "local", "--format", "json")
        assert shown.code == 0
        assert shown.json()["holder"]["command"] == "cpl apply --env local --yes"

        result = offline_repo.cpl("state", "unlock", "--env", "local", "--force")
        assert result.code == 0, result.err
        assert "removed the lock" in result.out and "cpl apply --env local --yes" in result.out
        again = offline_repo.cpl("state", "unlock", "--env", "local", "--force")
        assert again.code == 0 and "not locked" in again.out
    finally:
        stuck.release()
    events = [
        json.loads(line)
        for line in (offline_repo.root / ".cpl/audit/local.jsonl").read_text().splitlines()
    ]
    unlocked = [e for e in events if e["type"] == "dev.cpl.state.unlocked"]
    assert len(unlocked) == 1
    data = unlocked[0]["data"]
    assert data["holder"]["command"] == "cpl apply --env local --yes"
    assert data["state"] == f"s3://{key}" and data["lock"].startswith(remote.lock_url)
