"""`cpl audit verify --env` notices an audit log that lost its tail or is gone: the hash chain
cannot, so the log is compared with the deploy state (serials, applied resources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.cli import run
from tests.deploy.conftest import ControlRepo


def _apply(repo: Path) -> None:
    assert run(["apply", "--repo", str(repo), "--env", "files", "--yes"]) == 0


def _verify(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["audit", "verify", "--repo", str(repo), "--env", "files"])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def applied_twice(files_repo: Path) -> Path:
    """Two applies: create the workflow, then update it (a new version)."""
    _apply(files_repo)
    workflow = files_repo / "workflows" / "retail" / "price-feed-export.yaml"
    text = workflow.read_text(encoding="utf-8")
    workflow.write_text(text.replace("version: 3.0.1", "version: 3.0.2"), encoding="utf-8")
    _apply(files_repo)
    return files_repo


def _log(repo: Path) -> Path:
    return repo / ".cpl" / "audit" / "files.jsonl"


def _cut(repo: Path, lines: int) -> None:
    log = _log(repo)
    kept = log.read_text(encoding="utf-8").splitlines(keepends=True)[:-lines]
    log.write_text("".join(kept), encoding="utf-8")


def _state_serial(repo: Path) -> int:
    state = json.loads((repo / ".cpl/state/files/state.json").read_text(encoding="utf-8"))
    return int(state["serial"])


def test_a_complete_log_verifies(applied_twice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _verify(applied_twice, capsys)
    assert code == 0, text
    assert "ok (" in text


def test_a_deleted_log_is_reported(applied_twice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(applied_twice).unlink()
    code, text = _verify(applied_twice, capsys)
    assert code == 1
    assert f"at serial {_state_serial(applied_twice)}" in text
    assert "there is no log" in text and "deleted" in text


@pytest.mark.parametrize("lines", [1, 2, 3, 5])
def test_a_log_cut_at_its_end_is_reported(
    applied_twice: Path, lines: int, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(_log(applied_twice).read_text(encoding="utf-8").splitlines())
    _cut(applied_twice, lines)
    code, text = _verify(applied_twice, capsys)
    assert code == 1, text
    assert f"files.jsonl:{before - lines + 1}:" in text
    assert "cut" in text


def test_a_log_cut_back_to_an_earlier_apply_is_reported(
    applied_twice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _log(applied_twice)
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    types = [json.loads(line)["type"] for line in lines]
    first_completed = types.index("dev.cpl.apply.completed")
    log.write_text("".join(lines[: first_completed + 1]), encoding="utf-8")
    code, text = _verify(applied_twice, capsys)
    assert code == 1
    assert f"but the deploy state of 'files' is at serial {_state_serial(applied_twice)}" in text


def test_a_restored_older_state_is_reported(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _apply(files_repo)
    state_file = files_repo / ".cpl/state/files/state.json"
    older = state_file.read_text(encoding="utf-8")
    workflow = files_repo / "workflows" / "retail" / "price-feed-export.yaml"
    text = workflow.read_text(encoding="utf-8")
    workflow.write_text(text.replace("version: 3.0.1", "version: 3.0.2"), encoding="utf-8")
    _apply(files_repo)
    state_file.write_text(older, encoding="utf-8")
    code, output = _verify(files_repo, capsys)
    assert code == 1
    assert "restored from an older copy" in output


def test_the_compliance_report_shows_a_cut_log_as_broken(
    applied_twice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cut(applied_twice, 2)
    capsys.readouterr()
    run(["report", "--repo", str(applied_twice), "--env", "files", "--format", "json"])
    audit = json.loads(capsys.readouterr().out)["evidence"]["audit"]
    assert audit["ok"] is False
    assert "cut" in audit["logs"][0]["reason"]


def test_a_log_of_applies_on_every_engine_verifies_and_its_cut_is_noticed(
    control_repo: ControlRepo,
) -> None:
    """The real engines: Step Functions (moto), Temporal with its shared namespace, Argo, and
    regulated workflows, whose events carry identifiers only."""
    repo = control_repo
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    verified = repo.cpl("audit", "verify", "--env", "local")
    assert verified.code == 0, verified.out + verified.err
    log = repo.root / ".cpl" / "audit" / "local.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:-3]), encoding="utf-8")
    cut = repo.cpl("audit", "verify", "--env", "local")
    assert cut.code == 1 and "cut" in cut.out + cut.err
