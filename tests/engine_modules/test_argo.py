"""The Argo engine module: GitOps delivery for real (files), Kubernetes delivery against a fake.

No Kubernetes API server can run on these machines (and the `kubernetes` package is not
installed here), so `delivery: kubernetes` is tested against `FakeCustomObjects`, an in-memory
stand-in for `kubernetes.client.CustomObjectsApi` that behaves like the API server where cpl
depends on it: it assigns uid / resourceVersion / creationTimestamp, adds a status, answers
404 / 409 like ApiException, and filters lists by label selector.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from urllib3.exceptions import ReadTimeoutError

from controlplane.engines import ResourceError, engine_client
from controlplane.engines.argo.client import (
    GitOpsArgoEngine,
    KubernetesArgoEngine,
    manifest_text,
    stamped,
)
from controlplane.engines.retry import RetryPolicy
from controlplane.engines.translator import Artifact
from controlplane.files import write_atomic
from controlplane.spec.environment import Environment, TargetTimeouts
from tests.engine_modules.conftest import changed

FAST = RetryPolicy(attempts=3, base=0.0, cap=0.0)


@pytest.fixture
def artifact(artifacts: dict[tuple[str, str], Artifact]) -> Artifact:
    return artifacts[("retail/price-feed-export", "argo")]


@pytest.fixture
def gitops(tmp_path: Path, environment: Environment) -> GitOpsArgoEngine:
    # the Argo client alone, without the target's Prometheus rules file around it
    argo = environment.target("argo-local").model_copy(update={"prometheus": None})
    engine = engine_client(argo, environment, repo=tmp_path)
    assert isinstance(engine, GitOpsArgoEngine)
    return engine


def test_gitops_lifecycle(gitops: GitOpsArgoEngine, artifact: Artifact, tmp_path: Path) -> None:
    assert gitops.read(artifact) is None
    live = gitops.create(artifact)
    name = f"workflows/{artifact.resource}.yaml"  # next to it: its identity manifests
    assert set(artifact.files) == {name, f"workflows/{artifact.resource}.identity.yaml"}
    assert live.id == name
    path = tmp_path / "deploy/argo" / name
    assert path.is_file()
    assert live.digest == artifact.digest
    assert gitops.diff(artifact, live) == []

    edited = changed(artifact, {"/manifests/0/spec/timezone": "Asia/Tokyo"})
    assert [c["path"] for c in gitops.diff(edited, live)] == ["/manifests/0/spec/timezone"]
    updated = gitops.update(edited, live)
    assert gitops.diff(edited, updated) == []
    assert yaml.safe_load(path.read_text())["spec"]["timezone"] == "Asia/Tokyo"

    gitops.delete(updated.id)
    assert not path.exists() and gitops.read(artifact) is None
    gitops.delete(updated.id)


def test_gitops_files_are_deterministic(
    gitops: GitOpsArgoEngine, artifact: Artifact, tmp_path: Path
) -> None:
    gitops.create(artifact)
    name = f"workflows/{artifact.resource}.yaml"
    path = tmp_path / "deploy/argo" / name
    first = path.read_bytes()
    gitops.create(artifact)
    assert path.read_bytes() == first
    expected = manifest_text(stamped(artifact.document["manifests"][0], artifact.digest))
    assert first.decode() == expected
    # the artifact's own file plus the digest stamp: nothing else differs
    assert yaml.safe_load(first) == stamped(yaml.safe_load(artifact.files[name]), artifact.digest)
    identity = f"{artifact.resource}.identity.yaml"
    assert sorted(p.name for p in path.parent.iterdir()) == [identity, path.name]  # no temp files


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ns" / "a.yaml"
    write_atomic(path, "old: 1\n")

    def failing(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new: 2\n")
    assert path.read_text() == "old: 1\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.yaml"]


def test_gitops_list_managed_skips_foreign_files(
    gitops: GitOpsArgoEngine, artifacts: dict[tuple[str, str], Artifact], tmp_path: Path
) -> None:
    ours = [a for a in artifacts.values() if a.engine == "argo"]
    for artifact in ours:
        gitops.create(artifact)
    foreign = tmp_path / "deploy/argo/workflows/hand-made.yaml"
    foreign.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: x}\n"
    )
    (tmp_path / "deploy/argo/workflows/broken.yaml").write_text(": not yaml : [\n")
    managed = gitops.list_managed()
    assert sorted(live.id for live in managed) == sorted(next(iter(a.files)) for a in ours)
    assert {live.workflow for live in managed} == {a.workflow for a in ours}


# -- kubernetes delivery, against a fake API ----------------------------------------------------


class FakeApiException(Exception):
    """Shaped like kubernetes.client.ApiException: `status` is the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"({status}) Reason: {reason}")
        self.status = status


