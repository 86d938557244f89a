"""The CI workflow that `cpl init` writes passes, as written, on the repo it scaffolds; and
every CI template installs cpl with the same lines as the README.

The workflow's `run:` steps are executed the way GitHub Actions runs them (`bash -e`) in a
scaffolded Git repo with a pull-request branch on top of `origin/main`, with the `cpl` of this
checkout standing in for the one the install step would bring from the package index (the
install step itself is compared with the README's lines instead of run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import run
from controlplane.engines.temporal.devserver import free_port
from tests.conftest import ROOT

# The two install lines, the same in the README and in every CI template.
INSTALL = [
    "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4",
    "pip install controlplane",
]
TEMPLATES = [
    ROOT / "controlplane" / "scaffold" / "ci.yml",
    ROOT / ".github" / "workflows" / "pr-check-example.yml",
    ROOT / "drift" / "jobs" / "github-actions.yml",
]
BASE_REF = "main"


def _steps(path: Path) -> list[dict[str, Any]]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _installs(text: str) -> list[str]:
    """The lines that install cpl or its OPA bindings."""
    return [
        line.strip()
        for line in text.splitlines()
        if re.match(r"\s*(pip|pipx) install\b", line)
        and re.search(r"controlplane|\bcpl\b|opa-golib", line)
    ]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_template_installs_cpl_as_the_readme_says(template: Path) -> None:
    installs = [s for s in _steps(template) if "pip install" in str(s.get("run", ""))]
    assert len(installs) == 1, "one install step"
    assert installs[0]["run"].strip().splitlines() == INSTALL
    assert _installs(template.read_text(encoding="utf-8")) == INSTALL


def test_the_readme_shows_the_install_lines() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_commands = [line.split()[0] for line in readme.splitlines() if line.startswith("    ")]
    assert first_commands[:2] == ["make", "make"], "make demo / make test come first"
    assert "\n".join(f"    {line}" for line in INSTALL) in readme
    assert [line for line in _installs(readme) if line.startswith("pip ")] == INSTALL


@pytest.fixture
def pull_request(tmp_path: Path) -> Path:
    """A repo scaffolded by `cpl init` on `main` (also as `origin/main`) and a branch with a
    change to review: the example workflow's next version."""
    repo = tmp_path / "control"
    assert run(["init", str(repo)]) == 0
    local = repo / "environments" / "local.yaml"
    text, count = re.subn(
        r"127\.0\.0\.1:7233", f"127.0.0.1:{free_port()}", local.read_text(encoding="utf-8")
    )
    assert count == 1  # the dev server must not collide with anyone's on the default port
    local.write_text(text, encoding="utf-8")
    _git(repo, "init", "-q", f"--initial-branch={BASE_REF}")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Scaffold with cpl init")
    _git(repo, "update-ref", f"refs/remotes/origin/{BASE_REF}", "HEAD")
    _git(repo, "checkout", "-q", "-b", "next-version")
    hello = repo / "workflows" / "example" / "hello.yaml"
    hello.write_text(
        hello.read_text(encoding="utf-8").replace("version: 0.1.0", "version: 0.2.0"),
        encoding="utf-8",
    )
    _git(repo, "commit", "-q", "-am", "hello 0.2.0")
    return repo


def _git(repo: Path, *args: str) -> None:
    identity = {
        "GIT_AUTHOR_NAME": "cpl test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "cpl test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **identity})


@pytest.mark.integration
def test_the_scaffold_ci_workflow_passes_on_the_scaffold(pull_request: Path) -> None:
    repo = pull_request
    workflow = repo / ".github" / "workflows" / "cpl.yml"
    commands = []
    for step in _steps(workflow):
        command = step.get("run")
        if command is None or "pip install" in command:
            continue  # `uses:` steps are GitHub's; the install is checked against the README
        command = command.replace("${{ github.base_ref }}", BASE_REF)
        assert "${{" not in command, f"unknown expression in {command!r}"
        commands.append(command.strip())
    started = [" ".join(c.split()[:2]) for c in commands]
    assert started == ["cpl validate", "cpl check", "cpl local", "cpl plan", "cpl local"]

    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),  # the checkout's cpl, whatever the venv's install points at
        "NO_COLOR": "1",
    }
    try:
        for command in commands:
            done = subprocess.run(
                ["bash", "-e", "-c", command],
                cwd=repo,
                env=environment,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"CI step {command!r} failed with exit {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}"
            )
            if command.startswith("cpl plan"):
                assert "1 to create" in done.stdout and "policy: passed" in done.stdout
    finally:
        subprocess.run(
            ["bash", "-c", "cpl local down --env local"],
            cwd=repo,
            env=environment,
            capture_output=True,
            timeout=120,
        )
    sarif = json.loads((repo / "cpl.sarif").read_text(encoding="utf-8"))
    assert [r for run_ in sarif["runs"] for r in run_.get("results", [])] == []
