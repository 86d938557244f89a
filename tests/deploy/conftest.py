"""A temporary control repo whose `local` environment points at the session's real engines
(tests/engines.py: moto for Step Functions, a Temporal dev server) and writes Argo manifests
under the repo; tenants and the Temporal namespace are unique per test, so tests sharing the
session engines never see each other's resources."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest

from controlplane.cli import run
from controlplane.engines.temporal.devserver import DevServer

ROOT = Path(__file__).resolve().parents[2]

# Compliant examples (no mandatory denial on `local`), one per engine at least.
EXAMPLES = {
    "retail/inventory-sync": "stepfunctions",
    "health/appointment-reminders": "stepfunctions",
    "finance/month-end-close": "temporal",
    "retail/price-feed-export": "argo",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class ControlRepo:
    root: Path
    moto: str
    temporal: str
    namespace: str
    tenants: dict[str, str] = field(default_factory=dict)  # example tenant → test tenant

    def workflow(self, key: str) -> str:
        """The test's key of an example workflow (`retail/x` → `<test tenant>/x`)."""
        tenant, name = key.split("/")
        return f"{self.tenants[tenant]}/{name}"

    def file(self, key: str) -> Path:
        tenant, name = key.split("/")
        return self.root / "workflows" / tenant / f"{name}.yaml"

    def edit(self, key: str, old: str, new: str) -> None:
        path = self.file(key)
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))

    def cpl(self, *args: str) -> Result:
        """Run `cpl ARGS --repo ROOT` in this process; its exit code and output."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([*args, "--repo", str(self.root)])
        return Result(code, out.getvalue(), err.getvalue())

    def command(self, *args: str) -> list[str]:
        """`cpl ARGS` as a subprocess command line (for tests that kill it)."""
        return [sys.executable, "-m", "controlplane", *args, "--repo", str(self.root)]

    def state(self) -> dict[str, Any]:
        path = self.root / ".cpl/state/local/state.json"
        return json.loads(path.read_text()) if path.exists() else {"resources": []}

    def commit(self, message: str) -> str:
        repository = git.Repo(self.root)
        repository.git.add("-A", "workflows", "environments")
        return str(repository.index.commit(message).hexsha)


def environment_text(moto: str, temporal: str, namespace: str) -> str:
    text = (ROOT / "environments/local.yaml").read_text()
    text = text.replace("http://127.0.0.1:4566", moto).replace("127.0.0.1:7233", temporal)
    return text.replace("namespace: cpl-local", f"namespace: {namespace}")


def write_repo(
    root: Path, moto: str, temporal: str, examples: Sequence[str] = tuple(EXAMPLES)
) -> ControlRepo:
    suffix = uuid.uuid4().hex[:6]
    repo = ControlRepo(root, moto, temporal, f"cpl-{suffix}")
    (root / "environments").mkdir(parents=True)
    (root / "environments/local.yaml").write_text(environment_text(moto, temporal, repo.namespace))
    for key in examples:
        tenant, name = key.split("/")
        test_tenant = repo.tenants.setdefault(tenant, f"{tenant[:2]}{suffix}")
        text = (ROOT / "workflows" / tenant / f"{name}.yaml").read_text()
        target = root / "workflows" / tenant / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace(f"tenant: {tenant}", f"tenant: {test_tenant}", 1))
    (root / ".gitignore").write_text(".cpl/\ndeploy/\n")
    repository = git.Repo.init(root)
    with repository.config_writer() as config:
        config.set_value("user", "name", "cpl tests")
        config.set_value("user", "email", "tests@cpl.invalid")
    repo.commit("initial")
    return repo


@pytest.fixture
def control_repo(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> ControlRepo:
    return write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address)


def copy_examples(destination: Path, keys: Sequence[str]) -> None:
    for key in keys:
        tenant, name = key.split("/")
        source = ROOT / "workflows" / tenant / f"{name}.yaml"
        (destination / tenant).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, destination / tenant / f"{name}.yaml")
