"""An internal error's traceback goes to a file only its user can read, in a per-user folder,
never through a folder or link another user planted."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

import controlplane.cli.validate
from controlplane.cli import run


@pytest.fixture
def crashing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`cpl validate` fails with an unexpected error; HOME and the temp folder are private to
    the test. Returns the test's temp folder."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(controlplane.cli.validate, "validate_repo", boom)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    return temp


def _crash(capsys: pytest.CaptureFixture[str]) -> str:
    assert run(["validate", "--repo", "."]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err
    return err


def _log_of(err: str) -> Path:
    found = re.search(r"traceback written to (\S+)\)", err)
    assert found, err
    return Path(found.group(1))


def _assert_private(log: Path) -> None:
    assert "RuntimeError: boom" in log.read_text(encoding="utf-8")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_the_crash_log_goes_to_the_users_state_folder(
    crashing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _log_of(_crash(capsys))
    assert log.parent == tmp_path / "home" / ".local" / "state" / "cpl"
    _assert_private(log)


def test_xdg_state_home_is_honoured(
    crashing: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = _log_of(_crash(capsys))
    assert log.parent == tmp_path / "state" / "cpl"
    _assert_private(log)


def test_planted_links_and_folders_are_never_used(
    crashing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attacker = tmp_path / "attacker"
    attacker.mkdir(mode=0o777)
    (tmp_path / "home" / ".local" / "state").mkdir(parents=True)
    (tmp_path / "home" / ".local" / "state" / "cpl").symlink_to(attacker)
    (crashing / f"cpl-{os.getuid()}").symlink_to(attacker)
    err = _crash(capsys)
    assert "no private folder for a crash log" in err
    assert list(attacker.iterdir()) == []


def test_a_shared_temp_folder_is_used_per_user_and_only_if_it_is_ours(
    crashing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "home").write_text("not a folder\n", encoding="utf-8")  # no home state
    log = _log_of(_crash(capsys))
    assert log.parent == crashing / f"cpl-{os.getuid()}"
    _assert_private(log)
    if os.getuid() == 0:  # root can plant a folder owned by someone else
        os.chown(log.parent, 4242, 4242)
        assert "no private folder for a crash log" in _crash(capsys)
