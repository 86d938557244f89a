"""The cache of `check` and `plan` (.cpl/cache/) and `--base` done incrementally.

What is rendered and evaluated is counted through the pipeline's two seams (the render
call and the policy engine's `evaluate`), never timed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest

from controlplane.cache import desired
from controlplane.cache.store import Cache, open_cache
from controlplane.pipeline import DesiredState, desired_state
from controlplane.report.check import check_json

ROOT = Path(__file__).resolve().parents[2]
TEMPORAL = "temporal-local"


@dataclass
class Seams:
    """What the pipeline rendered, (workflow, target), and gave the policy engine."""

    renders: list[tuple[str, str]] = field(default_factory=list)
    evaluated: list[tuple[str, str]] = field(default_factory=list)
    engines: int = 0

    def reset(self) -> None:
        self.renders.clear()
        self.evaluated.clear()
        self.engines = 0


class _CountingEngine:
    def __init__(self, engine: Any, seams: Seams):
        self._engine = engine
        self._seams = seams

    @property
    def rules(self) -> Any:
        return self._engine.rules

    def evaluate(self, documents: Sequence[Mapping[str, Any]]) -> Any:
        for document in documents:
            meta = document["workflow"]["metadata"]
            key = f"{meta['tenant']}/{meta['name']}"
            self._seams.evaluated.append((key, document["target"]["name"]))
        return self._engine.evaluate(documents)

    def close(self) -> None:
        self._engine.close()


@pytest.fixture
def seams(monkeypatch: pytest.MonkeyPatch) -> Seams:
    counted = Seams()
    render, open_engine = desired.render, desired.open_engine

    def counting_render(workflow: Any, target: Any, environment: Any) -> Any:
        counted.renders.append((workflow.key, target.name))
        return render(workflow, target, environment)

    def counting_open(environment: Any, repo: Path) -> Any:
        counted.engines += 1
        return _CountingEngine(open_engine(environment, repo), counted)

    monkeypatch.setattr(desired, "render", counting_render)
    monkeypatch.setattr(desired, "open_engine", counting_open)
    monkeypatch.delenv("CPL_NO_CACHE", raising=False)
    monkeypatch.delenv("CPL_CACHE_DIR", raising=False)
    return counted


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The example control repo, committed in a git repository of its own."""
    root = tmp_path / "repo"
    for folder in ("workflows", "environments", "waivers"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / ".gitignore").write_text(".cpl/\n")
    repository = git.Repo.init(root)
    with repository.config_writer() as config:
        config.set_value("user", "name", "cpl tests")
        config.set_value("user", "email", "tests@cpl.invalid")
    repository.git.add("-A")
    repository.index.commit("initial")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def check(repo: Path, **options: Any) -> DesiredState:
    return desired_state(repo, "local", materialize="none", **options)


def report(state: DesiredState) -> dict[str, Any]:
    return json.loads(json.dumps(check_json(state.decision), default=str))


def subjects(state: DesiredState) -> set[str]:
    return {s.workflow for s in state.subjects}


def test_a_repeated_check_renders_and_evaluates_nothing(repo: Path, seams: Seams) -> None:
    first = check(repo)
    assert seams.renders and seams.evaluated and seams.engines == 1
    seams.reset()

    again = check(repo)
    assert seams.renders == [] and seams.evaluated == [] and seams.engines == 0
    assert report(again) == report(first)
    assert again.decision.exit_code == first.decision.exit_code


