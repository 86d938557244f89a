"""A drift run fanned out in shards: the deterministic split, a shard's scope, the aggregation
of the shards' reports into the report one `detect_drift` over the whole environment gives,
and the wire form of a report (shards travel as JSON between processes).

A shard is one target and some tenants of it: the artifacts of that target whose first tenant
(`tenants_of`, sorted) is one of the shard's, so every artifact is read in exactly one shard,
a shared resource included. Tenants are taken in order and share a shard up to `size`
artifacts (a shard has a fixed cost: an activity, a policy engine); a tenant with more is
split into shards of its own. The first shard of each target also lists
the target for unmanaged resources. The split depends only on the environment and the desired
artifacts: the same repo gives the same shards, with the same ids, on every machine.

Aggregation is keyed by shard id (a shard retried on another process has one result) and
dedupes what the shards cannot know of each other: a live object that two targets reach (two
Temporal targets on one namespace) is managed if any shard read it, and unmanaged once.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.drift.detect import tenants_of
from controlplane.drift.model import DriftItem, DriftReport, ReadFailure, TargetStats
from controlplane.engines.live import Change
from controlplane.engines.translator import Artifact
from controlplane.policy.decision import Violation
from controlplane.report.check import violation_json
from controlplane.spec.environment import Environment

SHARD_SIZE = 50
"""Artifacts per shard at most: a shard's report stays far below an engine's payload limit."""


@dataclass(frozen=True)
class Shard:
    """One target and the artifacts of some of its tenants; `inventory`: list the target."""

    id: str
    target: str
    tenants: tuple[str, ...]
    resources: tuple[str, ...]
    inventory: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "tenants": list(self.tenants),
            "resources": list(self.resources),
            "inventory": self.inventory,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Shard:
        return cls(
            id=str(doc["id"]),
            target=str(doc["target"]),
            tenants=tuple(str(t) for t in doc["tenants"]),
            resources=tuple(str(r) for r in doc["resources"]),
            inventory=bool(doc["inventory"]),
        )

    def scope(self) -> dict[str, Any]:
        """The `detect_drift` arguments that read this shard and nothing else."""
        wanted = frozenset(self.resources)
        return {
            "targets": (self.target,),
            "select": lambda artifact: artifact.resource in wanted,
            "inventory": self.inventory,
        }


def plan_shards(
    env: Environment,
    desired: Sequence[Artifact],
    *,
    tenants: Iterable[str] = (),
    targets: Iterable[str] = (),
    size: int = SHARD_SIZE,
) -> list[Shard]:
    """The shards of a run over `env` (limited to `tenants` and `targets` when given), in
    target order then tenant order; ids are `<target>/<first tenant>[/<n>]` (`<target>/-`
    for a target with nothing desired, listed for unmanaged resources only)."""
    wanted_tenants, wanted_targets = frozenset(tenants), frozenset(targets)
    shards: list[Shard] = []
    for target in env.spec.targets:
        if wanted_targets and target.name not in wanted_targets:
            continue
        by_tenant: dict[str, list[str]] = {}
        for artifact in desired:
            served = tenants_of(artifact)
            if artifact.target != target.name:
                continue
            if wanted_tenants and not served & wanted_tenants:
                continue
            owner = min(served & wanted_tenants or served)
            by_tenant.setdefault(owner, []).append(artifact.resource)
        planned = _target_shards(target.name, by_tenant, size)
        if not planned:  # nothing desired there: still listed for unmanaged resources
            planned = [Shard(f"{target.name}/-", target.name, (), (), True)]
        # the first shard of a target lists it for unmanaged resources
        shards.append(dataclasses.replace(planned[0], inventory=True))
        shards.extend(planned[1:])
    return shards


def _target_shards(target: str, by_tenant: Mapping[str, list[str]], size: int) -> list[Shard]:
    """One target's shards: tenants in order share one up to `size` artifacts, a tenant with
    more gets shards of its own."""
    shards: list[Shard] = []
    group: list[tuple[str, list[str]]] = []
    for tenant in sorted(by_tenant):
        resources = sorted(set(by_tenant[tenant]))
        if group and sum(len(names) for _, names in group) + len(resources) > size:
            shards.append(_group_shard(target, group))
            group = []
        if len(resources) <= size:
            group.append((tenant, resources))
            continue
        for n, start in enumerate(range(0, len(resources), size)):
            chunk = tuple(resources[start : start + size])
            suffix = f"/{n}" if n else ""
            shards.append(Shard(f"{target}/{tenant}{suffix}", target, (tenant,), chunk, False))
    if group:
        shards.append(_group_shard(target, group))
    return shards


def _group_shard(target: str, group: list[tuple[str, list[str]]]) -> Shard:
    tenants = tuple(tenant for tenant, _ in group)
    resources = tuple(name for _, names in group for name in names)
    return Shard(f"{target}/{tenants[0]}", target, tenants, resources, False)


def aggregate(
    env: Environment,
    reports: Mapping[str, DriftReport],
    *,
    tenants: Iterable[str] = (),
    targets: Iterable[str] = (),
    started: dt.datetime | None = None,
    duration: float | None = None,
) -> DriftReport:
    """One report from the shards' (by shard id): what `detect_drift` over the same scope
    reports, items and failures deduped."""
    wanted = frozenset(targets)
    order = [t.name for t in env.spec.targets if not wanted or t.name in wanted]
    shards = [reports[key] for key in sorted(reports)]
    managed: dict[tuple[str, str, str], DriftItem] = {}
    unmanaged: dict[str, list[DriftItem]] = {}
    for report in shards:
        for item in report.items:
            if item.status == "unmanaged":
                unmanaged.setdefault(item.target, []).append(item)
            else:
                managed.setdefault((item.target, item.workflow or "", item.resource), item)
    seen: set[tuple[str, str | None]] = {
        (i.engine, i.id) for i in managed.values() if i.id is not None
    }
    items = list(managed.values())
    for target in order:  # the first target that lists a live object owns it, as in one run
        for item in unmanaged.get(target, []):
            if (item.engine, item.id) in seen:
                continue
            seen.add((item.engine, item.id))
            items.append(item)
    items.sort(key=lambda i: (i.target, i.workflow or "", i.resource, i.status))
    failures = _failures(shards)
    stats = []
    for target in order:
        per = [s for r in shards for s in r.targets if s.target == target]
        if not per:
            continue
        stats.append(
            TargetStats(
                target=target,
                engine=per[0].engine,
                reads=sum(s.reads for s in per),
                failures=sum(1 for f in failures if f.target == target),
                skipped=sum(s.skipped for s in per),
                seconds=round(sum(s.seconds for s in per), 3),
            )
        )
    begun = started or min((r.started for r in shards), default=dt.datetime.now(dt.UTC))
    return DriftReport(
        environment=env.name,
        items=tuple(items),
        failures=tuple(failures),
        targets=tuple(stats),
        tenants=tuple(sorted(frozenset(tenants))),
        started=begun,
        duration=duration if duration is not None else max((r.duration for r in shards), default=0),
        concurrency=max((r.concurrency for r in shards), default=1),
    )


def _failures(shards: Sequence[DriftReport]) -> list[ReadFailure]:
    """A target that is down once (every shard of it finds it down), then its single reads,
    by target as `detect_drift` orders them."""
    down: dict[str, ReadFailure] = {}
    single: dict[tuple[str, str | None, str], ReadFailure] = {}
    for report in shards:
        for failure in report.failures:
            if failure.resource is None:
                down.setdefault(failure.target, failure)
            else:
                single.setdefault((failure.target, failure.resource, failure.message), failure)
    found: list[ReadFailure] = []
    for target in sorted({*down, *(key[0] for key in single)}):
        if target in down:
            found.append(down[target])
        found.extend(f for key, f in single.items() if key[0] == target)
    return found


# -- the wire form -------------------------------------------------------------------------


def report_to_wire(report: DriftReport) -> dict[str, Any]:
    """The report's JSON plus what its JSON leaves out and the renderings need (the file of
    each violation); never the live documents."""
    doc = report.to_json()
    for item, wire in zip(report.items, doc["items"], strict=True):
        for violation, shape in zip(item.violations, wire["violations"], strict=True):
            shape["file"] = violation.file
    return doc


PACKED_LIMIT = 512 * 1024 * 1024
"""Bytes a packed report may unpack to at most (it comes through the engine)."""


def pack(doc: Mapping[str, Any]) -> dict[str, str]:
    """A wire report compressed for the trip through an engine's history: reports repeat
    their keys and paths, so this keeps them about ten times under payload limits."""
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return {"zlib": base64.b64encode(zlib.compress(text, 6)).decode("ascii")}


def unpack(packed: Mapping[str, Any], limit: int = PACKED_LIMIT) -> dict[str, Any]:
    """What `pack` packed; ValueError when it is not a packed report or unpacks to more than
    `limit` bytes."""
    try:
        data = base64.b64decode(str(packed["zlib"]), validate=True)
        inflater = zlib.decompressobj()
        text = inflater.decompress(data, limit)
        if inflater.unconsumed_tail:
            raise ValueError(f"a packed drift report unpacks to more than {limit} bytes")
        doc = json.loads(text)
    except (KeyError, TypeError, binascii.Error, zlib.error, json.JSONDecodeError) as error:
        raise ValueError(f"not a packed drift report: {error}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a packed drift report: not an object")
    return doc


def report_from_wire(doc: Mapping[str, Any]) -> DriftReport:
    """The report `report_to_wire` wrote (from a worker of the same version)."""
    return DriftReport(
        environment=doc["environment"],
        items=tuple(_item(i) for i in doc["items"]),
        failures=tuple(
            ReadFailure(
                target=f["target"],
                engine=f["engine"],
                message=f["message"],
                resource=f["resource"],
                transient=f["transient"],
            )
            for f in doc["failures"]
        ),
        targets=tuple(TargetStats(**stats) for stats in doc["targets"]),
        tenants=tuple(doc["tenants"]),
        started=dt.datetime.fromisoformat(doc["started"]),
        duration=float(doc["duration"]),
        concurrency=int(doc["concurrency"]),
    )


def _item(doc: Mapping[str, Any]) -> DriftItem:
    return DriftItem(
        workflow=doc["workflow"],
        target=doc["target"],
        engine=doc["engine"],
        resource=doc["resource"],
        status=doc["status"],
        diff=tuple(Change(**c) for c in doc["diff"]),  # type: ignore[typeddict-item]
        ignored=tuple(Change(**c) for c in doc["ignored"]),  # type: ignore[typeddict-item]
        id=doc["id"],
        file=doc["file"],
        compliant=doc["compliant"],
        violations=tuple(_violation(v) for v in doc["violations"]),
        note=doc["note"],
    )


def _violation(doc: Mapping[str, Any]) -> Violation:
    shape = set(violation_json(Violation("", "", "", "", "", "", 0, 0)))
    fields = {key: doc[key] for key in shape | {"file"} if key in doc}
    return Violation(**fields)


# -- the repo a run reads --------------------------------------------------------------------

VERSIONED = ("workflows", "waivers", "environments", "policies", "drift/ignore.yaml")
"""What a drift run reads from the control repo (with the environment's policy paths)."""


def repo_version(repo: Path, env: Environment | None = None) -> dict[str, str | None]:
    """`commit`: the repo's git HEAD (None outside git); `digest`: SHA-256 over the files a
    drift run reads, so a worker with uncommitted changes is told apart too."""
    digest = hashlib.sha256()
    roots = [*VERSIONED, *(env.spec.policy.paths if env is not None else [])]
    for root in sorted(set(roots)):
        path = repo / root
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.is_file():
                continue
            digest.update(file.relative_to(repo).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return {"commit": _commit(repo), "digest": digest.hexdigest()}


def _commit(repo: Path) -> str | None:
    try:
        import git

        return str(git.Repo(repo, search_parent_directories=True).head.commit.hexsha)
    except Exception:  # not a git repo, no commit yet, git missing: the digest still tells
        return None


def version_mismatch(
    wanted: Mapping[str, Any], have: Mapping[str, Any], worker: str = "this worker"
) -> str | None:
    """Why `have` (a worker's repo) cannot compute a run on `wanted`, or None."""
    if wanted.get("commit") and have.get("commit") != wanted.get("commit"):
        return (
            f"{worker} reads the control repo at commit {_short(have.get('commit'))}; the drift "
            f"run reads commit {_short(wanted.get('commit'))}: check out that commit on the "
            "worker (or restart it from a checkout of it)"
        )
    if wanted.get("digest") and have.get("digest") != wanted.get("digest"):
        return (
            f"{worker}'s control repo differs from the drift run's (commit "
            f"{_short(have.get('commit'))}, specs digest {str(have.get('digest'))[:12]} instead of "
            f"{str(wanted.get('digest'))[:12]}): uncommitted changes on one side"
        )
    return None


def _short(commit: Any) -> str:
    return str(commit)[:12] if commit else "(none: not a git checkout)"
