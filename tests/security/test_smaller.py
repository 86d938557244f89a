"""Smaller integrity defects: what a user is told must match what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import controlplane.cli.deploy
from controlplane.cli import run


def test_ctrl_c_after_an_apply_finished_reports_its_outcome(
    files_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while cpl closes its engine connections, after everything was applied."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(controlplane.cli.deploy, "close_clients", interrupted)
    code = run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Aborted." not in err
    assert "interrupted after the work was done: applied: 1 applied" in err
    state = json.loads((files_repo / ".cpl/state/files/state.json").read_text("utf-8"))
    assert [r["status"] for r in state["resources"]] == ["applied"]
    # the next command starts afresh: an interrupt there is an abort again
    monkeypatch.setattr(controlplane.cli.deploy, "make_plan", interrupted)
    assert run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"]) == 1
    assert "Aborted." in capsys.readouterr().err


@pytest.mark.parametrize(
    "breakage",
    [
        ("version: 3.0.1", "version: [3"),  # YAML syntax
        ("activity: pricing.merge-feed", "activity: pricing.no-binding"),  # unplaceable
    ],
)
def test_a_plan_of_invalid_documents_is_not_no_changes(
    files_repo: Path,
    breakage: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    workflow = files_repo / "workflows" / "retail" / "price-feed-export.yaml"
    workflow.write_text(workflow.read_text("utf-8").replace(*breakage), encoding="utf-8")
    plan_file = files_repo / "plan.json"
    argv = ["plan", "--repo", str(files_repo), "--env", "files"]
    assert run([*argv, "--out", str(plan_file)]) == 1
    out, err = capsys.readouterr()
    assert "no changes" not in out + err
    assert "no plan: " in out and "invalid document(s)" in out
    assert not plan_file.exists() and "no plan file written" in err
    assert run([*argv, "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["planned"] is False
    assert run([*argv, "--format", "markdown"]) == 1
    markdown = capsys.readouterr().out
    assert "No changes" not in markdown and "**No plan:**" in markdown
