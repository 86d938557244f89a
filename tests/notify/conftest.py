"""Helpers for the notification tests: a real webhook receiver (http.server on 127.0.0.1 in a
thread) and control repos whose environment notifies it."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controlplane.cli import run
from controlplane.notify import sender
from tests.drift.conftest import control_repo, module_names  # noqa: F401 (fixtures)
from tests.receivers import Receiver, free_port

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks are retried quickly here (the backoff itself is tested with `post`)."""
    fast = sender.RetryPolicy(
        attempts=3, base_delay=0.01, max_delay=0.02, timeout=2.0, retry_after_cap=1.0
    )
    monkeypatch.setattr(sender, "DEFAULT_RETRY", fast)
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free port, not started: it is down until the test calls start()."""
    down = Receiver(free_port())
    yield down
    down.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("warning: notif")]


@dataclass
class Repo:
    root: Path
    env: str = "dev"
    extra: list[str] = field(default_factory=list)

    def cpl(self, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([*args, "--env", self.env, "--repo", str(self.root)])
        return Result(code, out.getvalue(), err.getvalue())

    def spooled(self) -> list[Path]:
        spool = self.root / ".cpl" / "notify" / "spool"
        if not spool.is_dir():
            return []
        return sorted(p for p in spool.rglob("*.notice.json"))


def notifications_yaml(*entries: str) -> str:
    return "  notifications:\n" + "".join(f"    - {entry}\n" for entry in entries)


def add_notifications(environment_file: Path, *entries: str) -> None:
    text = environment_file.read_text()
    environment_file.write_text(text.rstrip("\n") + "\n" + notifications_yaml(*entries))


def local_environment(
    name: str, sfn_endpoint: str | None = None, *, argo_only: bool = False
) -> str:
    """environments/local.yaml renamed; with `sfn_endpoint`, a Step Functions target only,
    at that endpoint, with short timeouts (an unreachable engine fails fast)."""
    text = (ROOT / "environments" / "local.yaml").read_text()
    text = text.replace("metadata: {name: local}", f"metadata: {{name: {name}}}")
    if sfn_endpoint is not None:
        text = text.replace(
            "endpoint: http://127.0.0.1:4566\n      roleArn",
            f"endpoint: {sfn_endpoint}\n"
            "      timeouts: {connect: 200ms, call: 500ms, deadline: 1s}\n"
            "      roleArn",
        )
        text = text.replace("aws: {region: us-east-1, endpoint: http://127.0.0.1:4566}", "")
        text = re.sub(r"    - name: (temporal|argo)-local\n(      .*\n)+", "", text)
    if argo_only:
        text = re.sub(r"    - name: (temporal|sfn)-local\n(      .*\n)+", "", text)
    return text


@pytest.fixture
def checked_repo(tmp_path: Path) -> Repo:
    """The example workflows with environment `dev` (local.yaml): `cpl check` denies them
    (CPL-P016, CPL-P008, CPL-P012, CPL-P011)."""
    shutil.copytree(ROOT / "workflows", tmp_path / "workflows")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(local_environment("dev"))
    return Repo(tmp_path)


@pytest.fixture
def failing_apply_repo(tmp_path: Path) -> Repo:
    """One compliant Step Functions workflow, its only target an endpoint nothing listens
    on: `cpl apply` fails (exit 1) reading the live state."""
    (tmp_path / "workflows" / "retail").mkdir(parents=True)
    shutil.copy(
        ROOT / "workflows" / "retail" / "inventory-sync.yaml",
        tmp_path / "workflows" / "retail" / "inventory-sync.yaml",
    )
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(local_environment("dev", CLOSED_PORT))
    return Repo(tmp_path)


@pytest.fixture
def failing_change_repo(tmp_path: Path) -> Repo:
    """One Argo workflow delivered by GitOps into deploy/argo/, where a file stands in the
    way of the workflows/ folder: the plan is a create, and `cpl apply` fails that change."""
    (tmp_path / "workflows" / "retail").mkdir(parents=True)
    shutil.copy(
        ROOT / "workflows" / "retail" / "price-feed-export.yaml",
        tmp_path / "workflows" / "retail" / "price-feed-export.yaml",
    )
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(local_environment("dev", argo_only=True))
    (tmp_path / "deploy" / "argo").mkdir(parents=True)
    (tmp_path / "deploy" / "argo" / "workflows").write_text("in the way\n")
    return Repo(tmp_path)
