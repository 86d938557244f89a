"""Argo Workflows: WorkflowTemplate / CronWorkflow manifests, delivered two ways.

`delivery: gitops` writes each artifact's manifest under `<repo>/<target.path>/` (one file per
resource, `<namespace>/<resource>.yaml`, the artifact's own file name) for a GitOps controller
to sync. Files are deterministic (sorted keys, the translator's YAML settings) and written
atomically (temp file, fsync, rename, fsync of the directory). The resource id is the file's
path relative to the target's directory.

`delivery: kubernetes` applies the manifests through the Kubernetes API (`CustomObjectsApi`,
group argoproj.io/v1alpha1, plurals workflowtemplates / cronworkflows); the resource id is
`<namespace>/<plural>/<name>`. No Kubernetes API server can run on these machines, and the
`kubernetes` package is optional: `create_client` imports it only for this delivery.

Both stamp the artifact digest as the label `cpl.dev/digest` (normalized away when comparing).
"""

from __future__ import annotations

import copy
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from controlplane.engines.argo.companions import with_companion, write_companion
from controlplane.engines.argo.events import EVENTS_SUFFIX, events_text
from controlplane.engines.argo.identity import IDENTITY_SUFFIX, identity_text
from controlplane.engines.argo.schema import validate_manifest
from controlplane.engines.live import (
    DIGEST_LABEL,
    DIGEST_TAG,
    MANAGED_LABEL,
    MANAGED_TAG,
    WORKFLOW_TAG,
    Change,
    LiveResource,
    ResourceError,
    diff_documents,
)
from controlplane.engines.normalize import normalize
from controlplane.engines.retry import (
    DEFAULT_POLICY,
    NoAnswer,
    RetryPolicy,
    TransientError,
    is_unanswered,
    retry,
)
from controlplane.engines.timeouts import TargetClock, TargetSilent, Timeouts
from controlplane.engines.translator import Artifact
from controlplane.errors import EngineError
from controlplane.files import fsync_directory, write_atomic
from controlplane.spec.environment import EngineName, Environment, Target, confine_to_repo

Result = TypeVar("Result")

