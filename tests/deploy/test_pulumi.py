"""The `pulumi` backend: the stack program of `stacks/`, the dynamic provider and the CLI check.

The Pulumi CLI (the engine) cannot be installed on these machines, so `pulumi up` never runs
here: the stack program runs under Pulumi's own mocks (`pulumi.runtime.set_mocks`), and the
provider's create / read / update / delete / diff run directly against the real local engines
(moto server, Temporal dev server, GitOps files), as the provider process would run them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest
from pulumi.automation import EngineEvent
from pulumi.runtime import rpc

from controlplane.deploy.backend import Backend, open_backend
from controlplane.deploy.pulumi_backend import (
    INSTALL_HINT,
    PulumiBackend,
    ResourceOutcome,
    StepEvents,
)
from controlplane.deploy.pulumi_provider import (
    RESOURCE_TYPE,
    EngineProvider,
    artifact_inputs,
    artifact_of,
    declare,
    resource_name,
)
from controlplane.deploy.state import ResourceKey
from controlplane.engines import engine_client
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.translator import Artifact, canonical_json
from controlplane.errors import ConfigError
from controlplane.pipeline import render_all
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_repo
from tests.conftest import ROOT
from tests.engine_modules.conftest import changed, unique

STACK_PROGRAM = ROOT / "stacks" / "__main__.py"


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource the program registers; the "engine" answers with its inputs."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        live_id = f"live:{args.name}"
        return live_id, {**args.inputs, "live_id": live_id, "live_digest": args.inputs["digest"]}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingMocks]:
    """Pulumi's mock monitor for stack `local` of project `cpl` (the CLI cannot run here)."""
    for name in ("CPL_REPO", "CPL_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    loop = asyncio.new_event_loop()  # Pulumi's runtime wants a current loop; asyncio.run clears it
    asyncio.set_event_loop(loop)
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="cpl", stack="local", preview=False)
    try:
        yield recording
    finally:
        pulumi.runtime.set_all_config({})
        asyncio.set_event_loop(None)
        loop.close()


def _example_artifacts(environment: str = "local") -> list[Artifact]:
    env = load_environment(ROOT, environment)
    return render_all([w.model for w in load_repo(ROOT).workflows], env)


# -- the stack program, under Pulumi's mocks ----------------------------------------------------


def test_the_stack_program_declares_one_resource_per_workflow_and_target(
    mocks: RecordingMocks,
) -> None:
    """Runs stacks/__main__.py as Pulumi would (runpy, `__main__`) under set_mocks: the Pulumi
    CLI cannot run here. Config `cpl:repo` points at this repo; the environment is the stack."""
    pulumi.runtime.set_config("cpl:repo", str(ROOT))

    @pulumi.runtime.test
    def run() -> None:
        runpy.run_path(str(STACK_PROGRAM), run_name="__main__")

    run()

    expected = {resource_name(a.workflow, a.target): a for a in _example_artifacts()}
    assert len(expected) > 10  # the example repo spans the three engines of `local`
    names = [r.name for r in mocks.resources]
    assert sorted(names) == sorted(expected)  # exactly one resource per (workflow, target)
    assert "retail-inventory-sync@sfn-local" in names
    assert "finance-fx-rates-refresh@temporal-local" in names
    for args in mocks.resources:
        artifact = expected[args.name]
        assert args.typ == RESOURCE_TYPE == "pulumi-python:dynamic/cpl:Workflow"
        inputs = args.inputs
        assert inputs["digest"] == artifact.digest
        assert inputs["engine"] == artifact.engine
        assert inputs["resource"] == artifact.resource
        assert (inputs["workflow"], inputs["target"]) == (artifact.workflow, artifact.target)
        assert inputs["document"] == canonical_json(artifact.document)
        assert (inputs["environment"], inputs["repo"]) == ("local", str(ROOT))
    assert {a.engine for a in expected.values()} == {"stepfunctions", "temporal", "argo"}


def test_the_provider_is_pickled_by_reference_and_holds_no_state(mocks: RecordingMocks) -> None:
    """Under set_mocks (the Pulumi CLI cannot run here): the `__provider` input the provider
    process unpickles names the class in `controlplane` and carries no client or secret."""
    artifact = next(a for a in _example_artifacts() if a.engine == "stepfunctions")

    @pulumi.runtime.test
    def run() -> None:
        declare([artifact], "local", ROOT)

    run()

    (args,) = mocks.resources
    pickled = base64.b64decode(args.inputs["__provider"])
    assert b"controlplane.deploy.pulumi_provider" in pickled and b"EngineProvider" in pickled
    assert len(pickled) < 1024  # a reference to the class, not its code or any live client
    provider = pickle.loads(pickled)  # plain pickle opcodes: no code travels with it
    assert isinstance(provider, EngineProvider) and vars(provider) == {}


