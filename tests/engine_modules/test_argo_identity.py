"""The workload identity of an Argo workflow (argo/identity.py): a ServiceAccount, Role and
RoleBinding per workflow, delivered by GitOps next to the workflow's file, drifted and
deleted with it; every pod runs as that account, non-root, with a read-only root filesystem.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controlplane.engines import engine_client
from controlplane.engines.argo.client import GitOpsArgoEngine
from controlplane.engines.argo.identity import validate_identity_manifest
from controlplane.engines.argo.schema import ManifestSchemaError
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import Environment


@pytest.fixture
def scheduled(artifacts: dict[tuple[str, str], Artifact]) -> Artifact:
    return artifacts[("retail/price-feed-export", "argo")]  # a CronWorkflow


def _workflow_spec(artifact: Artifact) -> dict:
    (manifest,) = artifact.document["manifests"]
    spec = manifest["spec"]
    return spec["workflowSpec"] if manifest["kind"] == "CronWorkflow" else spec


def test_every_pod_runs_as_the_workflows_account_non_root_read_only(
    artifacts: dict[tuple[str, str], Artifact],
) -> None:
    argo = [a for (_, engine), a in artifacts.items() if engine == "argo"]
    assert argo
    for artifact in argo:
        spec = _workflow_spec(artifact)
        account = f"cpl-{artifact.resource}"
        assert spec["serviceAccountName"] == account
        assert spec["securityContext"]["runAsNonRoot"] is True
        containers = [t[k] for t in spec["templates"] for k in ("container", "script") if k in t]
        assert containers
        for container in containers:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"name": "cpl-tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        kinds = {m["kind"]: m for m in artifact.document["identity"]}
        assert kinds["ServiceAccount"]["metadata"]["name"] == account
        assert kinds["Role"]["rules"] == [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtaskresults"],
                "verbs": ["create", "patch"],
            }
        ]
        assert kinds["RoleBinding"]["subjects"][0]["name"] == account


def test_identity_is_delivered_drifted_and_deleted_with_the_workflow(
    tmp_path: Path, environment: Environment, scheduled: Artifact
) -> None:
    # the Argo client alone, without the target's Prometheus rules file around it
    argo = environment.target("argo-local").model_copy(update={"prometheus": None})
    gitops = engine_client(argo, environment, repo=tmp_path)
    assert isinstance(gitops, GitOpsArgoEngine)
    live = gitops.create(scheduled)
    identity = tmp_path / "deploy/argo/workflows" / f"{scheduled.resource}.identity.yaml"
    assert [m["kind"] for m in yaml.safe_load_all(identity.read_text())] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ]
    assert gitops.diff(scheduled, live) == []
    assert gitops.list_managed() and all(
        not m.id.endswith(".identity.yaml") for m in gitops.list_managed()
    )

    # a verb granted by hand is drift
    manifests = list(yaml.safe_load_all(identity.read_text()))
    manifests[1]["rules"][0]["verbs"].append("delete")
    identity.write_text(yaml.safe_dump_all(manifests))
    edited = gitops.read(scheduled)
    assert edited is not None
    assert [c["path"] for c in gitops.diff(scheduled, edited)] == ["/identity/1/rules/0/verbs/2"]

    gitops.delete(live.id)
    assert not identity.exists()


def test_the_kubernetes_models_reject_a_misplaced_field(scheduled: Artifact) -> None:
    role = dict(scheduled.document["identity"][1])
    validate_identity_manifest(role)
    with pytest.raises(ManifestSchemaError, match="/rule"):
        validate_identity_manifest({**role, "rule": role["rules"]})
