"""Temporal: the namespace and its retention, cpl's search attributes, the schedule, and the
published spec version.

Temporal runs code, not documents: deploying a spec means ensuring the namespace, the search
attributes and the schedule, and *publishing* the spec version the interpreter runs.

Where the published version lives: in the namespace's `data` map, one entry per workflow,
key `cpl/<tenant>/<name>`, value canonical JSON
`{"version", "digest", "payload", "artifact", "taskQueue", "tracing", "encryption", "limits"}`
(`digest` the spec digest, `payload` the digest of the whole spec payload with its bindings,
`artifact` the artifact digest apply stamps). Why there: every workflow has one, scheduled or
not (a schedule memo would only exist for scheduled workflows); one DescribeNamespace reads all
of a namespace's entries back, which is what drift and `list_managed` need; UpdateNamespace
upserts keys one by one, so publishing one workflow never rewrites another's entry; and it is
written last, so a crash mid-apply leaves the previous version published. The entry holds
digests, not the payload: the payload is the artifact in Git at that version (and, for a
scheduled workflow, the argument of its schedule, whose digest `read` checks). Temporal has no
way to remove a key from `data`: a deleted entry is set to "" and "" reads as absent.

The schedule's cron: Temporal compiles cron text into calendar ranges and forgets the text, so
cpl sends `<cron> # cpl:cron=<cron>` and reads the cron back from the calendar's comment; a
schedule whose spec was replaced outside cpl has no such comment and reads as
`unrecognised: ...` (drift). Schedules carry the memo `cpl.managed`/`cpl.workflow`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeNamespaceResponse,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from controlplane.engines.live import (
    DIGEST_TAG,
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
    aretry,
    is_transient,
    is_unanswered,
)
from controlplane.engines.temporal.namespaces import NAMESPACE_KIND
from controlplane.engines.temporal.runner import connect
from controlplane.engines.temporal.runtime.payload import make_run_payload
from controlplane.engines.timeouts import TargetClock, TargetSilent, Timeouts
from controlplane.engines.translator import Artifact, canonical_json, digest_of
from controlplane.errors import EngineError
from controlplane.monitoring.delivery import RulesFile, is_rules, is_rules_id
from controlplane.spec.environment import EngineName, Environment, Target

Result = TypeVar("Result")

RECORD_PREFIX = "cpl/"
NAMESPACE_STAMP = "cpl-namespace"
"""The namespace `data` key where apply stamps the namespace artifact's digest."""
CRON_MARK = "cpl:cron="
DEFAULT_TIMEZONE = "UTC"
NAMESPACE_VISIBLE_SECONDS = 30.0
"""How long a newly registered namespace may take to reach the frontend's cache."""


def record_key(workflow: str) -> str:
    """The namespace `data` key of a workflow's published version: `cpl/<tenant>/<name>`."""
    return RECORD_PREFIX + workflow


