"""A control repo scaffolded by `cpl init`, its `local` environment on the session's Temporal
dev server (a namespace of its own), `main` also as `origin/main`, and a pull-request branch
on top; plus the `gh` of tests/ci/gh with its fixtures and log."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from controlplane.cli import run
from controlplane.engines.temporal.devserver import DevServer
from tests.ci.actions import Runner, environment_with_cpl

HERE = Path(__file__).parent
HELLO = "workflows/example/hello.yaml"


@dataclass
class Control:
    root: Path
    repository: git.Repo
    base: str  # the commit of main the pull request branched from
    gh: Path  # the fixtures and log of the fake gh

    def edit(self, old: str, new: str, message: str) -> str:
        path = self.root / HELLO
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {HELLO}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        self.repository.git.add("-A", "workflows")
        return str(self.repository.index.commit(message).hexsha)

    def answer(self, key: str, document: Any) -> None:
        """What the fake gh prints for a read of `key` (see tests/ci/gh)."""
        name = re.sub(r"[^A-Za-z0-9]", "_", key)
        (self.gh / f"{name}.json").write_text(json.dumps(document), encoding="utf-8")

    def artifact(self, name: str, files: list[Path]) -> None:
        folder = self.gh / "artifacts" / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy(file, folder / file.name)

    def calls(self) -> list[list[str]]:
        log = self.gh / "log.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]

    def runner(self, **context: str) -> Runner:
        environment = environment_with_cpl(self.gh / "bin")
        environment["GH_LOG"] = str(self.gh / "log.jsonl")
        environment["GH_FIXTURES"] = str(self.gh)
        values = {
            "github.token": "not-a-token",
            "github.repository": "acme/control",
            "github.server_url": "https://github.example",
            "github.run_id": "1001",
            **context,
        }
        return Runner(self.root, values, environment)

    def resources(self) -> list[Any]:
        state = self.root / ".cpl" / "state" / "local" / "state.json"
        if not state.exists():
            return []
        return list(json.loads(state.read_text(encoding="utf-8"))["resources"])


@pytest.fixture
def control(tmp_path: Path, temporal_server: DevServer) -> Control:
    root = tmp_path / "control"
    assert run(["init", str(root)]) == 0
    local = root / "environments" / "local.yaml"
    text = local.read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:7233", temporal_server.address)
    text = text.replace("namespace: cpl-local", f"namespace: cpl-ci-{uuid.uuid4().hex[:8]}")
    local.write_text(text, encoding="utf-8")
    repository = git.Repo.init(root, initial_branch="main")
    with repository.config_writer() as config:
        config.set_value("user", "name", "cpl tests")
        config.set_value("user", "email", "tests@cpl.invalid")
    repository.git.add("-A")
    base = str(repository.index.commit("Scaffold with cpl init").hexsha)
    repository.git.update_ref("refs/remotes/origin/main", base)
    repository.git.checkout("-q", "-b", "next-version")
    gh = tmp_path / "gh"
    (gh / "bin").mkdir(parents=True)
    shutil.copy(HERE / "gh", gh / "bin" / "gh")
    (gh / "bin" / "gh").chmod(0o755)
    made = Control(root, repository, base, gh)
    made.edit("version: 0.1.0", "version: 0.2.0", "hello 0.2.0")
    return made