def test_the_stack_exports_each_resource_id_and_digest(mocks: RecordingMocks) -> None:
    """Under set_mocks (the Pulumi CLI cannot run here): the outputs the backend maps back."""
    artifacts = [a for a in _example_artifacts() if a.workflow.startswith("retail/")]
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        resources = declare(artifacts, "local", ROOT)
        pairs = {
            name: pulumi.Output.all(r.live_id, r.digest, r.urn) for name, r in resources.items()
        }
        return pulumi.Output.all(**pairs).apply(seen.update)

    run()

    assert set(seen) == {resource_name(a.workflow, a.target) for a in artifacts}
    for artifact in artifacts:
        name = resource_name(artifact.workflow, artifact.target)
        live_id, digest, urn = seen[name]
        assert (live_id, digest) == (f"live:{name}", artifact.digest)
        # the mock monitor qualifies the type with the root stack's; the engine does not
        assert urn.startswith("urn:pulumi:local::cpl::")
        assert urn.endswith(f"{RESOURCE_TYPE}::{name}")


# -- the inputs survive Pulumi's property bags ----------------------------------------------


def test_inputs_survive_pulumis_property_serialization() -> None:
    """Pulumi's property bags turn ints into floats and drop nested nulls: the document travels
    as canonical JSON, so the artifact (and its digest) comes back unchanged."""
    artifact = next(a for a in _example_artifacts() if a.engine == "stepfunctions")
    inputs = artifact_inputs(artifact, "local", ROOT)

    async def round_trip() -> dict[str, Any]:
        return dict(rpc.deserialize_properties(await rpc.serialize_properties(inputs, {})))

    back = asyncio.run(round_trip())
    assert artifact_of(back).document == artifact.document
    assert artifact_of(back).digest == artifact.digest == back["digest"]
    assert EngineProvider().check({}, back).failures == []
    tampered = {**back, "digest": "sha256:" + "0" * 64}
    assert [f.property for f in EngineProvider().check({}, tampered).failures] == ["digest"]


# -- the provider against the real engines --------------------------------------------------


WORKFLOWS = {
    "retail/inventory-sync": "stepfunctions",
    "finance/fx-rates-refresh": "temporal",
    "retail/price-feed-export": "argo",
}
Repo = tuple[Path, dict[str, str]]  # the control repo, and example key → this test's key


def _control_repo(root: Path, replacements: dict[str, str]) -> Repo:
    """A control repo with `local` (edited) and a few examples under tenants of this test, so
    tests sharing the session engines never touch each other's resources."""
    text = (ROOT / "environments" / "local.yaml").read_text(encoding="utf-8")
    for old, new in replacements.items():
        text = text.replace(old, new)
    (root / "environments").mkdir(parents=True)
    (root / "environments" / "local.yaml").write_text(text, encoding="utf-8")
    suffix = unique("")
    keys: dict[str, str] = {}
    for key in WORKFLOWS:
        tenant, name = key.split("/")
        source = (ROOT / "workflows" / tenant / f"{name}.yaml").read_text(encoding="utf-8")
        path = root / "workflows" / tenant / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.replace(f"tenant: {tenant}", f"tenant: {tenant}{suffix}", 1))
        keys[key] = f"{tenant}{suffix}/{name}"
    return root, keys


