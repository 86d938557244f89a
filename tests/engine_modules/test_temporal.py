"""The Temporal engine module against the real Temporal dev server of tests/engines.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec, ScheduleUpdate

from controlplane.engines import ResourceError, each
from controlplane.engines.retry import RetryPolicy
from controlplane.engines.temporal.client import TemporalEngine, record_key
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.namespaces import share_namespaces
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import Environment
from tests.engine_modules.conftest import changed, renamed, unique

T = TypeVar("T")

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


@pytest.fixture
def namespace() -> str:
    """A namespace nobody created yet: the engine registers it."""
    return unique("cpl-em-")


@pytest.fixture
def engine(
    temporal_server: DevServer, environment: Environment, namespace: str
) -> Iterator[TemporalEngine]:
    target = environment.target("temporal-local").model_copy(
        update={"address": temporal_server.address, "namespace": namespace}
    )
    with TemporalEngine(target, environment, policy=FAST) as engine:
        yield engine


def _in(namespace: str, artifact: Artifact) -> Artifact:
    return changed(renamed(artifact, unique()), {"/namespace/name": namespace})


@pytest.fixture
def scheduled(artifacts: dict[tuple[str, str], Artifact], namespace: str) -> Artifact:
    """finance/fx-rates-refresh: 30-day retention, a London-time cron schedule."""
    return _in(namespace, artifacts[("finance/fx-rates-refresh", "temporal")])


def _namespace_data(server: DevServer, namespace: str) -> dict[str, str]:
    async def describe() -> dict[str, str]:
        client = await server.connect()
        found = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return dict(found.namespace_info.data)

    return asyncio.run(describe())


def test_lifecycle_create_read_diff_update_delete(
    engine: TemporalEngine, scheduled: Artifact, temporal_server: DevServer, namespace: str
) -> None:
    assert engine.read(scheduled) is None  # the namespace does not even exist yet

    live = engine.create(scheduled)
    assert live.id == f"{namespace}/{scheduled.workflow}"
    assert live.digest == scheduled.digest
    # the namespace's retention is the namespace artifact's, not the workflow's
    assert live.document["namespace"] == {"name": namespace}
    assert live.document["schedule"]["cron"] == "0 * * * 1-5"
    assert engine.diff(scheduled, live) == []
    read = engine.read(scheduled)
    assert read is not None and engine.diff(scheduled, read) == []

    # the published version lives in the namespace's data map
    record = json.loads(_namespace_data(temporal_server, namespace)[record_key(scheduled.workflow)])
    assert record["version"] == scheduled.document["spec"]["version"]
    assert record["artifact"] == scheduled.digest

    edited = changed(
        scheduled,
        {
            "/schedule/cron": "30 6 * * *",
            "/schedule/overlap": "BUFFER_ONE",
            "/spec/version": "9.9.9",
        },
    )
    assert [c["path"] for c in engine.diff(edited, read)] == [
        "/schedule/cron",
        "/schedule/overlap",
        "/schedule/payload",  # the schedule starts runs with the old payload
        "/spec/payload",
        "/spec/version",
    ]
    updated = engine.update(edited, read)
    assert engine.diff(edited, updated) == []
    assert updated.document["spec"]["version"] == "9.9.9"

    engine.delete(updated.id)
    assert engine.read(scheduled) is None
    assert _namespace_data(temporal_server, namespace)[record_key(scheduled.workflow)] == ""
    engine.delete(updated.id)  # deleting twice is not an error


def test_unscheduled_workflow_is_published_without_a_schedule(
    engine: TemporalEngine, artifacts: dict[tuple[str, str], Artifact], namespace: str
) -> None:
    artifact = _in(namespace, artifacts[("retail/returns-processing", "temporal")])
    live = engine.create(artifact)
    assert live.document["schedule"] is None
    assert engine.diff(artifact, live) == []
    assert "searchAttributes" not in live.document  # the namespace artifact's
    engine.delete(live.id)


def test_namespace_is_a_shared_resource_derived_from_its_workflows(
    engine: TemporalEngine,
    artifacts: dict[tuple[str, str], Artifact],
    environment: Environment,
    namespace: str,
    temporal_server: DevServer,
) -> None:
    """Two workflows of one namespace asking for 30 days: one namespace artifact with that
    retention and cpl's search attributes, applied, read back, drifted and forgotten."""
    workflows = [
        _in(namespace, artifacts[(key, "temporal")])
        for key in ("finance/fx-rates-refresh", "retail/returns-processing")
    ]
    target = environment.target("temporal-local")
    env = environment.model_copy(
        update={
            "spec": environment.spec.model_copy(
                update={"targets": [target.model_copy(update={"namespace": namespace})]}
            )
        }
    )
    shared = [a for a in share_namespaces(workflows, env) if a.shared]
    assert [a.workflow for a in shared] == [f"shared:namespace/{namespace}"]
    (artifact,) = shared
    assert artifact.shared_by == tuple(sorted(w.workflow for w in workflows))
    assert artifact.document["retention"] == 30 * 86400

    live = engine.create(artifact)
    assert live.id == namespace and live.digest == artifact.digest
    assert live.document["retention"] == 30 * 86400
    assert set(live.document["searchAttributes"]) == {"CplWorkflow", "CplVersion", "CplTenant"}
    assert engine.diff(artifact, live) == []

    longer = changed(artifact, {"/retention": 90 * 86400})
    assert engine.diff(longer, live) == [
        {"path": "/retention", "expected": 90 * 86400, "actual": 30 * 86400}
    ]
    assert engine.diff(longer, engine.update(longer, live)) == []

    # no retention asked for (or a conflict): whatever the namespace has is accepted
    unasked = changed(artifact, {"/retention": None})
    assert engine.diff(unasked, engine.read(unasked) or live) == []

    # removing the last workflow stops managing the namespace; its histories stay
    engine.delete(live.id)
    assert _namespace_data(temporal_server, namespace)["cpl-namespace"] == ""
    assert engine.read(artifact) is not None