class TemporalEngine:
    """The live Temporal resources of one target (synchronous facade over temporalio)."""

    engine: EngineName = "temporal"

    def __init__(
        self,
        target: Target,
        environment: Environment,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        ignore: tuple[str, ...] = (),
        repo: Path | None = None,
    ) -> None:
        self.target = target
        self.environment = environment
        self.policy = policy
        self.ignore = ignore
        self.namespace = target.namespace or "default"
        self._loop = asyncio.new_event_loop()
        self._client: Client | None = None
        self._namespace_cached = False
        self.timeouts = Timeouts.of(target)
        self.clock = TargetClock(f"{target.name} ({target.address})", self.timeouts)
        self.rules = RulesFile(target, environment, repo)  # the target's Prometheus rules

    def close(self) -> None:
        self._loop.close()

    def __enter__(self) -> TemporalEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the contract -----------------------------------------------------------------------

    def read(self, artifact: Artifact) -> LiveResource | None:
        if is_rules(artifact):
            return self.rules.read(artifact)
        if _is_namespace(artifact):
            return self._run(self._read_namespace(artifact.resource))
        return self._run(self._read(artifact.workflow))

    def create(self, artifact: Artifact) -> LiveResource:
        if is_rules(artifact):
            return self.rules.apply(artifact)
        if _is_namespace(artifact):
            return self._run(self._apply_namespace(artifact))
        return self._run(self._apply(artifact, None))

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        if is_rules(artifact):
            return self.rules.apply(artifact)
        if _is_namespace(artifact):
            return self._run(self._apply_namespace(artifact))
        return self._run(self._apply(artifact, live))

    def delete(self, resource_id: str) -> None:
        if is_rules_id(resource_id):
            self.rules.delete(resource_id)
            return
        if "/" not in resource_id:  # a namespace: never deleted, only no longer managed
            self._run(self._forget_namespace(resource_id))
            return
        self._run(self._delete(resource_id))

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        if is_rules(artifact):
            return self.rules.diff(artifact, live)
        return diff_documents(self.desired_document(artifact, live), dict(live.document))

    def list_managed(self) -> list[LiveResource]:
        return self._run(self._list_managed())

    # -- reading ----------------------------------------------------------------------------

    async def _read(self, workflow: str) -> LiveResource | None:
        resource = workflow.replace("/", "-", 1)
        namespace = await self._describe_namespace(resource)
        if namespace is None:
            return None
        record = _record(namespace, workflow)
        schedule = await self._schedule(resource)
        if record is None and schedule is None:
            return None
        document: dict[str, Any] = {
            "kind": "temporal",
            "namespace": {"name": self.namespace},
            "schedule": schedule,
            "spec": None,
            "taskQueue": None,
            "tracing": None,
            "encryption": None,
            "limits": None,
        }
        tags = {WORKFLOW_TAG: workflow}
        if record is not None:
            document["spec"] = {key: record.get(key) for key in ("version", "digest", "payload")}
            for key in ("taskQueue", "tracing", "encryption", "limits"):
                document[key] = record.get(key)
            tags.update({MANAGED_TAG: "true", DIGEST_TAG: str(record.get("artifact"))})
        elif schedule is not None:
            tags[MANAGED_TAG] = "true"
        return LiveResource(
            engine=self.engine,
            target=self.target.name,
            resource=resource,
            id=f"{self.namespace}/{workflow}",
            document=normalize(self.engine, document, self.ignore),
            tags=tags,
        )

    async def _read_namespace(self, name: str) -> LiveResource | None:
        """The namespace as its shared artifact describes it: retention and cpl's search
        attributes, with the digest apply stamped in its data."""
        described = await self._describe_namespace(name)
        if described is None:
            return None
        stamp = described.namespace_info.data.get(NAMESPACE_STAMP, "")
        tags = {MANAGED_TAG: "true", DIGEST_TAG: stamp} if stamp else {}
        document = {
            "kind": NAMESPACE_KIND,
            "name": self.namespace,
            "retention": _seconds(described.config.workflow_execution_retention_ttl.ToSeconds()),
            "searchAttributes": await self._search_attributes(name),
        }
        return LiveResource(
            engine=self.engine,
            target=self.target.name,
            resource=self.namespace,
            id=self.namespace,
            document=normalize(self.engine, document, self.ignore),
            tags=tags,
        )

    async def _describe_namespace(self, resource: str) -> DescribeNamespaceResponse | None:
        """The namespace from the server's database, None when it does not exist.

        A namespace that exists in the database may not have reached the frontend's namespace
        cache yet (registered moments ago, perhaps by an apply that was killed): the first
        time a client finds it, it waits until the namespace serves cached requests too, so
        no later call of this client reads "namespace not found" for a namespace that exists.
        """
        client = await self._connect(resource)
        try:
            described = await self._call(
                resource,
                f"describe namespace {self.namespace}",
                lambda: client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace)
                ),
            )
        except ResourceError as error:
            if "NOT_FOUND" in error.message:
                return None
            raise
        if not self._namespace_cached:
            await self._namespace_visible(resource)
            self._namespace_cached = True
        return described

    async def _search_attributes(self, resource: str) -> dict[str, str]:
        """cpl's custom search attributes (named `Cpl…`) of the namespace, with their types."""
        client = await self._connect(resource)
        listed = await self._call(
            resource,
            "list search attributes",
            lambda: client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=self.namespace)
            ),
            cached=True,
        )
        return {
            name: _type_name(kind)
            for name, kind in sorted(listed.custom_attributes.items())
            if name.startswith("Cpl")
        }

    async def _schedule(self, resource: str) -> dict[str, Any] | None:
        client = await self._connect(resource)
        handle = client.get_schedule_handle(resource)
        try:
            described = await self._call(
                resource, "describe the schedule", handle.describe, cached=True
            )
        except ResourceError as error:
            if "NOT_FOUND" in error.message:
                return None
            raise
        return await self._schedule_document(client, resource, described)

    async def _schedule_document(
        self, client: Client, resource: str, described: ScheduleDescription
    ) -> dict[str, Any]:
        schedule = described.schedule
        action = schedule.action
        document: dict[str, Any] = {
            "id": described.id,
            "cron": _cron(schedule.spec),
            "timezone": schedule.spec.time_zone_name or DEFAULT_TIMEZONE,
            "overlap": schedule.policy.overlap.name,
            "catchupWindow": (schedule.policy.catchup_window or timedelta(0)).total_seconds(),
            "pauseOnFailure": schedule.policy.pause_on_failure,
            "paused": schedule.state.paused,
        }
        if isinstance(action, ScheduleActionStartWorkflow):
            document["taskQueue"] = action.task_queue
            document["workflowType"] = action.workflow
            args = await client.data_converter.decode(list(action.args)) if action.args else []
            payload = dict(args[0]) if args and isinstance(args[0], dict) else None
            if payload is not None:
                payload.pop("input", None)
            document["payload"] = digest_of(payload) if payload is not None else None
        return document

    async def _list_managed(self) -> list[LiveResource]:
        client = await self._connect(self.target.name)
        namespace = await self._describe_namespace(self.target.name)
        if namespace is None:
            return []
        workflows = {
            key.removeprefix(RECORD_PREFIX)
            for key, value in namespace.namespace_info.data.items()
            if key.startswith(RECORD_PREFIX) and value
        }

        async def scheduled() -> list[str]:
            found = []
            async for entry in await client.list_schedules(rpc_timeout=self._rpc_timeout):
                memo = await entry.memo()
                if memo.get("cpl.managed") == "true" and memo.get("cpl.workflow"):
                    found.append(str(memo["cpl.workflow"]))
            return found

        workflows.update(
            await self._call(self.target.name, "list schedules", scheduled, paged=True, cached=True)
        )
        found = [await self._read(workflow) for workflow in sorted(workflows)]
        return [live for live in found if live is not None]

    # -- writing ----------------------------------------------------------------------------

    async def _apply_namespace(self, artifact: Artifact) -> LiveResource:
        name = artifact.resource
        document = artifact.document
        await self._ensure_namespace(name, document.get("retention"))
        await self._ensure_search_attributes(name, document["searchAttributes"])
        await self._set_data(name, NAMESPACE_STAMP, artifact.digest)
        found = await self._read_namespace(name)
        if found is None:
            raise self._permanent(name, "nothing readable right after apply")
        return found

    async def _forget_namespace(self, name: str) -> None:
        """A namespace no workflow runs in any more keeps its run histories: cpl only stops
        managing it (Temporal cannot remove a data key: "" reads as absent)."""
        if name != self.namespace:
            raise self._permanent(name, f"not namespace {self.namespace} of the target")
        if await self._describe_namespace(name) is not None:
            await self._set_data(name, NAMESPACE_STAMP, "")

    async def _apply(self, artifact: Artifact, live: LiveResource | None) -> LiveResource:
        resource = artifact.resource
        document = artifact.document
        # The namespace artifact is applied before the workflows of its target; this only
        # covers a workflow applied on its own (it never changes the namespace's retention).
        await self._ensure_namespace(resource, None)
        await self._ensure_search_attributes(resource, document["searchAttributes"])
        schedule = document.get("schedule")
        if schedule is not None:
            await self._put_schedule(artifact, schedule)
        elif live is None or live.document.get("schedule") is not None:
            await self._delete_schedule(resource)
        await self._publish(artifact)
        found = await self._read(artifact.workflow)
        if found is None:
            raise self._permanent(resource, "nothing readable right after apply")
        return found

    async def _ensure_namespace(self, resource: str, retention: float | None) -> None:
        client = await self._connect(resource)
        described = await self._describe_namespace(resource)
        ttl = Duration(seconds=int(retention)) if retention is not None else None
        if described is None:
            request = RegisterNamespaceRequest(namespace=self.namespace)
            if ttl is not None:
                request.workflow_execution_retention_period.CopyFrom(ttl)
            else:
                request.workflow_execution_retention_period.CopyFrom(Duration(seconds=86400))
            try:
                await self._call(
                    resource,
                    f"register namespace {self.namespace}",
                    lambda: client.workflow_service.register_namespace(request),
                )
            except ResourceError as error:
                # another target's apply (running concurrently) registered it first
                if "ALREADY_EXISTS" not in error.message:
                    raise
            # a new namespace takes a moment to reach every frontend cache
            await self._namespace_visible(resource)
            self._namespace_cached = True
            return
        current = described.config.workflow_execution_retention_ttl.ToSeconds()
        if ttl is not None and current != ttl.seconds:
            await self._call(
                resource,
                f"set the retention of namespace {self.namespace}",
                lambda: client.workflow_service.update_namespace(
                    UpdateNamespaceRequest(
                        namespace=self.namespace,
                        config=NamespaceConfig(workflow_execution_retention_ttl=ttl),
                    )
                ),
            )

    async def _namespace_visible(self, resource: str) -> None:
        """Wait until a new namespace serves requests that go through the frontend's namespace
        cache (refreshed every few seconds), not only DescribeNamespace (read from the DB)."""
        client = await self._connect(resource)
        deadline = asyncio.get_running_loop().time() + NAMESPACE_VISIBLE_SECONDS
        while True:
            try:
                await client.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=self.namespace),
                    timeout=timedelta(seconds=self.timeouts.call),
                )
                return
            except RPCError as error:
                late = asyncio.get_running_loop().time() > deadline
                if error.status != RPCStatusCode.NOT_FOUND or late:
                    raise self._permanent(
                        resource,
                        f"namespace {self.namespace} registered but not usable: {error}",
                    ) from None
            await asyncio.sleep(0.25)

    async def _ensure_search_attributes(
        self, resource: str, wanted: dict[str, str], *, again: bool = True
    ) -> None:
        client = await self._connect(resource)
        live = await self._search_attributes(resource)
        clashes = {
            name: live[name] for name in wanted if name in live and live[name] != wanted[name]
        }
        if clashes:
            raise self._permanent(
                resource,
                f"search attributes exist with other types in namespace {self.namespace}: "
                + ", ".join(f"{n} is {t}, cpl needs {wanted[n]}" for n, t in clashes.items()),
            )
        missing = {name: _type_value(kind) for name, kind in wanted.items() if name not in live}
        if missing:
            try:
                await self._call(
                    resource,
                    "add search attributes " + ", ".join(sorted(missing)),
                    lambda: client.operator_service.add_search_attributes(
                        AddSearchAttributesRequest(
                            namespace=self.namespace, search_attributes=missing
                        )
                    ),
                    cached=True,
                )
            except ResourceError as error:
                # added meanwhile by a concurrent apply: fine when the types are cpl's
                if "ALREADY_EXISTS" not in error.message or not again:
                    raise
                await self._ensure_search_attributes(resource, wanted, again=False)

    async def _put_schedule(self, artifact: Artifact, wanted: dict[str, Any]) -> None:
        resource = artifact.resource
        client = await self._connect(resource)
        spec = artifact.document["spec"]
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                wanted["workflowType"],
                make_run_payload(spec, {}),
                id=wanted["id"],
                task_queue=wanted["taskQueue"],
                memo={"cpl.version": spec["version"], "cpl.digest": spec["digest"]},
            ),
            spec=ScheduleSpec(
                cron_expressions=[f"{wanted['cron']} # {CRON_MARK}{wanted['cron']}"],
                time_zone_name=wanted["timezone"],
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy[wanted["overlap"]]),
        )
        memo = {"cpl.managed": "true", "cpl.workflow": artifact.workflow}

        async def create_or_update() -> None:
            try:
                await client.create_schedule(wanted["id"], schedule, memo=memo)
            except ScheduleAlreadyRunningError:

                def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                    return ScheduleUpdate(schedule=schedule)

                await client.get_schedule_handle(wanted["id"]).update(replace)

        await self._call(resource, f"put schedule {wanted['id']}", create_or_update, cached=True)

    async def _delete_schedule(self, resource: str) -> None:
        client = await self._connect(resource)
        try:
            await self._call(
                resource,
                "delete the schedule",
                client.get_schedule_handle(resource).delete,
                cached=True,
            )
        except ResourceError as error:
            if "NOT_FOUND" not in error.message:
                raise

    async def _publish(self, artifact: Artifact) -> None:
        """Write the published-version entry (the commit point of an apply)."""
        document = artifact.document
        spec = document["spec"]
        record = {
            "version": spec["version"],
            "digest": spec["digest"],
            "payload": digest_of(spec),
            "artifact": artifact.digest,
            **{key: document.get(key) for key in ("taskQueue", "tracing", "encryption", "limits")},
        }
        await self._set_record(artifact.resource, artifact.workflow, canonical_json(record))

    async def _set_record(self, resource: str, workflow: str, value: str) -> None:
        await self._set_data(resource, record_key(workflow), value, "publish the spec version")

    async def _set_data(
        self, resource: str, key: str, value: str, action: str = "stamp the namespace"
    ) -> None:
        """Upsert one key of the namespace's `data` map (the others are left as they are)."""
        client = await self._connect(resource)
        await self._call(
            resource,
            action,
            lambda: client.workflow_service.update_namespace(
                UpdateNamespaceRequest(
                    namespace=self.namespace,
                    update_info=UpdateNamespaceInfo(data={key: value}),
                )
            ),
        )

    async def _delete(self, resource_id: str) -> None:
        namespace, _, workflow = resource_id.partition("/")
        if namespace != self.namespace:
            raise self._permanent(
                resource_id, f"not in namespace {self.namespace} of target {self.target.name}"
            )
        resource = workflow.replace("/", "-", 1)
        if await self._describe_namespace(resource) is None:
            return  # no namespace: neither a schedule nor a published entry
        await self._delete_schedule(resource)
        await self._set_record(resource, workflow, "")

    # -- calls ------------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        return self._loop.run_until_complete(coroutine)

    async def _connect(self, resource: str) -> Client:
        if self._client is None:

            async def attempt() -> Client:
                try:
                    return await connect(
                        self.target.address or "", self.namespace, self.timeouts.connect
                    )
                except EngineError as error:  # unreachable server: worth retrying
                    raise NoAnswer(error.message) from None

            self._client = await self._call(resource, "connect", attempt)
        return self._client

    @property
    def _rpc_timeout(self) -> timedelta:
        return timedelta(seconds=self.timeouts.call)

    async def _call(
        self,
        resource: str,
        action: str,
        operation: Callable[[], Awaitable[Result]],
        *,
        paged: bool = False,
        cached: bool = False,
    ) -> Result:
        """One API call with retries until the target's deadline, each attempt cut off after
        `timeouts.call`; any failure becomes a ResourceError naming `resource`.

        A `paged` operation makes one RPC per page, each with its own `rpc_timeout`: the
        whole listing of a large namespace may take longer than one call, so only its
        retries are bounded by the deadline.

        `cached`: the frontend resolves the namespace of this call through its namespace cache
        (operator service, schedules), unlike Describe/Register/UpdateNamespace, which read the
        database. Made once the database has the namespace, it may still answer "namespace not
        found" for a while (a lookup before RegisterNamespace left a not-found entry; another
        frontend has not refreshed yet): retried until NAMESPACE_VISIBLE_SECONDS.
        """
        if cached:
            operation = _while_namespace_not_found(operation)
        try:
            deadline = self.clock.start()
        except TargetSilent as silent:
            raise ResourceError(
                f"temporal target '{self.target.name}': cannot {action} of '{resource}': {silent}",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=True,
            ) from None

        async def attempt() -> Result:
            # the SDK's own RPC retries and a server that accepted the connection but never
            # replies would otherwise wait without end
            if paged:
                return await operation()
            return await asyncio.wait_for(operation(), self.clock.attempt_timeout(deadline))

        def waiting(error: BaseException) -> None:
            if is_unanswered(error):
                self.clock.not_answering(deadline)

        try:
            try:
                return await aretry(attempt, self.policy, deadline=deadline, on_transient=waiting)
            except Exception as error:
                if is_unanswered(error):
                    self.clock.fell_silent()  # the rest of this command fails at once
                raise
        except ResourceError:
            raise
        except TimeoutError:
            raise ResourceError(
                f"temporal target '{self.target.name}' ({self.target.address}): cannot "
                f"{action} of '{resource}': no answer within {self.timeouts.call:g}s",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=True,
            ) from None
        except (RPCError, TransientError) as error:
            status = error.status.name if isinstance(error, RPCError) else "UNAVAILABLE"
            raise ResourceError(
                f"temporal target '{self.target.name}' ({self.target.address}): cannot "
                f"{action} of '{resource}': {status}: {error}",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=is_transient(error),
            ) from None

    def _permanent(self, resource: str, message: str) -> ResourceError:
        return ResourceError(
            f"temporal target '{self.target.name}': '{resource}': {message}",
            engine=self.engine,
            target=self.target.name,
            resource=resource,
        )

    # -- drift: the comparison document and the light inventory ----------------------------

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        """`desired_view` normalized, as `diff` compares it: a namespace whose workflows ask
        for no retention (or for different ones) keeps the retention it has."""
        if is_rules(artifact):
            return self.rules.desired_document(artifact)
        desired = normalize(self.engine, desired_view(artifact), self.ignore)
        if _is_namespace(artifact) and desired.get("retention") is None:
            desired["retention"] = live.document.get("retention")
        return desired

    def inventory(self, known: set[str]) -> list[LiveResource]:
        """The published versions (one DescribeNamespace) and every schedule of the namespace,
        memo or not: a namespace a cpl target deploys to belongs to cpl, so a schedule created
        there by hand is unmanaged even without cpl's memo. Ids and marks only, no reads."""
        return self._run(self._inventory())

    async def _inventory(self) -> list[LiveResource]:
        described = await self._describe_namespace(self.target.name)
        if described is None:
            return []  # no namespace yet: nothing deployed
        found: dict[str, LiveResource] = {}
        for key, value in described.namespace_info.data.items():
            if not key.startswith(RECORD_PREFIX) or not value:
                continue
            workflow = key.removeprefix(RECORD_PREFIX)
            resource = workflow.replace("/", "-", 1)
            found[resource] = LiveResource(
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                id=f"{self.namespace}/{workflow}",
                document={"kind": "temporal", "spec": {"published": True}},
                tags={WORKFLOW_TAG: workflow, MANAGED_TAG: "true"},
            )
        client = await self._connect(self.target.name)

        async def schedules() -> list[tuple[str, str | None]]:
            listed: list[tuple[str, str | None]] = []
            async for entry in await client.list_schedules(rpc_timeout=self._rpc_timeout):
                memo = await entry.memo()
                if memo.get("cpl.drift"):  # cpl's own drift schedule (`spec.drift.schedule`)
                    continue
                marked = memo.get("cpl.workflow")
                listed.append((entry.id, str(marked) if marked else None))
            return listed

        listed = await self._call(
            self.target.name, "list schedules", schedules, paged=True, cached=True
        )
        for schedule_id, marked in listed:
            if schedule_id in found:
                continue
            found[schedule_id] = LiveResource(
                engine=self.engine,
                target=self.target.name,
                resource=schedule_id,
                id=f"{self.namespace}/schedule/{schedule_id}",
                document={"kind": "temporal", "schedule": {"id": schedule_id}},
                tags={WORKFLOW_TAG: marked} if marked else {},
            )
        return list(found.values())


