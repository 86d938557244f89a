"""The workload identity and pod hardening of an Argo workflow (docs/security.md, "Workload
identities").

One ServiceAccount per workflow, `cpl-<tenant>-<name>` in the target's namespace, with a Role
and RoleBinding of the same name that allow exactly what Argo's executor does for a pod:
create and patch `workflowtaskresults` (how the executor reports outputs since Argo 3.4).
Per workflow rather than per tenant: a tenant's workflows do not share a token, and the
identity comes and goes with its workflow's artifact (no shared resource to keep alive).
The WorkflowTemplate or CronWorkflow runs as it (`serviceAccountName`); the pods do not mount
an API token beyond the executor's need (Argo mounts it for the executor).

Every pod runs as a non-root user (uid/gid 65534, `nobody`, since the helper images would
otherwise run as root), and every container with a read-only root filesystem, no privilege
escalation and no capabilities. The cpl container contract writes `/tmp/cpl/...`: `/tmp` is
an `emptyDir` volume mounted into every container. There is no opt-out.

The three manifests travel as `document["identity"]`: GitOps delivery writes them to
`<namespace>/<resource>.identity.yaml` next to the workflow's file, so they are planned,
applied, drifted and deleted with it.
"""

from __future__ import annotations

import copy
import importlib
from functools import lru_cache
from typing import Any

import yaml

from controlplane.engines.argo.schema import ManifestSchemaError, differences

IDENTITY_SUFFIX = ".identity.yaml"
"""The file of a workflow's ServiceAccount, Role and RoleBinding, next to `<resource>.yaml`."""
IDENTITY_KINDS = ("ServiceAccount", "Role", "RoleBinding")
NOBODY = 65534
SCRATCH = "cpl-tmp"
"""The emptyDir volume mounted at /tmp in every container (the root filesystem is read-only)."""

EXECUTOR_RULES = [
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflowtaskresults"],
        "verbs": ["create", "patch"],
    }
]
"""What Argo's executor (emissary) needs of the API: reporting a pod's outputs."""

POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": NOBODY,
    "runAsGroup": NOBODY,
    "fsGroup": NOBODY,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def service_account_name(resource: str) -> str:
    return f"cpl-{resource}"


def harden(spec: dict[str, Any], resource: str) -> None:
    """Run the workflow spec as its own ServiceAccount, non-root, read-only root filesystem."""
    spec["serviceAccountName"] = service_account_name(resource)
    spec["securityContext"] = copy.deepcopy(POD_SECURITY_CONTEXT)
    spec["volumes"] = [*spec.get("volumes", []), {"name": SCRATCH, "emptyDir": {}}]
    for template in spec.get("templates", []):
        for kind in ("container", "script"):
            container = template.get(kind)
            if isinstance(container, dict):
                container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY_CONTEXT)
                mounts = container.setdefault("volumeMounts", [])
                mounts.append({"name": SCRATCH, "mountPath": "/tmp"})


def identity_manifests(
    resource: str, namespace: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The ServiceAccount, Role and RoleBinding of one workflow."""
    name = service_account_name(resource)
    metadata = {"name": name, "namespace": namespace, "labels": dict(labels)}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": copy.deepcopy(metadata),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": copy.deepcopy(metadata),
            "rules": copy.deepcopy(EXECUTOR_RULES),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": copy.deepcopy(metadata),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


@lru_cache(maxsize=1)
def _api_client() -> Any:
    """The kubernetes client's (de)serializer; imported on first use (about a second)."""
    client = importlib.import_module("kubernetes.client")
    return client.ApiClient()


_MODELS = {"ServiceAccount": "V1ServiceAccount", "Role": "V1Role", "RoleBinding": "V1RoleBinding"}


def validate_identity_manifest(manifest: dict[str, Any]) -> None:
    """Raise ManifestSchemaError unless the manifest survives the Kubernetes models unchanged
    (the round trip of schema.py: a misspelt or misplaced key is dropped by the models)."""
    kind = str(manifest.get("kind", ""))
    name = str((manifest.get("metadata") or {}).get("name", "?"))
    model = _MODELS.get(kind)
    if model is None:
        raise ManifestSchemaError(kind, name, [f"/kind: not one of {', '.join(IDENTITY_KINDS)}"])
    client = _api_client()
    try:
        parsed = client._ApiClient__deserialize(copy.deepcopy(manifest), model)
    except (ValueError, TypeError) as error:
        raise ManifestSchemaError(kind, name, [f"/: {error}"]) from None
    problems = differences(manifest, client.sanitize_for_serialization(parsed), "")
    if problems:
        raise ManifestSchemaError(kind, name, problems)


def identity_text(manifests: list[dict[str, Any]]) -> str:
    """The identity manifests as one YAML stream (sorted keys), each checked first."""
    for manifest in manifests:
        validate_identity_manifest(manifest)
    return yaml.safe_dump_all(manifests, sort_keys=True, allow_unicode=True, width=100)