@pytest.fixture
def live_repo(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> Repo:
    """`local` pointing at the session's real engines, with a Temporal namespace of its own
    (GitOps manifests land under the repo)."""
    return _control_repo(
        tmp_path,
        {
            "http://127.0.0.1:4566": moto_endpoint,
            "127.0.0.1:7233": temporal_server.address,
            "namespace: cpl-local": f"namespace: {unique('cpl-pu-')}",
        },
    )


def _artifact(repo: Repo, workflow: str) -> Artifact:
    root, keys = repo
    environment = load_environment(root, "local")
    rendered = render_all([w.model for w in load_repo(root).workflows], environment)
    wanted = (keys[workflow], WORKFLOWS[workflow])
    return next(a for a in rendered if (a.workflow, a.engine) == wanted)


def _sfn(repo: Path) -> Any:
    target = load_environment(repo, "local").target("sfn-local")
    return boto3.client(
        "stepfunctions",
        region_name=target.region,
        endpoint_url=target.endpoint,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )


@pytest.mark.integration
def test_provider_lifecycle_on_step_functions(live_repo: Repo) -> None:
    provider = EngineProvider()
    artifact = _artifact(live_repo, "retail/inventory-sync")
    inputs = artifact_inputs(artifact, "local", live_repo[0])
    sfn = _sfn(live_repo[0])

    created = provider.create(inputs)
    described = sfn.describe_state_machine(stateMachineArn=created.id)
    assert described["name"] == artifact.resource
    tags = {
        t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=created.id)["tags"]
    }
    assert tags["cpl:digest"] == artifact.digest
    outs = created.outs or {}
    assert (outs["live_id"], outs["live_digest"]) == (created.id, artifact.digest)

    same = provider.diff(created.id, outs, inputs)
    assert (same.changes, same.replaces) == (False, [])

    edited = changed(artifact, {"/definition/Comment": "edited by pulumi"})
    news = artifact_inputs(edited, "local", live_repo[0])
    diff = provider.diff(created.id, outs, news)
    assert (diff.changes, diff.replaces) == (True, [])

    updated = provider.update(created.id, outs, news)
    assert (updated.outs or {})["live_digest"] == edited.digest
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=created.id)["definition"])
    assert definition["Comment"] == "edited by pulumi"
    assert provider.diff(created.id, updated.outs or {}, news).changes is False

    read = provider.read(created.id, updated.outs or {})
    assert read.id == created.id and (read.outs or {})["live_digest"] == edited.digest

    provider.delete(created.id, updated.outs or {})
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=created.id)
    assert provider.read(created.id, updated.outs or {}).id == ""  # gone: refresh drops it
    assert provider.diff(created.id, updated.outs or {}, news).changes is True


@pytest.mark.integration
def test_provider_create_converges_a_resource_that_already_lives(live_repo: Repo) -> None:
    """A re-run after a crash, or a resource the direct backend made: no duplicate, no error."""
    provider = EngineProvider()
    artifact = _artifact(live_repo, "retail/inventory-sync")
    first = provider.create(artifact_inputs(artifact, "local", live_repo[0]))
    edited = changed(artifact, {"/definition/Comment": "second create"})
    second = provider.create(artifact_inputs(edited, "local", live_repo[0]))
    assert second.id == first.id
    sfn = _sfn(live_repo[0])
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=first.id)["definition"])
    assert definition["Comment"] == "second create"
    provider.delete(first.id, second.outs or {})


@pytest.mark.integration
def test_provider_lifecycle_on_temporal(live_repo: Repo) -> None:
    provider = EngineProvider()
    artifact = _artifact(live_repo, "finance/fx-rates-refresh")
    inputs = artifact_inputs(artifact, "local", live_repo[0])
    environment = load_environment(live_repo[0], "local")

    def live(of: Artifact) -> Any:
        client = engine_client(environment.target("temporal-local"), environment, repo=live_repo[0])
        try:
            return client.read(of)
        finally:
            client.close()  # type: ignore[attr-defined]

    created = provider.create(inputs)
    assert created.id == f"{environment.target('temporal-local').namespace}/{artifact.workflow}"
    found = live(artifact)
    assert found is not None and found.digest == artifact.digest
    assert provider.diff(created.id, created.outs or {}, inputs).changes is False

    edited = changed(artifact, {"/taskQueue": "cpl-interpreter-v2"})
    news = artifact_inputs(edited, "local", live_repo[0])
    assert provider.diff(created.id, created.outs or {}, news).changes is True
    updated = provider.update(created.id, created.outs or {}, news)
    found = live(edited)
    assert found is not None and found.digest == edited.digest
    assert found.document["taskQueue"] == "cpl-interpreter-v2"
    assert provider.read(created.id, updated.outs or {}).id == created.id

    provider.delete(created.id, updated.outs or {})
    assert live(edited) is None
    assert provider.read(created.id, updated.outs or {}).id == ""


def test_provider_lifecycle_on_argo_gitops(tmp_path: Path) -> None:
    """GitOps delivery is files under the control repo: the provider writes and removes them."""
    repo = _control_repo(tmp_path, {})
    artifact = _artifact(repo, "retail/price-feed-export")
    provider = EngineProvider()
    inputs = artifact_inputs(artifact, "local", tmp_path)

    created = provider.create(inputs)
    manifest = tmp_path / "deploy" / "argo" / created.id
    assert manifest.is_file() and artifact.digest in manifest.read_text(encoding="utf-8")
    assert (created.outs or {})["live_digest"] == artifact.digest
    assert provider.diff(created.id, created.outs or {}, inputs).changes is False
    provider.delete(created.id, created.outs or {})
    assert not manifest.exists()