GROUP = "argoproj.io"
VERSION = "v1alpha1"
PLURALS = {"WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}


def manifest_text(manifest: dict[str, Any]) -> str:
    """Deterministic YAML of one manifest (the translator's settings: sorted keys, width 100)."""
    return yaml.safe_dump(manifest, sort_keys=True, allow_unicode=True, width=100)


def stamped(manifest: dict[str, Any], digest: str) -> dict[str, Any]:
    """A copy of the manifest stamped with the artifact digest, checked against Argo's schema
    (every delivery writes through here, so nothing hera's models would drop gets out).

    Label values stop at 63 characters, so the label `cpl.dev/digest` (selectable) holds a
    prefix, `sha256-<56 hex digits>`, and the annotation of the same name the whole digest.
    """
    result = copy.deepcopy(manifest)
    metadata = result.setdefault("metadata", {})
    metadata.setdefault("labels", {})[DIGEST_LABEL] = digest.replace("sha256:", "sha256-")[:63]
    metadata.setdefault("annotations", {})[DIGEST_LABEL] = digest
    validate_manifest(result)
    return result


def _tags(manifest: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = manifest.get("metadata", {}).get("labels") or {}
    tags = dict(labels)
    if labels.get(MANAGED_LABEL) == "true":
        tags[MANAGED_TAG] = "true"
    annotations: dict[str, str] = manifest.get("metadata", {}).get("annotations") or {}
    if DIGEST_LABEL in annotations:
        tags[DIGEST_TAG] = annotations[DIGEST_LABEL]
    tenant, name = labels.get("cpl.dev/tenant"), labels.get("cpl.dev/workflow")
    if tenant and name:
        tags[WORKFLOW_TAG] = f"{tenant}/{name}"
    return tags


class _ArgoBase(ABC):
    engine: EngineName = "argo"

    def __init__(self, target: Target, environment: Environment, ignore: tuple[str, ...]) -> None:
        self.target = target
        self.environment = environment
        self.ignore = ignore

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        return diff_documents(self.desired_document(artifact, live), live.document)

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        return normalize(self.engine, artifact.document, self.ignore)

    @abstractmethod
    def list_managed(self) -> list[LiveResource]:
        """Every resource of the target labelled `cpl.dev/managed=true`, read in full."""

    def inventory(self, known: set[str]) -> list[LiveResource]:
        """Every managed resource, read in full (`list_managed`): reading a manifest costs
        what listing it does, one file or one list call per kind."""
        return self.list_managed()

    def _live(
        self, resource: str, resource_id: str, manifests: list[dict[str, Any]]
    ) -> LiveResource:
        document = {"kind": "argo", "manifests": manifests}
        return LiveResource(
            engine=self.engine,
            target=self.target.name,
            resource=resource,
            id=resource_id,
            document=normalize(self.engine, document, self.ignore),
            tags=_tags(manifests[0]) if manifests else {},
        )

    def _error(self, resource: str, message: str, transient: bool = False) -> ResourceError:
        return ResourceError(
            f"argo target '{self.target.name}': '{resource}': {message}",
            engine=self.engine,
            target=self.target.name,
            resource=resource,
            transient=transient,
        )


# -- gitops ------------------------------------------------------------------------------------


class GitOpsArgoEngine(_ArgoBase):
    """Manifests as files under `<repo>/<target.path>/` for a GitOps controller."""

    def __init__(
        self, target: Target, environment: Environment, repo: Path, ignore: tuple[str, ...] = ()
    ) -> None:
        super().__init__(target, environment, ignore)
        if target.path is None:
            self.root = repo / "deploy" / "argo"
        else:
            names = [t.name for t in environment.spec.targets]
            index = names.index(target.name) if target.name in names else 0
            self.root = confine_to_repo(
                repo,
                target.path,
                target.allow_outside_repo,
                environment.name,
                f"/spec/targets/{index}/path",
            )

    def read(self, artifact: Artifact) -> LiveResource | None:
        name = _file_of(artifact)
        path = self.root / name
        if not path.exists():
            return None
        live = self._live(artifact.resource, name, [self._load(artifact.resource, path)])
        live = with_companion(live, self._identity_path(name), "identity", self._error)
        return with_companion(live, self._events_path(name), "events", self._error)

    def create(self, artifact: Artifact) -> LiveResource:
        name = _file_of(artifact)
        manifests = artifact.document["manifests"]
        if len(manifests) != 1:
            raise self._error(artifact.resource, f"expected one manifest, got {len(manifests)}")
        text = manifest_text(stamped(manifests[0], artifact.digest))
        try:
            write_atomic(self.root / name, text)
            document = artifact.document
            write_companion(self._events_path(name), document.get("events"), events_text)
            write_companion(self._identity_path(name), document.get("identity"), identity_text)
        except OSError as error:
            raise self._error(
                artifact.resource, f"cannot write {self.root / name}: {error}"
            ) from None
        live = self.read(artifact)
        assert live is not None
        return live

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        if live.id != _file_of(artifact):
            self.delete(live.id)
        return self.create(artifact)

    def delete(self, resource_id: str) -> None:
        path = self.root / resource_id
        try:
            path.unlink(missing_ok=True)
            self._events_path(resource_id).unlink(missing_ok=True)
            self._identity_path(resource_id).unlink(missing_ok=True)
        except OSError as error:
            raise self._error(resource_id, f"cannot delete {path}: {error}") from None
        fsync_directory(path.parent)

    def list_managed(self) -> list[LiveResource]:
        """Every manifest file under the target's path labelled `cpl.dev/managed: "true"`."""
        found: list[LiveResource] = []
        if not self.root.is_dir():
            return found
        for path in sorted(self.root.rglob("*.yaml")):
            if path.name.endswith((EVENTS_SUFFIX, IDENTITY_SUFFIX)):
                continue  # a workflow's event or identity manifests, read with its own file
            relative = path.relative_to(self.root).as_posix()
            try:
                manifest = self._load(relative, path)
            except ResourceError:
                continue  # not a manifest of ours (unreadable YAML is no cpl resource)
            labels = manifest.get("metadata", {}).get("labels") or {}
            if labels.get(MANAGED_LABEL) == "true":
                name = str(manifest.get("metadata", {}).get("name", path.stem))
                found.append(self._live(name, relative, [manifest]))
        return found

    def _identity_path(self, resource_id: str) -> Path:
        return self.root / (resource_id.removesuffix(".yaml") + IDENTITY_SUFFIX)

    def _events_path(self, resource_id: str) -> Path:
        return self.root / (resource_id.removesuffix(".yaml") + EVENTS_SUFFIX)

    def _load(self, resource: str, path: Path) -> dict[str, Any]:
        try:
            manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise self._error(resource, f"cannot read {path}: {error}") from None
        if not isinstance(manifest, dict):
            raise self._error(resource, f"{path} is not a manifest")
        return manifest


def _file_of(artifact: Artifact) -> str:
    """`<namespace>/<resource>.yaml`, the file the translator names (without writing it)."""
    manifests = artifact.document["manifests"]
    if len(manifests) != 1:
        raise ValueError(f"argo artifact {artifact.resource} has {len(manifests)} manifests")
    return f"{manifests[0]['metadata']['namespace']}/{artifact.resource}.yaml"


# -- kubernetes --------------------------------------------------------------------------------


class CustomObjectsApi(Protocol):
    """The part of `kubernetes.client.CustomObjectsApi` cpl uses."""

    def get_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        *,
        _request_timeout: tuple[float, float] | None = None,
    ) -> Any: ...

    def create_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        body: Any,
        *,
        _request_timeout: tuple[float, float] | None = None,
    ) -> Any: ...

    def replace_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: Any,
        *,
        _request_timeout: tuple[float, float] | None = None,
    ) -> Any: ...

    def delete_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        *,
        _request_timeout: tuple[float, float] | None = None,
    ) -> Any: ...

    def list_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        *,
        label_selector: str = "",
        _request_timeout: tuple[float, float] | None = None,
    ) -> Any: ...