def test_list_managed_finds_cpl_entries_not_foreign_schedules(
    engine: TemporalEngine, scheduled: Artifact, temporal_server: DevServer, namespace: str
) -> None:
    ours = engine.create(scheduled)

    async def foreign_schedule() -> None:
        client = await temporal_server.connect()
        client = type(client)(client.service_client, namespace=namespace)
        await client.create_schedule(
            "hand-made",
            Schedule(
                action=ScheduleActionStartWorkflow("Other", id="hand-made", task_queue="q"),
                spec=ScheduleSpec(cron_expressions=["0 0 * * *"]),
            ),
        )

    asyncio.run(foreign_schedule())
    managed = {live.id: live for live in engine.list_managed()}
    assert list(managed) == [ours.id]
    assert engine.diff(scheduled, managed[ours.id]) == []
    engine.delete(ours.id)
    assert engine.list_managed() == []


def test_inventory_lists_published_versions_and_every_schedule_of_the_namespace(
    engine: TemporalEngine, scheduled: Artifact, temporal_server: DevServer, namespace: str
) -> None:
    assert engine.inventory(set()) == []  # no namespace yet: nothing deployed
    ours = engine.create(scheduled)

    async def foreign_schedule() -> None:
        client = await temporal_server.connect()
        client = type(client)(client.service_client, namespace=namespace)
        await client.create_schedule(
            "by-hand",
            Schedule(
                action=ScheduleActionStartWorkflow("Other", id="by-hand", task_queue="q"),
                spec=ScheduleSpec(cron_expressions=["0 0 * * *"]),
            ),
        )

    asyncio.run(foreign_schedule())
    # Schedules are listed through Temporal's visibility store, which catches up with
    # creations and deletions a moment later: wait for it, within a bound.
    listed = _settled(
        lambda: {live.resource: live for live in engine.inventory(set())},
        lambda found: set(found) == {ours.resource, "by-hand"},
    )
    assert set(listed) == {ours.resource, "by-hand"}
    assert listed[ours.resource].workflow == scheduled.workflow
    assert listed["by-hand"].workflow is None  # in cpl's namespace, without cpl's memo
    engine.delete(ours.id)
    remaining = _settled(
        lambda: [live.resource for live in engine.inventory(set())],
        lambda found: found == ["by-hand"],
    )
    assert remaining == ["by-hand"]


