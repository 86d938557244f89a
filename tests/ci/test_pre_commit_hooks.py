"""The hooks of .pre-commit-hooks.yaml: their entries (with their args) run as pre-commit runs
them, in a `cpl init` repo: they pass on it, and fail on an invalid or a denied spec."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import run
from tests.ci.actions import environment_with_cpl
from tests.conftest import ROOT

HOOKS = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
HELLO = Path("workflows/example/hello.yaml")


def _run(hook: dict[str, Any], repo: Path) -> subprocess.CompletedProcess[str]:
    command = [*shlex.split(hook["entry"]), *hook.get("args", [])]
    return subprocess.run(
        command, cwd=repo, env=environment_with_cpl(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def scaffold(tmp_path: Path) -> Path:
    assert run(["init", str(tmp_path / "control")]) == 0
    return tmp_path / "control"


def test_each_hook_comes_for_pre_commit_and_for_the_system_cpl() -> None:
    assert set(HOOKS) == {"cpl-validate", "cpl-check", "cpl-validate-system", "cpl-check-system"}
    for name, hook in HOOKS.items():
        assert hook["language"] == ("system" if name.endswith("-system") else "python")
        assert hook["pass_filenames"] is False  # cpl reads the whole repo
        assert hook["entry"].split()[:2] == ["cpl", name.split("-")[1]]
        assert "workflows" in hook["files"] and "environments" in hook["files"]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_the_hook_passes_on_the_scaffold(scaffold: Path, hook: str) -> None:
    done = _run(HOOKS[hook], scaffold)
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_fails_on_an_invalid_spec(scaffold: Path) -> None:
    path = scaffold / HELLO
    path.write_text(path.read_text().replace("classification: internal", "classification: x"))
    done = _run(HOOKS["cpl-validate"], scaffold)
    assert done.returncode == 1 and "CPL-S004" in done.stdout


def test_check_fails_on_a_denied_spec(scaffold: Path) -> None:
    path = scaffold / HELLO
    path.write_text(path.read_text().replace("      idempotencyKey: $.name\n", ""))
    done = _run(HOOKS["cpl-check-system"], scaffold)
    assert done.returncode == 3 and "CPL-P004" in done.stdout