def test_no_cache_renders_and_evaluates_again(
    repo: Path, seams: Seams, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = check(repo)
    count = len(seams.evaluated)
    seams.reset()
    bypassed = check(repo, use_cache=False)
    assert len(seams.evaluated) == count and seams.renders
    assert report(bypassed) == report(first)
    seams.reset()
    monkeypatch.setenv("CPL_NO_CACHE", "1")
    check(repo)
    assert len(seams.evaluated) == count


def test_waivers_and_today_are_applied_to_cached_results(repo: Path, seams: Seams) -> None:
    before = check(repo)
    warning = next(v for r in before.decision.results for v in r.violations if v.warns)
    workflow = next(r.workflow for r in before.decision.results if warning in r.violations)
    (repo / "waivers/cached.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Waiver\nmetadata: {name: cached}\nspec:\n"
        f"  rule: {warning.rule}\n  workflows: [{workflow}]\n  environments: [local]\n"
        "  owner: team-test\n  reason: accepted while the cache is tested\n"
        "  expires: 2026-12-31\n"
    )
    seams.reset()
    waived = check(repo, today=dt.date(2026, 12, 1))
    assert seams.evaluated == []
    assert any(v.waived and v.waiver == "cached" for v in waived.decision.violations)
    assert [w.name for w in waived.decision.waivers.applied] == ["cached"]

    expired = check(repo, today=dt.date(2027, 1, 1))
    assert seams.evaluated == []
    assert [w.name for w in expired.decision.waivers.expired] == ["cached"]
    assert expired.decision.denied
    assert not any(v.waiver == "cached" for v in expired.decision.violations)


def test_changing_one_workflow_renders_and_evaluates_only_it(repo: Path, seams: Seams) -> None:
    check(repo)
    check(repo, base="HEAD")
    seams.reset()
    edit(repo / "workflows/retail/inventory-sync.yaml", "Every 15 minutes", "Every quarter hour")

    whole = check(repo)
    assert {w for w, _ in seams.renders} == {"retail/inventory-sync"}
    assert {w for w, _ in seams.evaluated} == {"retail/inventory-sync"}
    assert len(subjects(whole)) > 10  # the others come from the cache

    seams.reset()
    since = check(repo, base="HEAD")
    assert subjects(since) == {"retail/inventory-sync"}
    assert since.unchanged == len(subjects(whole)) - 1
    assert since.changes is not None and set(since.changes) == {"retail/inventory-sync"}
    # the change document differs from the one without --base: evaluated once more
    assert {w for w, _ in seams.evaluated} == {"retail/inventory-sync"}


def test_changing_the_environment_evaluates_every_workflow(repo: Path, seams: Seams) -> None:
    everything = subjects(check(repo))
    edit(repo / "environments/local.yaml", "appointments-worker:1.8.2", "appointments-worker:1.8.3")
    seams.reset()
    since = check(repo, base="HEAD")
    assert subjects(since) == everything
    assert {w for w, _ in seams.evaluated} == everything


def test_a_shared_namespace_change_pulls_in_the_namespace(repo: Path, seams: Seams) -> None:
    state = check(repo)
    namespace = {s.workflow for s in state.subjects if s.target == TEMPORAL}
    assert len(namespace) >= 3 and "finance/month-end-close" in namespace

    edit(repo / "workflows/finance/month-end-close.yaml", "Monthly close", "Monthly ledger close")
    assert subjects(check(repo, base="HEAD")) == {"finance/month-end-close"}

    edit(repo / "workflows/finance/month-end-close.yaml", "retention: 30d", "retention: 45d")
    seams.reset()
    since = check(repo, base="HEAD")
    assert namespace <= subjects(since)
    assert not subjects(since) & {s.workflow for s in state.subjects} - namespace
    # the namespace now has a retention conflict: every workflow of it is told
    retention = [s.workflow for s in since.subjects if s.target == TEMPORAL]
    assert set(retention) == namespace


def test_a_deleted_workflow_is_a_change_since_the_base(repo: Path, seams: Seams) -> None:
    check(repo)
    seams.reset()
    (repo / "workflows/retail/inventory-sync.yaml").unlink()
    since = check(repo, base="HEAD")
    assert since.changes is not None
    assert since.changes["retail/inventory-sync"].action == "delete"
    assert seams.renders == []


def test_corrupt_and_partial_entries_are_misses(repo: Path, seams: Seams) -> None:
    first = check(repo)
    entries = [p for p in (repo / ".cpl/cache").rglob("*.json")]
    assert entries
    for index, path in enumerate(entries):
        text = path.read_text()
        path.write_text(text[: len(text) // 2] if index % 2 else '{"key": "other", "value": 1}')
    seams.reset()
    again = check(repo)
    assert report(again) == report(first)
    assert seams.evaluated and seams.renders


def test_the_store_writes_atomically_and_prunes_the_least_recently_used(tmp_path: Path) -> None:
    cache = Cache(tmp_path, max_bytes=4000)
    for index in range(10):
        cache.put("kind", f"{index:02d}" * 32, {"payload": "x" * 400, "index": index})
    assert not list(tmp_path.rglob(".tmp-*"))
    assert cache.get("kind", "00" * 32) == {"payload": "x" * 400, "index": 0}  # used now
    cache.prune()
    kept = {p.stem for p in tmp_path.rglob("*.json")}
    assert "00" * 32 in kept and "01" * 32 not in kept
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.json")) <= 4000
    assert cache.get("kind", "01" * 32) is None


def test_the_cache_is_configured_by_environment_variables(tmp_path: Path) -> None:
    default = open_cache(tmp_path, environ={})
    assert default.enabled and default.root == tmp_path / ".cpl/cache"
    moved = open_cache(
        tmp_path, environ={"CPL_CACHE_DIR": str(tmp_path / "ci"), "CPL_CACHE_MAX_MB": "5"}
    )
    assert moved.root == tmp_path / "ci" and moved.max_bytes == 5 * 2**20
    assert not open_cache(tmp_path, environ={"CPL_NO_CACHE": "1"}).enabled
    assert not open_cache(tmp_path, enabled=False, environ={}).enabled


def test_a_warm_check_reads_its_entries_from_one_bundle(repo: Path, seams: Seams) -> None:
    first = check(repo)
    check(repo)  # the second run finds its entries and keeps them in the bundle
    for kind in ("workflow", "policy", "rules"):
        shutil.rmtree(repo / ".cpl/cache/v1" / kind)
    seams.reset()
    again = check(repo)
    assert seams.renders == [] and seams.evaluated == [] and seams.engines == 0
    assert report(again) == report(first)


def test_shared_rules_files_come_out_of_a_warm_pass_alike(repo: Path, seams: Seams) -> None:
    """A warm pass rebuilds the shared resources from what each engine's `share` reads of
    the cached artifacts: the Temporal and Argo rules files (their workflows' slo and alerts)
    are the same as a cold pass's, and a changed alert changes them."""
    # the example's local Temporal and Argo targets deliver rules files (`prometheus`)

    def rules(state: DesiredState) -> dict[str, Any]:
        return {
            key[0]: artifact.document
            for key, artifact in state.artifacts.items()
            if key[0].startswith("shared:rules/")
        }

    cold = rules(desired_state(repo, "local", use_cache=False))
    assert set(cold) == {"shared:rules/temporal-local", "shared:rules/argo-local"}
    desired_state(repo, "local")  # fills the cache
    seams.reset()
    warm = rules(desired_state(repo, "local"))
    assert seams.renders == [] and warm == cold

    edit(
        repo / "workflows/finance/month-end-close.yaml",
        "{metric: failureRate, above: 0.0, window: 24h}",
        "{metric: failureRate, above: 0.01, window: 24h}",
    )
    changed = rules(desired_state(repo, "local"))
    assert changed["shared:rules/temporal-local"] != cold["shared:rules/temporal-local"]
    assert changed["shared:rules/argo-local"] == cold["shared:rules/argo-local"]


def test_a_neighbour_losing_its_isolation_is_seen_through_the_cache(
    repo: Path, seams: Seams
) -> None:
    """`input.shared` depends on the other workflows of a namespace: a cached result of an
    isolated workflow is not reused once a neighbour stops being isolated, with or without
    --base."""

    def p010(state: DesiredState) -> set[str]:
        return {
            result["workflow"]
            for result in report(state)["results"]
            for v in result["violations"]
            if v["rule"] == "CPL-P010"
        }

    assert p010(check(repo)) == set()
    check(repo, base="HEAD")
    edit(
        repo / "workflows/finance/fx-rates-refresh.yaml",
        "  security:\n    # it shares its Temporal namespace with regulated workflows (CPL-P010)\n"
        "    isolation: regulated\n",
        "",
    )
    assert "finance/month-end-close" in p010(check(repo))
    assert "finance/month-end-close" in p010(check(repo, base="HEAD"))