def _settled(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    """`read()` once `done` holds for it, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def test_desired_document_is_what_diff_compares(
    engine: TemporalEngine, scheduled: Artifact, environment: Environment, namespace: str
) -> None:
    """A workflow's retention ask does not reach its own document (the namespace artifact
    holds it); a namespace asked for no retention keeps the one it has."""
    live = engine.create(scheduled)
    assert engine.desired_document(scheduled, live) == live.document
    longer = changed(scheduled, {"/namespace/retention": 7776000})
    assert engine.desired_document(longer, live) == live.document
    target = environment.target("temporal-local").model_copy(update={"namespace": namespace})
    env = environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"targets": [target]})}
    )
    (shared,) = [a for a in share_namespaces([scheduled], env) if a.shared]
    namespace_live = engine.create(shared)
    unasked = changed(shared, {"/retention": None})
    assert engine.desired_document(unasked, namespace_live) == namespace_live.document
    assert engine.diff(unasked, namespace_live) == []
    other = changed(shared, {"/retention": 7776000})
    assert engine.desired_document(other, namespace_live) != namespace_live.document
    engine.delete(live.id)


def test_invalid_cron_is_a_permanent_error_naming_the_resource(
    engine: TemporalEngine, scheduled: Artifact, artifacts: dict[tuple[str, str], Artifact]
) -> None:
    bad = changed(scheduled, {"/schedule/cron": "every full moon"})
    good = _in(engine.namespace, artifacts[("health/patient-intake", "temporal")])
    outcome = each([bad, good], engine.create)
    assert [a.resource for a, _ in outcome.done] == [good.resource]
    [(_, error)] = outcome.failed
    assert not error.transient
    assert error.resource == bad.resource and bad.resource in error.message
    assert "INVALID_ARGUMENT" in error.message


def test_unreachable_server_is_transient_and_names_the_address(
    environment: Environment, scheduled: Artifact
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    target = environment.target("temporal-local").model_copy(update={"address": closed})
    with (
        TemporalEngine(target, environment, policy=FAST) as engine,
        pytest.raises(ResourceError) as raised,
    ):
        engine.read(scheduled)
    assert raised.value.transient and closed in raised.value.message
    assert raised.value.resource == scheduled.resource


def test_drift_of_an_edited_schedule_is_visible(
    engine: TemporalEngine, scheduled: Artifact, temporal_server: DevServer, namespace: str
) -> None:
    """Somebody replaces the schedule's spec outside cpl (a new cron, no time zone)."""
    live = engine.create(scheduled)

    async def edit() -> None:
        client = await temporal_server.connect()
        client = type(client)(client.service_client, namespace=namespace)
        handle = client.get_schedule_handle(scheduled.document["schedule"]["id"])

        def replace(current: object) -> object:
            described = current.description  # type: ignore[attr-defined]
            schedule = dataclasses.replace(
                described.schedule, spec=ScheduleSpec(cron_expressions=["15 3 * * *"])
            )
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)  # type: ignore[arg-type]

    asyncio.run(edit())
    drifted = engine.read(scheduled)
    assert drifted is not None
    cron, timezone = engine.diff(scheduled, drifted)
    assert cron["path"] == "/schedule/cron" and cron["actual"].startswith("unrecognised")
    assert timezone == {"path": "/schedule/timezone", "expected": "Europe/London", "actual": "UTC"}
    engine.delete(live.id)


def test_calls_through_the_namespace_cache_wait_for_a_namespace_registered_elsewhere(
    engine: TemporalEngine, namespace: str
) -> None:
    """A namespace registered by someone else (an apply that was then killed) right after a
    lookup: the database has it at once, the frontend's namespace cache answers "namespace
    not found" for about a second. Calls through the cache wait for it instead of failing,
    and a schedule lookup never reads that answer as "no schedule"."""

    async def scenario() -> tuple[dict[str, str], object]:
        assert await engine._describe_namespace("r") is None  # leaves a not-found entry
        client = await engine._connect("r")
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
            )
        )
        engine._namespace_cached = True  # as if another frontend had answered the probe
        return await engine._search_attributes("r"), await engine._schedule("r")

    attributes, schedule = engine._run(scenario())
    assert isinstance(attributes, dict) and schedule is None
