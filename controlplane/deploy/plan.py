"""The planner: desired artifacts against the environment's state and live resources.

`plan(env, desired, state, clients=...)` reads every desired resource back from its engine
and decides, per (workflow, target):

- `create`: nothing lives there;
- `update`: the live resource differs from the artifact (field-level diff), carries another
  digest stamp, or the state does not record it as applied with this digest (a crash between
  the engine call and the state write: the update only records it, never duplicates it);
- `noop`: live, stamped and recorded as the artifact says;
- `delete`: the state has it but no desired artifact does (the workflow was removed, or no
  target of the environment selects it any more).

Breaking changes and the version bump come from the workflow's change document (the same one
the policy input carries, see `previous_changes`). A plan also records the digests of what it
saw — the repo's documents, the policy library and the live state — so that `apply --plan`
can refuse a plan whose inputs moved (`Plan.fingerprint`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from controlplane.deploy.state import ResourceKey, ResourceState, State
from controlplane.engines import ENGINES, EngineClient, LiveResource, ResourceError, diff_documents
from controlplane.engines.translator import Artifact, canonical_json, digest_of, is_shared
from controlplane.errors import EngineError
from controlplane.policy.change import UNKNOWN, Breaking, Change, compare_documents
from controlplane.policy.library import builtin_policy_dir, policy_config, policy_paths
from controlplane.redaction import mask_diff, mask_secrets
from controlplane.spec.environment import EngineName, Environment
from controlplane.spec.model import Workflow
from controlplane.spec.normalize import to_document

if TYPE_CHECKING:
    from controlplane.deploy.stores import StateBackend

Action = Literal["create", "update", "delete", "noop"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "noop")
DEFAULT_CONCURRENCY = 8
"""Reads in flight at once while planning (engines that allow it; see `_read_concurrently`)."""
Outcome = TypeVar("Outcome")
REPO_DIRECTORIES = ("workflows", "environments", "waivers")
"""Under the state directory: the normalized spec of every version applied, for the change
document of the next plan (`<tenant>/<name>@<version>.json`)."""


@dataclass(frozen=True)
class PlannedChange:
    """One (workflow, target) of the plan.

    `artifact` is what to converge onto (None for a delete); `resource_id` the live id
    (None for a create: the engine assigns it); `diff` has `{"path", "before", "after"}`
    with `before` the live value and `after` the desired one; `reason` says why an update
    with an empty diff is one.
    """

    action: Action
    workflow: str
    target: str
    engine: EngineName
    resource: str
    artifact: Artifact | None = field(default=None, repr=False)
    resource_id: str | None = None
    live: LiveResource | None = field(default=None, repr=False)
    diff: tuple[dict[str, Any], ...] = ()
    breaking: tuple[Breaking, ...] = ()
    bump: str = "none"
    version: str | None = None
    previous_version: str | None = None
    reason: str = ""
    forget: bool = False
    """A delete that only removes the state record: the live resource is the one another
    target of the plan manages now (two targets reaching one namespace)."""

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.workflow, self.target)

    @property
    def digest(self) -> str | None:
        """The artifact digest this change converges onto (None for a delete)."""
        return self.artifact.digest if self.artifact is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "workflow": self.workflow,
            "target": self.target,
            "engine": self.engine,
            "resource": self.resource,
            "resourceId": self.resource_id,
            "version": self.version,
            "previousVersion": self.previous_version,
            "artifactDigest": self.digest,
            "diff": list(self.diff),
            "breaking": [b.to_json() for b in self.breaking],
            "bump": self.bump,
            "reason": self.reason,
            "forget": self.forget,
        }


@dataclass(frozen=True)
class Fingerprint:
    """What a plan saw: digests of the repo documents, the policy library and the live state.

    `files` and `resources` keep the digest per file and per resource so that a refusal can
    name what moved.
    """

    repo: str
    policies: str
    live: str
    files: Mapping[str, str] = field(default_factory=dict)
    policy_files: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)
    state_serial: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "policies": self.policies,
            "live": self.live,
            "stateSerial": self.state_serial,
            "files": dict(self.files),
            "policyFiles": dict(self.policy_files),
            "resources": dict(self.resources),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fingerprint:
        return cls(
            repo=str(data["repo"]),
            policies=str(data["policies"]),
            live=str(data["live"]),
            files=dict(data.get("files") or {}),
            policy_files=dict(data.get("policyFiles") or {}),
            resources=dict(data.get("resources") or {}),
            state_serial=int(data.get("stateSerial", 0)),
        )


@dataclass(frozen=True)
class Plan:
    """The changes that bring an environment to its desired state."""

    environment: str
    changes: tuple[PlannedChange, ...]
    base: str | None = None
    fingerprint: Fingerprint | None = None
    unchanged: int = 0
    """With `base`: the workflows unchanged since it, neither planned nor read from the
    live engines (the scheduled drift job covers them)."""

    @property
    def pending(self) -> list[PlannedChange]:
        """The changes apply has to make (everything but the noops)."""
        return [c for c in self.changes if c.action != "noop"]

    @property
    def empty(self) -> bool:
        return not self.pending

    @property
    def summary(self) -> dict[str, int]:
        return {action: sum(1 for c in self.changes if c.action == action) for action in ACTIONS}

    @property
    def digest(self) -> str:
        """The digest of the changes (what apply would do), independent of when it was made."""
        return digest_of([c.to_json() for c in self.changes])

    @property
    def breaking(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.breaking]


def plan(
    env: Environment,
    desired: Iterable[Artifact],
    state: State,
    *,
    clients: Mapping[str, EngineClient],
    changes: Mapping[str, Change] | None = None,
    scope: set[str] | None = None,
    base: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Plan:
    """The plan that converges `env` onto `desired` from `state` and the live engines.

    `clients` are the engine modules by target name; `changes` the change document per
    workflow key (breaking changes, bump); `scope` limits deletes to these workflow keys
    (`--base`: only what changed since the ref). Targets are read concurrently (at most
    `concurrency` reads in flight; see `_read_concurrently`), so one engine that does not
    answer costs its target's deadline, not a wait per resource. An engine that cannot be
    read is an EngineError naming every target and resource that failed, in plan order.
    """
    changes = changes or {}
    ordered = sorted(desired, key=lambda a: (a.target, a.workflow))
    wanted = {ResourceKey(a.workflow, a.target) for a in ordered}

    def read(artifact: Artifact) -> PlannedChange | ResourceError:
        key = ResourceKey(artifact.workflow, artifact.target)
        change = changes.get(artifact.workflow, UNKNOWN)
        try:
            return _desired_change(artifact, clients[artifact.target], state.get(key), change)
        except ResourceError as error:
            return error

    outcomes = _read_concurrently(ordered, read, concurrency)
    planned = [o for o in outcomes if isinstance(o, PlannedChange)]
    failures = [o for o in outcomes if isinstance(o, ResourceError)]
    if failures:
        raise EngineError(
            "cannot read the live state of "
            + "; ".join(f"{e.target or '?'}/{e.resource or '?'}: {e.message}" for e in failures)
        )
    # A resource can be reached through several targets (one Temporal namespace): a recorded
    # one that a desired change now manages through another target is moved, not deleted.
    managed = {(c.engine, c.resource_id): c.target for c in planned if c.resource_id}
    for recorded in state.resources:
        if recorded.key in wanted or (scope is not None and recorded.workflow not in scope):
            continue
        change = changes.get(recorded.workflow, UNKNOWN)
        now = managed.get((recorded.engine, recorded.resource_id))
        planned.append(
            PlannedChange(
                action="delete",
                workflow=recorded.workflow,
                target=recorded.target,
                engine=recorded.engine,
                resource=recorded.resource_id,
                resource_id=recorded.resource_id,
                breaking=change.breaking,
                bump=change.bump,
                previous_version=recorded.spec_version,
                reason=(
                    f"managed through target '{now}' now: only the state record goes"
                    if now is not None
                    else "no longer desired in this environment"
                ),
                forget=now is not None,
            )
        )
    order = {"create": 0, "update": 0, "noop": 0, "delete": 1}
    # per target, shared resources (a namespace) before the workflows that run in them
    planned.sort(key=lambda c: (order[c.action], c.target, not is_shared(c.workflow), c.workflow))
    return Plan(env.name, tuple(planned), base)


def _read_concurrently(
    artifacts: list[Artifact],
    read: Callable[[Artifact], Outcome],
    concurrency: int,
) -> list[Outcome]:
    """`read` of every artifact, in the order given, on at most `concurrency` threads.

    A client that may serve several threads at once (the engine's `thread_safe_client`) gets
    one job per artifact; any other client (Temporal's drives its own event loop) gets one
    job per target that reads its artifacts one after another, in order — which also keeps
    a shared resource read before the workflows of its target.
    """
    jobs: list[list[int]] = []
    per_target: dict[str, list[int]] = {}
    for index, artifact in enumerate(artifacts):
        engine = ENGINES.get(artifact.engine)
        if engine is not None and engine.thread_safe_client:
            jobs.append([index])
        else:
            if artifact.target not in per_target:
                per_target[artifact.target] = []
                jobs.append(per_target[artifact.target])
            per_target[artifact.target].append(index)
    outcomes: list[Outcome | None] = [None] * len(artifacts)

    def run(job: list[int]) -> None:
        for index in job:
            outcomes[index] = read(artifacts[index])

    if len(jobs) <= 1:
        for job in jobs:
            run(job)
    else:
        workers = max(1, min(concurrency, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plan") as pool:
            for future in [pool.submit(run, job) for job in jobs]:
                future.result()
    return [outcome for outcome in outcomes if outcome is not None]


def _desired_change(
    artifact: Artifact, client: EngineClient, recorded: ResourceState | None, change: Change
) -> PlannedChange:
    live = client.read(artifact)
    common: dict[str, Any] = {
        "workflow": artifact.workflow,
        "target": artifact.target,
        "engine": artifact.engine,
        "resource": artifact.resource,
        "artifact": artifact,
        "live": live,
        "breaking": change.breaking,
        "bump": change.bump,
        "version": artifact.version,
        "previous_version": recorded.spec_version if recorded is not None else None,
    }
    if live is None:
        return PlannedChange(action="create", **common)
    # secret values never reach a plan (its text, JSON, file or digest): masked with a digest
    diff = mask_diff(
        _spec_level(
            artifact,
            tuple(
                {"path": c["path"], "before": c["actual"], "after": c["expected"]}
                for c in client.diff(artifact, live)
            ),
            change,
        ),
        ("before", "after"),
    )
    reason = ""
    if diff:
        reason = "the live resource differs"
    elif live.digest != artifact.digest:
        reason = "the live resource carries another digest stamp"
    elif recorded is None:
        reason = "live but not recorded in the state (an apply was interrupted?)"
    elif recorded.status != "applied":
        reason = f"recorded as {recorded.status} in the state"
    elif recorded.artifact_digest != artifact.digest or recorded.resource_id != live.id:
        reason = "the state records another digest or id"
    action: Action = "update" if reason else "noop"
    return PlannedChange(action=action, resource_id=live.id, diff=diff, reason=reason, **common)


def _spec_level(
    artifact: Artifact, diff: tuple[dict[str, Any], ...], change: Change
) -> tuple[dict[str, Any], ...]:
    """An engine that holds the spec by its digest shows a changed spec as changed digests:
    replace those by the fields of the workflow that changed since the applied version."""
    opaque = ENGINES[artifact.engine].spec_digest_paths if artifact.engine in ENGINES else ()
    if not any(entry["path"] in opaque for entry in diff):
        return diff
    if change.previous is None or change.current is None:
        return diff  # the applied version is unknown: the digests are all there is to show
    fields = tuple(
        {"path": c["path"], "before": c["expected"], "after": c["actual"]}
        for c in diff_documents(mask_secrets(change.previous), mask_secrets(change.current))
    )
    if not fields:
        return diff  # the spec is the same: what changed is in the payload (its bindings)
    return tuple(entry for entry in diff if entry["path"] not in opaque) + fields


# -- the change document against the last applied version -------------------------------------


def save_applied_spec(store: Path | StateBackend, workflow: Workflow) -> None:
    """Keep the normalized spec being applied next to the state (the caller holds the lock),
    its secret-looking values masked (`controlplane.redaction`): the next plan compares masked
    documents, so an unchanged secret is unchanged and a changed one shows as changed."""
    stored = mask_secrets(to_document(workflow))
    _backend(store).write_spec(
        workflow.key, workflow.metadata.version, canonical_json(stored) + "\n"
    )


def previous_changes(
    state_dir: Path | StateBackend, state: State, workflows: Iterable[Workflow]
) -> dict[str, Change]:
    """The change of every workflow against the version last applied to the environment.

    A workflow the state does not know is a `create`; one whose applied spec cannot be found
    (applied by an older cpl) is unknown (no breaking-change detection) rather than guessed;
    a workflow of the state that no longer exists is a `delete`. Both sides are compared
    with their secrets masked (the stored copies are); `current` keeps the real document,
    which the policy input carries.
    """
    store = _backend(state_dir)
    result: dict[str, Change] = {}
    applied: dict[str, str] = {}
    for resource in state.resources:
        if not is_shared(resource.workflow):
            applied.setdefault(resource.workflow, resource.spec_version)
    for workflow in workflows:
        version = applied.pop(workflow.key, None)
        if version is None:
            result[workflow.key] = compare_documents(None, to_document(workflow))
            continue
        previous = _applied_spec(store, workflow.key, version)
        if previous is None:
            result[workflow.key] = UNKNOWN
            continue
        current = to_document(workflow)
        change = compare_documents(mask_secrets(previous), mask_secrets(current))
        result[workflow.key] = dataclasses.replace(change, current=current)
    for key, version in applied.items():
        previous = mask_secrets(_applied_spec(store, key, version) or {})
        result[key] = compare_documents(previous, None)
    return result


def _applied_spec(store: StateBackend, workflow: str, version: str) -> dict[str, Any] | None:
    text = store.read_spec(workflow, version)
    if text is None:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _backend(store: Path | StateBackend) -> StateBackend:
    from controlplane.deploy.stores import LocalStore

    return LocalStore(store) if isinstance(store, Path) else store


# -- fingerprints ---------------------------------------------------------------------------


def fingerprint(
    repo: Path,
    env: Environment,
    plan_: Plan,
    state: State,
    extra_policy: Iterable[Path] = (),
    *,
    known: Mapping[str, str] | None = None,
) -> Fingerprint:
    """The digests of what `plan_` saw (see Fingerprint); `known` are digests of files the
    plan has just read (by repo-relative name), not read again."""
    files = file_digests(repo, [repo / d for d in REPO_DIRECTORIES], known)
    policy_roots = [builtin_policy_dir(), *policy_paths(env, repo), *extra_policy]
    policy_files = file_digests(repo, policy_roots)
    policy_files["<policy.data>"] = digest_of(policy_config(env))
    resources = live_digests(plan_)
    lineage = state.lineage if state.serial > 0 else None
    return Fingerprint(
        repo=digest_of(files),
        policies=digest_of(policy_files),
        live=digest_of(
            # a state never saved has a fresh random lineage each time it is loaded
            {"resources": resources, "serial": state.serial, "lineage": lineage}
        ),
        files=files,
        policy_files=policy_files,
        resources=resources,
        state_serial=state.serial,
    )


def live_digests(plan_: Plan) -> dict[str, str]:
    """Per planned resource, the digest of its live document, id and marks (or "absent")."""
    result: dict[str, str] = {}
    for change in plan_.changes:
        live = change.live
        if live is None:
            result[str(change.key)] = "absent" if change.action != "delete" else "recorded"
        else:
            result[str(change.key)] = digest_of(
                {"id": live.id, "document": live.document, "tags": live.tags}
            )
    return result


def file_digests(
    repo: Path, roots: Iterable[Path], known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """sha256 of every file under `roots` (files or folders), by path relative to `repo`
    (`known`: digests already computed, by that path)."""
    known = known or {}
    result: dict[str, str] = {}
    real_repo = repo.resolve()
    folders: dict[Path, Path] = {}  # each folder resolved once, not once per file in it
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            if path.is_symlink():
                real = path.resolve()
            else:
                if path.parent not in folders:
                    folders[path.parent] = path.parent.resolve()
                real = folders[path.parent] / path.name
            name = _display(real_repo, real)
            digest = known.get(name)
            result[name] = digest or "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(result.items()))


def _display(real_repo: Path, real: Path) -> str:
    """A resolved path, relative to the resolved repo when inside it."""
    try:
        return real.relative_to(real_repo).as_posix()
    except ValueError:
        return real.as_posix()


def moved(saved: Fingerprint, current: Fingerprint) -> list[str]:
    """What moved between two fingerprints, one sentence per kind (empty: nothing moved)."""
    reasons: list[str] = []
    if saved.repo != current.repo:
        reasons.append("the specs moved: " + _changed(saved.files, current.files))
    if saved.policies != current.policies:
        reasons.append("the policies moved: " + _changed(saved.policy_files, current.policy_files))
    if saved.live != current.live:
        detail = _changed(saved.resources, current.resources)
        if detail == "nothing listed changed":
            detail = (
                f"the state was rewritten (serial {saved.state_serial} → {current.state_serial})"
            )
        reasons.append("the live state moved: " + detail)
    return reasons


def _changed(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    parts = [f"{k} changed" for k in sorted(before) if k in after and before[k] != after[k]]
    parts += [f"{k} removed" for k in sorted(before) if k not in after]
    parts += [f"{k} added" for k in sorted(after) if k not in before]
    return ", ".join(parts[:10]) + (f" (+{len(parts) - 10} more)" if len(parts) > 10 else "") or (
        "nothing listed changed"
    )
