"""Which of cpl's exit codes pass the action's step, run with a `cpl` that only exits with the
code asked for: changes pending (plan, 4) and drift (5) pass, a denial (3) or an error (1)
fails, and the outputs are set either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ci.actions import Runner, environment_with_cpl

PASSES = {
    ("validate", 0): True,
    ("validate", 1): False,
    ("check", 0): True,
    ("check", 3): False,
    ("check", 1): False,
    ("plan", 0): True,
    ("plan", 4): True,
    ("plan", 3): False,
    ("plan", 1): False,
    ("apply", 0): True,
    ("apply", 1): False,
    ("apply", 3): False,
    ("drift", 0): True,
    ("drift", 5): True,
    ("drift", 1): False,
}
OUTCOMES = {0: "ok", 1: "error", 3: "denied", 4: "changes", 5: "drift"}


@pytest.fixture
def fake_cpl(tmp_path: Path) -> Path:
    """A `cpl` that writes the file of --output and the plan file, then exits $FAKE_CODE."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "cpl"
    script.write_text(
        "#!/bin/bash\n"
        'while [ $# -gt 0 ]; do case "$1" in --output|--out) echo report > "$2"; shift;; esac;'
        " shift; done\n"
        'exit "$FAKE_CODE"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(("command", "code"), list(PASSES), ids=lambda v: str(v))
def test_exit_code_passes_or_fails_the_step(
    tmp_path: Path, fake_cpl: Path, command: str, code: int
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "plan.json").write_text("{}", encoding="utf-8")  # apply reads a plan file
    environment = {**environment_with_cpl(fake_cpl), "FAKE_CODE": str(code)}
    runner = Runner(work, {}, environment)
    step = runner.action(command=command, environment="staging", install="false")
    assert (step.outcome == "success") is PASSES[(command, code)], step.stdout + step.stderr
    assert step.outputs["exit-code"] == str(code)
    assert step.outputs["outcome"] == OUTCOMES[code]
    if command in ("check", "plan"):
        assert Path(step.outputs["report"]).is_file()
    if not PASSES[(command, code)]:
        assert f"::error::cpl {command} failed with exit {code}" in step.stdout


def test_apply_without_a_plan_file_applies_nothing(tmp_path: Path, fake_cpl: Path) -> None:
    environment = {**environment_with_cpl(fake_cpl), "FAKE_CODE": "0"}
    step = Runner(tmp_path, {}, environment).action(
        command="apply", environment="staging", install="false", **{"plan-file": "missing.json"}
    )
    assert step.outcome == "failure"
    assert "cpl applies only a reviewed plan" in step.stdout


def test_a_command_needs_its_environment(tmp_path: Path, fake_cpl: Path) -> None:
    environment = {**environment_with_cpl(fake_cpl), "FAKE_CODE": "0"}
    step = Runner(tmp_path, {}, environment).action(command="plan", install="false")
    assert step.outcome == "failure" and "needs the environment input" in step.stdout
