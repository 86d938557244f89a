"""A small control repo with one workflow and an Argo GitOps target: every command runs on
files alone, no engine needed (and `control_repo`, the deploy tests' repo on real engines)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.conftest import control_repo  # noqa: F401 (a repo on the real engines)

WORKFLOW = "workflows/retail/price-feed-export.yaml"

ENVIRONMENT = """\
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: files}}
spec:
  tier: development
  targets:
    - name: argo-files
      engine: argo
      delivery: gitops
      namespace: workflows
{target}
  bindings:
    activities:
{bindings}
    queues:
      retail-batch-dlq: {{argo: retail-batch-dlq}}
    stores:
      artifacts: {{url: "s3://artifacts/workflows"}}
{extra}"""


def environment_text(target: str = "      path: deploy/argo", extra: str = "") -> str:
    """The `files` environment, with the Argo target's path lines and extra `spec` keys."""
    bindings = []
    for activity in (
        "pricing.extract-prices",
        "pricing.extract-promotions",
        "pricing.merge-feed",
        "pricing.validate-feed",
        "pricing.publish-feed",
        "pricing.archive-feed",
    ):
        bindings.append(f"      {activity}: {{argo: {{image: 'ghcr.io/acme/p:1.0.0'}}}}")
    return ENVIRONMENT.format(target=target, bindings="\n".join(bindings), extra=extra)


@pytest.fixture
def files_repo(tmp_path: Path) -> Path:
    """A control repo (in `tmp_path/repo`) with the price-feed workflow and env `files`."""
    repo = tmp_path / "repo"
    (repo / "workflows" / "retail").mkdir(parents=True)
    shutil.copy(ROOT / WORKFLOW, repo / WORKFLOW)
    (repo / "environments").mkdir()
    (repo / "environments" / "files.yaml").write_text(environment_text(), encoding="utf-8")
    return repo
