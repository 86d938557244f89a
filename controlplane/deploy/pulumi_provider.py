"""The Pulumi dynamic provider of `stacks/`: one resource per (workflow, target), whose
create / read / update / delete / diff are the engine module of `controlplane.engines`.

Serialization. Pulumi pickles the provider *instance* with dill into the resource's
`__provider` property and unpickles it in a separate process (`python -m pulumi.dynamic`, run
by the CLI's `pulumi-resource-pulumi-python` plugin). `EngineProvider` has no instance state and
lives in an importable module, so dill stores a reference to the class, not its code: the
provider process imports `controlplane` from the same virtualenv (Pulumi.yaml `virtualenv`, or
`PULUMI_PYTHON_CMD`, which the backend sets). Every method builds its engine client from the
resource's properties and closes it before returning; nothing live is ever pickled.

Properties. Pulumi's property bags turn integers into floats and drop nested nulls, which would
change an artifact's digest and its field-level diff; so the artifact document (and its files)
travel as canonical JSON *strings*, checked against the digest on the way in (`check`).
Properties: `environment` and `repo` (to load the environment and root GitOps delivery), the
artifact's `workflow`, `version`, `target`, `engine`, `resource`, `document`, `files`,
`digest`; outputs add `live_id` (the engine's id, also the Pulumi id) and `live_digest` (the
digest stamped on the live resource).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from controlplane.engines import EngineClient, LiveResource, engine_client
from controlplane.engines.translator import Artifact, canonical_json, digest_of
from controlplane.spec.load import load_environment

RESOURCE_MODULE = "cpl"
RESOURCE_KIND = "Workflow"
RESOURCE_TYPE = f"pulumi-python:dynamic/{RESOURCE_MODULE}:{RESOURCE_KIND}"

# Properties the provider needs from the artifact; a change of any other input is no change.
_IDENTITY = ("environment", "target", "engine", "resource", "workflow")


def resource_name(workflow: str, target: str) -> str:
    """The Pulumi name of a (workflow, target): `<tenant>-<name>@<target>`."""
    return f"{workflow.replace('/', '-', 1)}@{target}"


def artifact_inputs(artifact: Artifact, environment: str, repo: Path) -> dict[str, Any]:
    """The resource inputs of an artifact: plain strings that survive Pulumi's property bags."""
    return {
        "environment": environment,
        "repo": str(repo.resolve()),
        "workflow": artifact.workflow,
        "version": artifact.version,
        "target": artifact.target,
        "engine": artifact.engine,
        "resource": artifact.resource,
        "document": canonical_json(artifact.document),
        "files": canonical_json(artifact.files),
        "digest": artifact.digest,
    }


def artifact_of(props: dict[str, Any]) -> Artifact:
    """The artifact the inputs (or stored outputs) of a resource describe."""
    return Artifact(
        workflow=str(props["workflow"]),
        version=str(props["version"]),
        target=str(props["target"]),
        engine=props["engine"],
        resource=str(props["resource"]),
        document=json.loads(props["document"]),
        support=(),
        write_files=partial(_stored_files, json.loads(props["files"])),
    )


def _stored_files(files: dict[str, str], document: dict[str, Any]) -> dict[str, str]:
    """The files as they were rendered (GitOps delivery writes them as they are)."""
    return files


@contextmanager
def _client(props: dict[str, Any]) -> Iterator[EngineClient]:
    """The engine module of the resource's target, built now and closed after use."""
    repo = Path(props["repo"])
    environment = load_environment(repo, str(props["environment"]))
    client = engine_client(environment.target(str(props["target"])), environment, repo=repo)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def _outs(props: dict[str, Any], live: LiveResource) -> dict[str, Any]:
    inputs = {key: value for key, value in props.items() if not key.startswith("__")}
    return {**inputs, "live_id": live.id, "live_digest": live.digest}


def _converge(client: EngineClient, artifact: Artifact) -> LiveResource:
    """Create the resource, or converge it when it already lives (a re-run after a crash, or a
    resource the `direct` backend created): creating never duplicates."""
    live = client.read(artifact)
    return client.create(artifact) if live is None else client.update(artifact, live)


class EngineProvider(dynamic.ResourceProvider):
    """Create / read / update / delete / diff of one (workflow, target) through its engine
    module. Stateless: safe to pickle (see the module docstring)."""

    # Nothing secret is captured: keep the pickled provider readable in the state.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [
            dynamic.CheckFailure(key, f"missing input '{key}'")
            for key in (*_IDENTITY, "repo", "version", "document", "files", "digest")
            if not isinstance(news.get(key), str)
        ]
        if not failures and digest_of(json.loads(news["document"])) != news["digest"]:
            failures.append(
                dynamic.CheckFailure("digest", "the document does not have this digest")
            )
        return dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        with _client(props) as client:
            live = _converge(client, artifact_of(props))
        return dynamic.CreateResult(live.id, _outs(props, live))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        with _client(props) as client:
            live = client.read(artifact_of(props))
        if live is None:
            return dynamic.ReadResult("", {})  # gone: a refresh drops it from the stack
        return dynamic.ReadResult(live.id, _outs(props, live))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """Changes when the live resource differs from the new artifact (the engine's
        field-level diff), when it is missing, or when its stamped digest is another one.

        An engine switch of the target replaces the resource (the old engine's copy must go).
        """
        replaces = ["engine"] if olds.get("engine") != news.get("engine") else []
        if replaces:
            return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        return dynamic.DiffResult(changes=bool(changes(news)), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        with _client(news) as client:
            live = _converge(client, artifact_of(news))
        return dynamic.UpdateResult(_outs(news, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _client(props) as client:
            client.delete(id_)


def changes(props: dict[str, Any]) -> list[str]:
    """What differs between the artifact of `props` and what lives: JSON pointers of the
    engine's field-level diff, `/` when the resource is missing, `/digest` for another stamp."""
    artifact = artifact_of(props)
    with _client(props) as client:
        live = client.read(artifact)
        if live is None:
            return ["/"]
        paths = [change["path"] for change in client.diff(artifact, live)]
    if live.digest != artifact.digest:
        paths.append("/digest")
    return paths


class CplWorkflowResource(dynamic.Resource, module=RESOURCE_MODULE, name=RESOURCE_KIND):
    """One workflow on one target, named `<tenant>-<name>@<target>`."""

    live_id: pulumi.Output[str]
    live_digest: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self,
        artifact: Artifact,
        environment: str,
        repo: Path,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **artifact_inputs(artifact, environment, repo),
            "live_id": None,
            "live_digest": None,
        }
        super().__init__(
            EngineProvider(), resource_name(artifact.workflow, artifact.target), props, opts
        )


def declare(
    artifacts: Iterable[Artifact], environment: str, repo: Path
) -> dict[str, CplWorkflowResource]:
    """The stack program's body: one resource per artifact, and the stack outputs
    `{name: {"id": live id, "digest": artifact digest}}`. Declares resources; nothing else."""
    resources = {
        resource_name(a.workflow, a.target): CplWorkflowResource(a, environment, repo)
        for a in artifacts
    }
    for name, resource in resources.items():
        pulumi.export(name, {"id": resource.live_id, "digest": resource.digest})
    return resources
