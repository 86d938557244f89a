"""A drift run (docs/drift.md): what it compares with (`prepare`), the run itself
(`run_drift`: read back, assess, record), and, for a run fanned out on Temporal, the target
hosting its workflow, the workflow's input and the schedule `cpl apply` keeps for
environments that ask for one (`spec.drift.schedule`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.drift import (
    DEFAULT_CONCURRENCY,
    DriftReport,
    IgnoreRules,
    detect_drift,
    load_ignore,
)
from controlplane.drift.audit import record_drift
from controlplane.drift.compliance import LiveCompliance
from controlplane.drift.fanout import SHARD_SIZE, repo_version
from controlplane.engines.translator import Artifact
from controlplane.errors import ConfigError
from controlplane.pipeline import load_specs, render_all
from controlplane.policy.engine import open_engine
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import LoadResult, load_environment


@dataclass(frozen=True)
class Prepared:
    """What a drift run compares the live engines with: the environment, the specs, their
    artifacts and the ignore rules (one per repo version; fanned-out shards share it)."""

    environment: Environment
    loaded: LoadResult
    desired: list[Artifact]
    ignore: IgnoreRules


def prepare(repo: Path, env_name: str, ref: str | None = None) -> Prepared:
    environment = load_environment(repo, env_name)
    loaded = _load(repo, ref)
    desired = render_all([w.model for w in loaded.workflows], environment)
    return Prepared(environment, loaded, desired, load_ignore(repo))


def run_drift(
    repo: Path,
    env_name: str,
    *,
    tenants: tuple[str, ...] = (),
    ref: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    scope: Mapping[str, Any] | None = None,
    prepared: Prepared | None = None,
    record: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DriftReport:
    """Load, render, read back, assess the live states, record: the report of `cpl drift`.

    `scope` narrows `detect_drift` (targets, select, inventory: one shard of a fanned-out
    run, which records once for all shards: `record` False); `progress(done, total)` is
    told how far the reading is."""
    ready = prepared or prepare(repo, env_name, ref)
    environment, loaded, desired = ready.environment, ready.loaded, ready.desired
    known = [t.name for t in environment.spec.targets]
    for name in (scope or {}).get("targets", ()):
        if name not in known:
            raise ConfigError(
                f"--target: environment '{environment.name}' has no target '{name}' "
                f"(targets: {', '.join(known)})"
            )
    engine = open_engine(environment, repo)
    try:
        report = detect_drift(
            environment,
            desired,
            repo=repo,
            ignore=ready.ignore,
            tenants=tenants,
            concurrency=concurrency,
            assess=LiveCompliance(loaded, environment, engine, desired),
            progress=progress,
            **(scope or {}),
        )
    finally:
        engine.close()
    if record:
        record_drift(repo, environment, report, classifications(loaded))
    return report


def classifications(loaded: LoadResult) -> dict[str, str]:
    """Each workflow's classification by key (for the audit events)."""
    return {w.model.key: w.model.metadata.classification for w in loaded.workflows}


def _load(repo: Path, ref: str | None) -> LoadResult:
    if not (repo / "workflows").is_dir() and ref is None:
        raise ConfigError(f"no workflows/ in {repo}: nothing to compare with")
    loaded = load_specs(repo, ref)
    if not loaded.ok:
        raise ConfigError(
            "the specs are invalid: fix them before comparing with the live engines",
            diagnostics=[d for d in loaded.diagnostics if d.severity == "error"],
        )
    return loaded


HEARTBEAT = 30.0
"""Seconds without a heartbeat after which a shard is given to another worker."""
SHARD_TIMEOUT = 3600.0
APPROVAL_TIMEOUT = 7 * 86400.0
PARALLEL = 8
"""Shards in flight at once (each reads with `--concurrency` threads on its worker)."""


def hosting_target(environment: Environment, name: str | None) -> Target:
    """The Temporal target that runs the drift workflow: `name` (--on-target), else the
    environment's `drift.on`, else its only Temporal target."""
    settings = environment.spec.drift
    chosen = name or (settings.on if settings is not None else None)
    temporal = [t for t in environment.spec.targets if t.engine == "temporal"]
    if chosen is not None:
        where = "--on-target" if name else f"environments/{environment.name}.yaml: spec.drift.on"
        found = [t for t in environment.spec.targets if t.name == chosen]
        if not found or found[0].engine != "temporal":
            raise ConfigError(
                f"{where}: '{chosen}' is not a Temporal target of environment "
                f"'{environment.name}' (Temporal targets: "
                f"{', '.join(t.name for t in temporal) or 'none'})"
            )
        return found[0]
    if len(temporal) == 1:
        return temporal[0]
    if not temporal:
        raise ConfigError(
            f"--on temporal: environment '{environment.name}' has no Temporal target to run "
            "the drift workflow on"
        )
    raise ConfigError(
        f"--on temporal: environment '{environment.name}' has several Temporal targets "
        f"({', '.join(t.name for t in temporal)}): choose one with --on-target or "
        "spec.drift.on"
    )


def drift_request(
    repo: Path,
    environment: Environment,
    *,
    tenants: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    concurrency: int,
    sync: bool = False,
    yes: bool = False,
    pinned: bool = True,
) -> dict[str, Any]:
    """The drift workflow's input. `pinned`: carry the repo's version (a worker on another
    one refuses); a schedule's runs are not pinned: they read the workers' repo, all shards
    of one run at the version its plan was made on."""
    known = {t.name for t in environment.spec.targets}
    for name in targets:
        if name not in known:
            _no_target(environment, name)
    return {
        "environment": environment.name,
        "tenants": sorted(set(tenants)),
        "targets": list(targets),
        "concurrency": concurrency,
        "version": repo_version(repo, environment) if pinned else None,
        "sync": sync,
        # --yes skips the approval step only where nothing is shared with users
        "approval": not (yes and environment.tier == "development"),
        "heartbeat": HEARTBEAT,
        "shard_timeout": SHARD_TIMEOUT,
        "approval_timeout": APPROVAL_TIMEOUT,
        "parallel": PARALLEL,
        "shard_size": SHARD_SIZE,
        "started": None,
    }


def _no_target(environment: Environment, name: str) -> None:
    known = ", ".join(t.name for t in environment.spec.targets)
    raise ConfigError(
        f"--target: environment '{environment.name}' has no target '{name}' (targets: {known})"
    )


def keep_schedule(repo: Path, environment: Environment) -> str:
    """Create, update or remove the environment's drift schedule (`spec.drift.schedule`) on
    its hosting target; the line `cpl apply` prints about it."""
    from controlplane.engines.temporal.drift.schedule import keep_schedule as keep
    from controlplane.engines.temporal.drift.schedule import schedule_id

    settings = environment.spec.drift
    cron = settings.schedule if settings is not None else None
    target = hosting_target(environment, None)
    # unpinned: each run reads the workers' checkout, all its shards at its plan's version
    request = drift_request(repo, environment, concurrency=DEFAULT_CONCURRENCY, pinned=False)
    done = keep(target, environment.name, cron, request)
    name = schedule_id(environment.name)
    if cron is None:
        return f"drift schedule {name} on {target.name}: {done}"
    return f"drift schedule {name} on {target.name}: {cron} (UTC), {done}"