def _while_namespace_not_found(
    operation: Callable[[], Awaitable[Result]],
) -> Callable[[], Awaitable[Result]]:
    async def attempt() -> Result:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NAMESPACE_VISIBLE_SECONDS
        while True:
            try:
                return await operation()
            except RPCError as error:
                if not namespace_not_found(error) or loop.time() > deadline:
                    raise
            await asyncio.sleep(0.25)

    return attempt


def namespace_not_found(error: RPCError) -> bool:
    """NOT_FOUND for the namespace itself, not for the schedule or workflow asked about (both
    say NOT_FOUND; only the former carries a NamespaceNotFoundFailure detail)."""
    return error.status == RPCStatusCode.NOT_FOUND and any(
        detail.Is(NamespaceNotFoundFailure.DESCRIPTOR) for detail in error.grpc_status.details
    )


def create_client(
    target: Target, environment: Environment, *, repo: Path | None = None
) -> TemporalEngine:
    """The registry's factory (`repo` roots the target's Prometheus rules file)."""
    return TemporalEngine(target, environment, repo=repo)


def desired_view(artifact: Artifact) -> dict[str, Any]:
    """The artifact document as Temporal can hold it: the spec payload by its digests.

    The live side has the published entry (`version`, `digest`, `payload` digest) and the
    schedule carries the digest of the payload it starts runs with.
    """
    document = json.loads(json.dumps(artifact.document))
    if _is_namespace(artifact):
        document["retention"] = _seconds(document.get("retention"))
        return dict(document)
    spec = document["spec"]
    document["spec"] = {
        "version": spec["version"],
        "digest": spec["digest"],
        "payload": digest_of(spec),
    }
    # the namespace's retention and search attributes belong to the namespace artifact
    document["namespace"] = {"name": document["namespace"]["name"]}
    document.pop("searchAttributes", None)
    if document.get("schedule") is not None:
        document["schedule"]["payload"] = digest_of(spec)
    return dict(document)


