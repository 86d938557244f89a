"""The state lock against real competing processes: bounded waits, crash release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.deploy.lock import HOLDER_FILE, LOCK_FILE, LockTimeout, StateLock, read_holder
from tests.conftest import ROOT

HOLD = """
import sys, time
from pathlib import Path
from controlplane.deploy.lock import StateLock
lock = StateLock(Path(sys.argv[1]), command="cpl apply --env prod", timeout=10)
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on tmp_path (killed at the end)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_held_lock_times_out_naming_its_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(LockTimeout) as caught:
        StateLock(tmp_path, timeout=1.0, poll_interval=0.05).acquire()
    waited = time.monotonic() - started
    assert 1.0 <= waited < 2.0
    message = str(caught.value)
    assert f"held by pid {holder.pid} (cpl apply --env prod)" in message
    assert "on host " in message and " since " in message and "after 1s" in message
    assert caught.value.exit_code == 1
    info = read_holder(tmp_path)
    assert info is not None and info.pid == holder.pid and info.command == "cpl apply --env prod"


def test_the_lock_is_free_once_its_holder_is_killed(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockTimeout):
        StateLock(tmp_path, timeout=0).acquire()
    holder.send_signal(signal.SIGKILL)  # no cleanup runs: the holder file stays behind
    holder.wait()
    assert read_holder(tmp_path) is not None
    with StateLock(tmp_path, timeout=5, command="cpl apply --env prod") as lock:
        assert lock.held
        info = read_holder(tmp_path)
        assert info is not None and info.pid == os.getpid()
    assert not lock.held
    assert not (tmp_path / HOLDER_FILE).exists()
    assert (tmp_path / LOCK_FILE).exists()  # never deleted: waiters must lock the same file


def test_a_stale_holder_file_does_not_block(tmp_path: Path) -> None:
    stale = {
        "pid": 999_999,
        "host": "elsewhere",
        "user": "ghost",
        "command": "cpl apply --env prod",
        "startedAt": "2020-01-01T00:00:00Z",
    }
    (tmp_path / HOLDER_FILE).write_text(json.dumps(stale))
    started = time.monotonic()
    with StateLock(tmp_path, timeout=0):
        assert time.monotonic() - started < 0.5
        info = read_holder(tmp_path)
        assert info is not None and info.pid == os.getpid()


def test_a_second_lock_in_the_same_process_waits_too(tmp_path: Path) -> None:
    with StateLock(tmp_path, timeout=0), pytest.raises(LockTimeout, match=f"pid {os.getpid()}"):
        StateLock(tmp_path, timeout=0.2).acquire()
    with StateLock(tmp_path, timeout=0):  # released on exit of the first
        pass


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError), StateLock(tmp_path, timeout=0):
        raise ValueError("apply failed")
    with StateLock(tmp_path, timeout=0):
        pass