def _status(error: BaseException) -> int | None:
    """The HTTP status of a `kubernetes.client.ApiException` (duck-typed: optional package)."""
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


class KubernetesArgoEngine(_ArgoBase):
    """Manifests applied through the Kubernetes API of the target's cluster."""

    def __init__(
        self,
        target: Target,
        environment: Environment,
        api: CustomObjectsApi,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        ignore: tuple[str, ...] = (),
    ) -> None:
        super().__init__(target, environment, ignore)
        self.api = api
        self.policy = policy
        timeouts = Timeouts.of(target)
        self.request_timeout = (timeouts.connect, timeouts.call)
        """(connect, read) seconds of every request (the kubernetes client's own form)."""
        self.clock = TargetClock(f"{target.name} (Kubernetes API)", timeouts)

    def read(self, artifact: Artifact) -> LiveResource | None:
        manifest = artifact.document["manifests"][0]
        return self._read(manifest["kind"], manifest["metadata"]["namespace"], artifact.resource)

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        """Without the identity manifests: this delivery does not apply them (the
        `identity.kubernetes` record), so they are no drift either."""
        desired = super().desired_document(artifact, live)
        desired.pop("identity", None)
        return desired

    def create(self, artifact: Artifact) -> LiveResource:
        manifest = stamped(artifact.document["manifests"][0], artifact.digest)
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        try:
            self._call(
                artifact.resource,
                "create",
                lambda: self.api.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    manifest,
                    _request_timeout=self.request_timeout,
                ),
            )
        except ResourceError as error:
            if "409" not in error.message:
                raise
            live = self.read(artifact)  # converge: it exists already
            if live is None:
                raise
            return self.update(artifact, live)
        return self._must_read(artifact)

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        manifest = stamped(artifact.document["manifests"][0], artifact.digest)
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        if live.id != f"{namespace}/{PLURALS[kind]}/{name}":
            self.delete(live.id)  # the kind changed (a schedule added or removed)
            return self.create(artifact)
        current = self._get(artifact.resource, namespace, PLURALS[kind], name)
        if current is not None:
            version = current.get("metadata", {}).get("resourceVersion")
            if version is not None:
                manifest["metadata"]["resourceVersion"] = version
        self._call(
            artifact.resource,
            "replace",
            lambda: self.api.replace_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURALS[kind],
                name,
                manifest,
                _request_timeout=self.request_timeout,
            ),
        )
        return self._must_read(artifact)

    def delete(self, resource_id: str) -> None:
        namespace, plural, name = resource_id.split("/", 2)
        try:
            self._call(
                name,
                "delete",
                lambda: self.api.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, _request_timeout=self.request_timeout
                ),
            )
        except ResourceError as error:
            if "404" not in error.message:
                raise

    def list_managed(self) -> list[LiveResource]:
        """Workflow templates and cron workflows labelled `cpl.dev/managed=true`."""
        namespace = self.target.namespace or "default"
        found: list[LiveResource] = []
        for kind, plural in sorted(PLURALS.items()):
            listed = self._call(
                self.target.name,
                f"list {plural}",
                lambda plural=plural: self.api.list_namespaced_custom_object(  # type: ignore[misc]
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    label_selector=f"{MANAGED_LABEL}=true",
                    _request_timeout=self.request_timeout,
                ),
            )
            for item in listed.get("items", []):
                name = item["metadata"]["name"]
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
                found.append(self._live(name, f"{namespace}/{plural}/{name}", [item]))
        return found

    def _read(self, kind: str, namespace: str, name: str) -> LiveResource | None:
        # the other kind too: a workflow that gained or lost its schedule changes kind
        for candidate in (kind, *(k for k in PLURALS if k != kind)):
            found = self._get(name, namespace, PLURALS[candidate], name)
            if found is not None:
                found.setdefault("kind", candidate)
                found.setdefault("apiVersion", f"{GROUP}/{VERSION}")
                return self._live(name, f"{namespace}/{PLURALS[candidate]}/{name}", [found])
        return None

    def _get(self, resource: str, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._call(
                resource,
                "get",
                lambda: self.api.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, _request_timeout=self.request_timeout
                ),
            )
        except ResourceError as error:
            if "404" in error.message:
                return None
            raise
        return dict(copy.deepcopy(found))

    def _must_read(self, artifact: Artifact) -> LiveResource:
        live = self.read(artifact)
        if live is None:
            raise self._error(artifact.resource, "not readable right after apply")
        return live

    def _call(self, resource: str, action: str, operation: Callable[[], Result]) -> Result:
        try:
            deadline = self.clock.start()
        except TargetSilent as silent:
            raise self._error(resource, f"cannot {action}: {silent}", transient=True) from None

        def attempt() -> Result:
            try:
                return operation()
            except Exception as error:
                status = _status(error)
                if status is not None and (status == 429 or status >= 500):
                    raise TransientError(f"HTTP {status}: {error}") from error
                if status is None and _no_answer(error):
                    raise NoAnswer(f"no answer: {error}") from error
                raise

        def waiting(error: BaseException) -> None:
            if is_unanswered(error):
                self.clock.not_answering(deadline)

        try:
            try:
                return retry(attempt, self.policy, deadline=deadline, on_transient=waiting)
            except Exception as error:
                if is_unanswered(error):
                    self.clock.fell_silent()  # the rest of this command fails at once
                raise
        except TransientError as error:
            raise self._error(resource, f"cannot {action}: {error}", transient=True) from None
        except Exception as error:
            status = _status(error)
            if status is None and not isinstance(error, OSError):
                raise
            raise self._error(
                resource, f"cannot {action}: HTTP {status}: {error}", transient=status is None
            ) from None


def _no_answer(error: BaseException) -> bool:
    """A connection that failed or timed out (urllib3's errors, duck-typed: the kubernetes
    package and its urllib3 are optional)."""
    return isinstance(error, OSError) or type(error).__module__.startswith("urllib3")


def kubernetes_api() -> CustomObjectsApi:
    """A CustomObjectsApi from the local kubeconfig (or the in-cluster service account)."""
    try:
        client = importlib.import_module("kubernetes.client")
        config = importlib.import_module("kubernetes.config")
    except ImportError:
        raise EngineError(
            "argo targets with `delivery: kubernetes` need the `kubernetes` package "
            "(pip install kubernetes), which is not installed"
        ) from None
    try:
        config.load_kube_config()
    except Exception:
        config.load_incluster_config()
    api: CustomObjectsApi = client.CustomObjectsApi()
    return api


def create_client(
    target: Target, environment: Environment, *, repo: Path | None = None
) -> GitOpsArgoEngine | KubernetesArgoEngine:
    """The registry's factory: gitops files under `repo`, or the cluster's API."""
    if (target.delivery or "gitops") == "gitops":
        return GitOpsArgoEngine(target, environment, repo or Path.cwd())
    return KubernetesArgoEngine(target, environment, kubernetes_api())