# -- the backend's reading of Pulumi's engine events --------------------------------------


def _event(kind: str, op: str, name: str, **state: Any) -> EngineEvent:
    urn = f"urn:pulumi:local::cpl::{RESOURCE_TYPE}::{name}"
    metadata: dict[str, Any] = {"op": op, "urn": urn, "type": RESOURCE_TYPE, "provider": ""}
    if state:
        metadata["old" if op == "delete" else "new"] = {"type": RESOURCE_TYPE, "urn": urn, **state}
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": metadata}})


def test_engine_events_become_one_outcome_per_resource() -> None:
    """Engine events as the Pulumi CLI streams them during `up`, written by hand here: the CLI
    cannot run on these machines."""
    created = ResourceKey("retail/inventory-sync", "sfn-local")
    failed = ResourceKey("finance/fx-rates-refresh", "temporal-local")
    skipped = ResourceKey("retail/order-fulfillment", "sfn-local")
    removed = ResourceKey("retail/legacy-catalog-import", "argo-local")
    events = StepEvents()
    outputs = {"workflow": removed.workflow, "target": removed.target, "live_id": "old.yaml"}
    for event in [
        _event("resourcePreEvent", "create", resource_name(*created)),
        _event(
            "resOutputsEvent",
            "create",
            resource_name(*created),
            id="arn:sm",
            inputs={"digest": "sha256:a"},
            outputs={"live_id": "arn:sm", "live_digest": "sha256:a"},
        ),
        _event("resourcePreEvent", "update", resource_name(*failed)),
        EngineEvent.from_json(
            {
                "sequence": 2,
                "timestamp": 0,
                "diagnosticEvent": {
                    "severity": "error",
                    "message": "namespace is unreachable\n",
                    "urn": f"urn:pulumi:local::cpl::{RESOURCE_TYPE}::{resource_name(*failed)}",
                },
            }
        ),
        _event("resOpFailedEvent", "update", resource_name(*failed)),
        _event(
            "resOutputsEvent", "delete", "retail-legacy-catalog-import@argo-local", outputs=outputs
        ),
    ]:
        events(event)

    declared = {resource_name(*key): key for key in (created, failed, skipped)}
    outcomes = {o.key: o for o in events.outcomes(declared)}
    assert outcomes[created] == ResourceOutcome(created, "create", "arn:sm", "sha256:a")
    assert outcomes[failed].operation == "update"
    assert outcomes[failed].error == "namespace is unreachable" and not outcomes[failed].ok
    assert outcomes[skipped] == ResourceOutcome(skipped, "not-run")
    assert outcomes[removed] == ResourceOutcome(removed, "delete", "old.yaml")


# -- the backend without the Pulumi CLI -------------------------------------------------------


def test_the_backend_says_the_pulumi_cli_is_missing_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` binary anywhere on PATH
    environment: Environment = load_environment(ROOT, "local")
    builds: list[Callable[[], object]] = [
        lambda: PulumiBackend(environment, repo=ROOT),
        lambda: open_backend("pulumi", environment, repo=ROOT),
    ]
    for build in builds:
        with pytest.raises(ConfigError) as raised:
            build()
        assert str(raised.value) == INSTALL_HINT
        assert "Pulumi CLI" in INSTALL_HINT and "not on PATH" in INSTALL_HINT
        assert "https://www.pulumi.com/docs/install/" in INSTALL_HINT
        assert "--backend direct" in INSTALL_HINT


def test_with_a_pulumi_binary_the_backend_keeps_its_stack_under_deploy_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `pulumi` file on PATH (the real CLI cannot be installed here): the backend
    is built, fits apply's Backend protocol and addresses resources as the engine names them."""
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    environment = load_environment(ROOT, "local")
    backend = PulumiBackend(environment, repo=ROOT)
    assert isinstance(backend, Backend) and backend.name == "pulumi"
    assert backend.cli == str(fake)
    assert backend.state_dir == ROOT / ".cpl" / "state" / "local" / "pulumi"  # deploy.state
    key = ResourceKey("retail/inventory-sync", "sfn-local")
    assert backend._urn(key) == (
        f"urn:pulumi:local::cpl::{RESOURCE_TYPE}::retail-inventory-sync@sfn-local"
    )
