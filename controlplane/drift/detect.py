"""`detect_drift`: read every managed resource back from the live engines and diff it against
the desired artifacts.

Everything engine-specific comes through the engine contract (`engines/live.py`): `read`,
`desired_document` and `diff` per resource, `inventory` per target, and the bundle's
`thread_safe_client`.

Reads run on a bounded thread pool (`concurrency` workers). An engine whose client is not
thread-safe (Temporal's drives its own event loop) gets one client per worker thread and
target; a thread-safe one (boto3 clients, file reads, the Kubernetes API client) is shared by
all workers: building boto3 clients loads their service models, about a second per client
set, which would otherwise be paid per thread.

Transient errors are retried with exponential backoff and full jitter inside the engine
modules (`engines.retry`); an error
that is still transient after the retries means the target is down: the target is marked
unreachable, its remaining reads are skipped instead of each waiting out its own retries, and
the report comes back partial, naming it. A permanent error of one resource (access denied,
a malformed live definition) fails that resource only.

Unmanaged resources come from each target's `inventory`: a light listing (names and cpl's
marks) instead of `list_managed`, which reads every managed resource in full, one after the
other — the resources a spec describes are read anyway, concurrently; measured on 500 + 500
resources, `list_managed` alone took longer than all reads together (bench/RESULTS.md). What
counts as a candidate is the engine's call (cpl's tags or labels; on Temporal every schedule
of the target's namespace, which belongs to cpl). A live resource is unmanaged when no desired
artifact of the whole environment names it, whatever `tenants` selects, so a shard never calls
another shard's resource unmanaged.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from controlplane.drift.ignore import IgnoreRules
from controlplane.drift.model import DriftItem, DriftReport, ReadFailure, Status, TargetStats
from controlplane.engines import (
    EngineClient,
    LiveResource,
    ResourceError,
    engine_client,
    engine_named,
)
from controlplane.engines.live import Change
from controlplane.engines.translator import Artifact
from controlplane.errors import CplError
from controlplane.spec.environment import Environment, Target

DEFAULT_CONCURRENCY = 16

Result = TypeVar("Result")

ClientFactory = Callable[[Target, Environment], EngineClient]
Assess = Callable[[Sequence[DriftItem]], Sequence[DriftItem]]
Progress = Callable[[int, int], None]


def detect_drift(
    env: Environment,
    desired: list[Artifact],
    *,
    repo: Path | None = None,
    ignore: IgnoreRules | None = None,
    tenants: Iterable[str] = (),
    targets: Iterable[str] = (),
    select: Callable[[Artifact], bool] | None = None,
    inventory: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    clients: ClientFactory | None = None,
    assess: Assess | None = None,
    progress: Progress | None = None,
) -> DriftReport:
    """Compare the live resources of every target of `env` with the `desired` artifacts.

    `desired` is every artifact of the environment (rendered from the specs); `tenants`,
    when given, limits what is read and reported to those tenants' workflows (sharding).
    `targets` limits the run to those targets; `select` further limits the artifacts read
    and `inventory` False skips listing the targets for unmanaged resources (a fanned-out
    run, `drift/fanout.py`, reads each artifact in one shard and lists each target in one).
    `repo` roots GitOps targets; `ignore` holds the differences that are not drift;
    `assess` fills in the policy verdict on the live state (see `compliance.LiveCompliance`);
    `progress(done, total)` is called as reads finish.
    """
    started = time.monotonic()
    report_start = dt.datetime.now(dt.UTC)
    shard = frozenset(tenants)
    rules = ignore or IgnoreRules()
    factory = clients or (lambda target, environment: engine_client(target, environment, repo=repo))
    known: dict[str, set[str]] = {}
    for artifact in desired:
        known.setdefault(artifact.target, set()).add(artifact.resource)
    tenant_names = {artifact.workflow.split("/", 1)[0] for artifact in desired} | shard
    only = frozenset(targets)
    selected = [
        a for a in desired if (not shard or tenants_of(a) & shard) and (select is None or select(a))
    ]
    reader = _Reader(env, factory, max(1, concurrency))
    chosen = [t for t in env.spec.targets if not only or t.name in only]
    by_target = {target.name: [a for a in selected if a.target == target.name] for target in chosen}
    total = (len(chosen) if inventory else 0) + len(selected)
    done = 0
    lock = threading.Lock()

    def tick(_: Future[Any]) -> None:
        nonlocal done
        with lock:
            done += 1
            count = done
        if progress is not None:
            progress(count, total)

    items: list[DriftItem] = []
    try:
        with ThreadPoolExecutor(max_workers=reader.concurrency, thread_name_prefix="drift") as pool:
            listings = {
                t.name: pool.submit(reader.listing, t, known.get(t.name, set()))
                for t in (chosen if inventory else [])
            }
            reads = [
                (artifact, pool.submit(reader.read, env.target(artifact.target), artifact))
                for target in chosen
                for artifact in by_target[target.name]
            ]
            for listing in listings.values():
                listing.add_done_callback(tick)
            for _, future in reads:
                future.add_done_callback(tick)
            # A live object is unmanaged only if no target manages it: two targets may reach
            # one object (two Temporal targets on one namespace), and it is listed once.
            seen: set[tuple[str, str]] = set()
            for artifact, future in reads:
                outcome = future.result()
                if outcome is not None:
                    items.append(_item(artifact, outcome, rules, env.name))
                    if outcome.live is not None:
                        seen.add((outcome.live.engine, outcome.live.id))
            for target in chosen if inventory else []:
                found = listings[target.name].result()
                for live in found or []:
                    if live.resource in known.get(target.name, set()):
                        continue
                    if (live.engine, live.id) in seen:
                        continue
                    seen.add((live.engine, live.id))
                    owner = _tenant_of(live, tenant_names)
                    if shard and owner not in shard:
                        continue
                    items.append(_unmanaged(live))
    finally:
        reader.close()
    items.sort(key=lambda i: (i.target, i.workflow or "", i.resource, i.status))
    if assess is not None:
        items = list(assess(items))
    return DriftReport(
        environment=env.name,
        items=tuple(items),
        failures=tuple(reader.failures()),
        targets=tuple(reader.stats(chosen)),
        tenants=tuple(sorted(shard)),
        started=report_start,
        duration=time.monotonic() - started,
        concurrency=reader.concurrency,
    )


@dataclass(frozen=True)
class _Read:
    live: LiveResource | None
    changes: list[Change]


@dataclass
class _TargetState:
    """What the workers know about one target: down (and why), counters."""

    down: ReadFailure | None = None
    reads: int = 0
    failures: list[ReadFailure] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0


class _Reader:
    """Reads on worker threads with per-thread engine clients and per-target health."""

    def __init__(self, env: Environment, factory: ClientFactory, concurrency: int) -> None:
        self.env = env
        self.factory = factory
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[EngineClient] = []
        self._shared: dict[str, EngineClient] = {}
        self._client_lock = threading.Lock()
        self._state: dict[str, _TargetState] = {t.name: _TargetState() for t in env.spec.targets}

    # -- the two operations ------------------------------------------------------------------

    def read(self, target: Target, artifact: Artifact) -> _Read | None:
        def operation(client: EngineClient) -> _Read:
            live = client.read(artifact)
            if live is None:
                return _Read(None, [])
            # Fast path for the common case: DeepDiff (~25 ms for a large state machine) only
            # for documents that differ; `diff` stays the authority on what differs.
            if client.desired_document(artifact, live) == live.document:
                return _Read(live, [])
            return _Read(live, client.diff(artifact, live))

        return self._guarded(target, artifact.resource, operation)

    def listing(self, target: Target, desired: set[str]) -> list[LiveResource] | None:
        """The target's live resources that are candidates for `unmanaged` (its light
        `inventory`; `desired` are the names the artifacts describe, read anyway)."""
        return self._guarded(target, None, lambda client: client.inventory(desired))

    # -- bookkeeping -------------------------------------------------------------------------

    def failures(self) -> list[ReadFailure]:
        found: list[ReadFailure] = []
        for name in sorted(self._state):
            state = self._state[name]
            if state.down is not None:
                found.append(state.down)
            found.extend(state.failures)
        return found

    def stats(self, targets: Sequence[Target]) -> list[TargetStats]:
        return [
            TargetStats(
                target=t.name,
                engine=t.engine,
                reads=self._state[t.name].reads,
                failures=len(self._state[t.name].failures) + (self._state[t.name].down is not None),
                skipped=self._state[t.name].skipped,
                seconds=round(self._state[t.name].seconds, 3),
            )
            for t in targets
        ]

    def close(self) -> None:
        for client in self._clients:
            close = getattr(client, "close", None)
            if callable(close):
                close()

    def _guarded(
        self,
        target: Target,
        resource: str | None,
        operation: Callable[[EngineClient], Result],
    ) -> Result | None:
        state = self._state[target.name]
        if state.down is not None:
            with self._lock:
                state.skipped += 1
            return None
        began = time.monotonic()
        try:
            return operation(self._client(target))
        except ResourceError as error:
            # still transient after the engine module's retries: the target is down
            self._failed(target, resource, error.message, error.transient, down=error.transient)
            return None
        except CplError as error:  # no client at all (e.g. no cluster configuration)
            self._failed(target, resource, error.message, False, down=True)
            return None
        finally:
            with self._lock:
                state.reads += 1
                state.seconds += time.monotonic() - began

    def _failed(
        self, target: Target, resource: str | None, message: str, transient: bool, *, down: bool
    ) -> None:
        state = self._state[target.name]
        with self._lock:
            if down and state.down is None:
                state.down = ReadFailure(target.name, target.engine, message, None, transient)
            else:
                state.failures.append(
                    ReadFailure(target.name, target.engine, message, resource, transient)
                )

    def _client(self, target: Target) -> EngineClient:
        if engine_named(target.engine).thread_safe_client:
            with self._client_lock:
                client = self._shared.get(target.name)
                if client is None:
                    client = self._shared[target.name] = self._new_client(target)
                return client
        clients: dict[str, EngineClient] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(target.name)
        if client is None:
            client = clients[target.name] = self._new_client(target)
        return client

    def _new_client(self, target: Target) -> EngineClient:
        client = self.factory(target, self.env)
        with self._lock:
            self._clients.append(client)
        return client


def _item(artifact: Artifact, read: _Read, rules: IgnoreRules, environment: str) -> DriftItem:
    live = read.live
    if live is None:
        return DriftItem(
            workflow=artifact.workflow,
            target=artifact.target,
            engine=artifact.engine,
            resource=artifact.resource,
            status="missing",
        )
    changes, ignored = rules.split(
        read.changes,
        engine=artifact.engine,
        workflow=artifact.workflow,
        target=artifact.target,
        environment=environment,
    )
    status: Status = "modified" if changes else "in-sync"
    return DriftItem(
        workflow=artifact.workflow,
        target=artifact.target,
        engine=artifact.engine,
        resource=artifact.resource,
        status=status,
        diff=tuple(changes),
        ignored=tuple(ignored),
        id=live.id,
        live=live.document,
    )


def _unmanaged(live: LiveResource) -> DriftItem:
    return DriftItem(
        workflow=live.workflow,
        target=live.target,
        engine=live.engine,
        resource=live.resource,
        status="unmanaged",
        id=live.id,
        live=live.document,
        note="no spec of the environment describes this resource",
    )


def tenants_of(artifact: Artifact) -> set[str]:
    """The tenants an artifact serves: its workflow's, or those of the workflows that share
    it (a shared resource is reported in every tenant shard that uses it)."""
    workflows = artifact.shared_by or (artifact.workflow,)
    return {workflow.split("/", 1)[0] for workflow in workflows}


def _tenant_of(live: LiveResource, tenants: set[str]) -> str | None:
    """The tenant a live resource belongs to: its workflow mark, else its name prefix."""
    if live.workflow:
        return live.workflow.split("/", 1)[0]
    matching = [t for t in tenants if live.resource.startswith(f"{t}-")]
    return max(matching, key=len) if matching else None