class FakeCustomObjects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.versions = 0
        self.fail_next: list[int] = []
        self.calls = 0
        self.timeouts: list[Any] = []
        self.frozen = False

    def _enter(self, timeout: Any) -> None:
        self.calls += 1
        self.timeouts.append(timeout)
        if self.frozen:
            # what the kubernetes client does against a server that accepted the connection
            # and never answers: wait out its read timeout, then raise urllib3's error
            time.sleep(timeout[1])
            raise ReadTimeoutError(None, "/apis", f"Read timed out. (read timeout={timeout[1]})")
        if self.fail_next:
            raise FakeApiException(self.fail_next.pop(0), "injected")

    def _stored(self, body: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        self.versions += 1
        stored = copy.deepcopy(body)
        meta = stored["metadata"]
        meta["resourceVersion"] = str(self.versions)
        meta["uid"] = (previous or {}).get("metadata", {}).get("uid", f"uid-{self.versions}")
        meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
        meta["generation"] = self.versions
        stored["status"] = {"conditions": []}
        return stored

    def get_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        *,
        _request_timeout: Any = None,
    ) -> Any:
        self._enter(_request_timeout)
        if (namespace, plural, name) not in self.objects:
            raise FakeApiException(404, "Not Found")
        return copy.deepcopy(self.objects[(namespace, plural, name)])

    def create_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        body: Any,
        *,
        _request_timeout: Any = None,
    ) -> Any:
        self._enter(_request_timeout)
        key = (namespace, plural, body["metadata"]["name"])
        if key in self.objects:
            raise FakeApiException(409, "AlreadyExists")
        self.objects[key] = self._stored(body, None)
        return copy.deepcopy(self.objects[key])

    def replace_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: Any,
        *,
        _request_timeout: Any = None,
    ) -> Any:
        self._enter(_request_timeout)
        key = (namespace, plural, name)
        if key not in self.objects:
            raise FakeApiException(404, "Not Found")
        current = self.objects[key]
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise FakeApiException(409, "Conflict: the object has been modified")
        self.objects[key] = self._stored(body, current)
        return copy.deepcopy(self.objects[key])

    def delete_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        *,
        _request_timeout: Any = None,
    ) -> Any:
        self._enter(_request_timeout)
        if self.objects.pop((namespace, plural, name), None) is None:
            raise FakeApiException(404, "Not Found")
        return {"status": "Success"}

    def list_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        *,
        label_selector: str = "",
        _request_timeout: Any = None,
    ) -> Any:
        self._enter(_request_timeout)
        key, _, value = label_selector.partition("=")
        items = [
            copy.deepcopy(obj)
            for (ns, pl, _), obj in sorted(self.objects.items())
            if ns == namespace
            and pl == plural
            and (not key or obj["metadata"].get("labels", {}).get(key) == value)
        ]
        return {"items": items}


@pytest.fixture
def fake() -> FakeCustomObjects:
    return FakeCustomObjects()


@pytest.fixture
def kube(fake: FakeCustomObjects, environment: Environment) -> KubernetesArgoEngine:
    target = environment.target("argo-local").model_copy(update={"delivery": "kubernetes"})
    return KubernetesArgoEngine(target, environment, fake, policy=FAST)


def test_kubernetes_lifecycle(kube: KubernetesArgoEngine, artifact: Artifact) -> None:
    assert kube.read(artifact) is None
    live = kube.create(artifact)
    assert live.id == f"workflows/cronworkflows/{artifact.resource}"
    assert live.digest == artifact.digest
    assert kube.diff(artifact, live) == []  # uid, resourceVersion, status... normalized away

    edited = changed(artifact, {"/manifests/0/spec/timezone": "Asia/Tokyo"})
    assert [c["path"] for c in kube.diff(edited, live)] == ["/manifests/0/spec/timezone"]
    updated = kube.update(edited, live)
    assert kube.diff(edited, updated) == []

    kube.delete(updated.id)
    assert kube.read(artifact) is None
    kube.delete(updated.id)


def test_kubernetes_transient_errors_are_retried_permanent_ones_reported(
    kube: KubernetesArgoEngine, fake: FakeCustomObjects, artifact: Artifact
) -> None:
    fake.fail_next = [503, 429]
    live = kube.create(artifact)
    assert kube.diff(artifact, live) == []

    fake.fail_next = [503, 503, 503]
    with pytest.raises(ResourceError) as raised:
        kube.read(artifact)
    assert raised.value.transient and artifact.resource in raised.value.message

    fake.fail_next = [403]
    with pytest.raises(ResourceError) as raised:
        kube.delete(live.id)
    assert not raised.value.transient and "403" in raised.value.message


def test_kubernetes_requests_carry_the_target_timeouts_and_a_silent_cluster_is_given_up(
    fake: FakeCustomObjects,
    environment: Environment,
    artifact: Artifact,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every request carries (connect, call) as its `_request_timeout`; a cluster that never
    answers costs one deadline, names the target, and later requests fail at once."""
    timeouts = TargetTimeouts.model_validate({"connect": "1s", "call": "300ms", "deadline": "1s"})
    target = environment.target("argo-local").model_copy(
        update={"delivery": "kubernetes", "timeouts": timeouts}
    )
    kube = KubernetesArgoEngine(target, environment, fake, policy=RetryPolicy(base=0.1, cap=0.2))
    assert kube.read(artifact) is None
    assert set(fake.timeouts) == {(1.0, 0.3)}

    fake.frozen = True
    began = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="controlplane.engines"),
        pytest.raises(ResourceError) as raised,
    ):
        kube.read(artifact)
    assert time.monotonic() - began < 1.0 + 0.3 + 0.5  # the deadline and one last call
    assert raised.value.transient and "argo-local" in raised.value.message
    assert "argo-local (Kubernetes API) is not answering; retrying until" in caplog.text

    calls = fake.calls
    began = time.monotonic()
    with pytest.raises(ResourceError) as raised:
        kube.read(artifact)
    assert time.monotonic() - began < 0.1 and fake.calls == calls
    assert "argo-local (Kubernetes API) did not answer within 1s" in raised.value.message


def test_kubernetes_list_managed_by_label(
    kube: KubernetesArgoEngine, fake: FakeCustomObjects, artifact: Artifact
) -> None:
    kube.create(artifact)
    fake.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        "workflows",
        "workflowtemplates",
        {"kind": "WorkflowTemplate", "metadata": {"name": "hand-made", "labels": {"team": "x"}}},
    )
    managed = kube.list_managed()
    assert [live.resource for live in managed] == [artifact.resource]
    assert kube.diff(artifact, managed[0]) == []
