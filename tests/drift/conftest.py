"""Control repos for drift tests on the session's real engines (tests/engines.py).

Every test gets its own tenant (resource names, Temporal schedules, Step Functions tags) and
every module its own environment name and Temporal namespace, so tests sharing the moto and
Temporal servers never see each other's resources: drift runs with `--tenant`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.engines import engine_client
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.translator import Artifact
from controlplane.pipeline import render_all
from controlplane.spec.load import load_environment, load_workflows

ROOT = Path(__file__).resolve().parents[2]
SFN_WORKFLOW = ("retail", "order-fulfillment")  # pii, Step Functions, compliant
TEMPORAL_WORKFLOW = ("finance", "month-end-close")  # Temporal, scheduled, compliant
CLOSED_PORT = "http://127.0.0.1:9"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class ControlRepo:
    root: Path
    env: str
    tenant: str
    namespace: str

    @property
    def sfn_resource(self) -> str:
        return f"{self.tenant}-{SFN_WORKFLOW[1]}"

    @property
    def temporal_resource(self) -> str:
        return f"{self.tenant}-{TEMPORAL_WORKFLOW[1]}"

    def artifacts(self) -> list[Artifact]:
        environment = load_environment(self.root, self.env)
        return render_all([w.model for w in load_workflows(self.root).workflows], environment)

    def deploy(self, tenant: str | None = None) -> list[Artifact]:
        """Create the tenant's desired resources with the engine modules (as apply would)."""
        environment = load_environment(self.root, self.env)
        prefix = f"{tenant or self.tenant}/"
        chosen = [
            a
            for a in self.artifacts()
            if a.workflow.startswith(prefix) or any(w.startswith(prefix) for w in a.shared_by)
        ]
        chosen.sort(key=lambda a: not a.shared)  # a namespace before the workflows in it
        for artifact in chosen:
            client = engine_client(environment.target(artifact.target), environment)
            try:
                client.create(artifact)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        return chosen

    def add_tenant(self, tenant: str) -> None:
        _write_workflows(self.root, tenant)

    def drift(self, *args: str, tenants: tuple[str, ...] | None = None) -> tuple[int, Any]:
        """Run `cpl drift --format json` and return (exit code, report)."""
        out = self.root / f"drift-{uuid.uuid4().hex[:6]}.json"
        shard = [arg for t in (tenants or (self.tenant,)) for arg in ("--tenant", t)]
        code = run(
            [
                "drift",
                "--env",
                self.env,
                "--repo",
                str(self.root),
                "--format",
                "json",
                "-o",
                str(out),
                *shard,
                *args,
            ]
        )
        return code, json.loads(out.read_text()) if out.exists() else None

    def point_at(self, old: str, new: str) -> None:
        path = self.root / "environments" / f"{self.env}.yaml"
        path.write_text(path.read_text().replace(old, new))


def item(report: Any, resource: str) -> dict[str, Any]:
    found = [i for i in report["items"] if i["resource"] == resource]
    assert len(found) == 1, [(i["resource"], i["status"]) for i in report["items"]]
    result: dict[str, Any] = found[0]
    return result


def _write_workflows(root: Path, tenant: str) -> None:
    for old_tenant, name in (SFN_WORKFLOW, TEMPORAL_WORKFLOW):
        text = (ROOT / "workflows" / old_tenant / f"{name}.yaml").read_text()
        text = text.replace(f"tenant: {old_tenant}", f"tenant: {tenant}", 1)
        target = root / "workflows" / tenant / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _environment(env: str, moto: str, temporal: str, namespace: str) -> str:
    text = (ROOT / "environments" / "local.yaml").read_text()
    text = text.replace("metadata: {name: local}", f"metadata: {{name: {env}}}")
    text = text.replace("http://127.0.0.1:4566", moto)
    text = text.replace("127.0.0.1:7233", temporal)
    text = text.replace("namespace: cpl-local", f"namespace: {namespace}")
    # no Argo target: its GitOps manifests are not what these tests are about
    text = re.sub(r"    - name: argo-local\n(      .*\n)+", "", text)
    # nor the Prometheus rules file (tests/monitoring drifts it)
    text = re.sub(r"      prometheus:\n(        .*\n)+", "", text)
    return text


@pytest.fixture(scope="module")
def module_names() -> tuple[str, str]:
    """(environment name, Temporal namespace) shared by the tests of one module."""
    return unique("drift"), unique("cpl-drift-")


MakeControlRepo = Callable[..., ControlRepo]


@pytest.fixture
def control_repo(
    tmp_path: Path,
    moto_endpoint: str,
    temporal_server: DevServer,
    module_names: tuple[str, str],
) -> Iterator[MakeControlRepo]:
    def make(namespace: str | None = None) -> ControlRepo:
        env, shared = module_names
        repo = ControlRepo(tmp_path, env, unique("t"), namespace or shared)
        (tmp_path / "environments").mkdir(exist_ok=True)
        (tmp_path / "environments" / f"{env}.yaml").write_text(
            _environment(env, moto_endpoint, temporal_server.address, repo.namespace)
        )
        _write_workflows(tmp_path, repo.tenant)
        return repo

    yield make