def _is_namespace(artifact: Artifact) -> bool:
    return bool(artifact.document.get("kind") == NAMESPACE_KIND)


def _seconds(value: Any) -> Any:
    """Whole seconds as an int (the live side reads ints), anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _record(namespace: DescribeNamespaceResponse, workflow: str) -> dict[str, Any] | None:
    text = namespace.namespace_info.data.get(record_key(workflow), "")
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"version": None, "digest": None, "payload": f"unreadable entry: {text[:80]}"}
    return value if isinstance(value, dict) else None


def _cron(spec: ScheduleSpec) -> str:
    calendars = list(spec.calendars)
    comment = calendars[0].comment if len(calendars) == 1 else None
    if (
        comment
        and comment.startswith(CRON_MARK)
        and not spec.intervals
        and not spec.cron_expressions
    ):
        return comment.removeprefix(CRON_MARK)
    return f"unrecognised: calendars={calendars!r} intervals={list(spec.intervals)!r}"


def _type_name(kind: int) -> str:
    """`INDEXED_VALUE_TYPE_KEYWORD_LIST` → `KeywordList` (the names the translator uses)."""
    name = IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_")  # type: ignore[arg-type]
    return "".join(part.title() for part in name.split("_"))


def _type_value(name: str) -> IndexedValueType.ValueType:
    snake = "".join("_" + c if c.isupper() else c for c in name).lstrip("_").upper()
    return IndexedValueType.Value("INDEXED_VALUE_TYPE_" + snake)
