"""The split of a drift run into shards and the aggregation of their reports (no engine)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from controlplane.cli import run
from controlplane.drift import DriftItem, DriftReport, ReadFailure, TargetStats
from controlplane.drift.fanout import (
    PACKED_LIMIT,
    aggregate,
    pack,
    plan_shards,
    report_from_wire,
    report_to_wire,
    unpack,
)
from controlplane.drift_runs import hosting_target
from controlplane.errors import ConfigError
from controlplane.pipeline import render_all
from controlplane.policy.decision import Violation
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_workflows
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def local() -> tuple[Environment, list]:  # type: ignore[type-arg]
    environment = load_environment(ROOT, "local")
    workflows = [w.model for w in load_workflows(ROOT).workflows]
    return environment, render_all(workflows, environment)


def test_every_artifact_is_read_in_exactly_one_shard_and_each_target_listed_once(
    local: tuple[Environment, list],  # type: ignore[type-arg]
) -> None:
    environment, desired = local
    shards = plan_shards(environment, desired)

    assert shards == plan_shards(environment, list(reversed(desired)))  # deterministic
    read = Counter((s.target, r) for s in shards for r in s.resources)
    assert read == Counter((a.target, a.resource) for a in desired)
    listed = Counter(s.target for s in shards if s.inventory)
    assert listed == Counter(t.name for t in environment.spec.targets)
    assert len({s.id for s in shards}) == len(shards)
    namespace = next(a for a in desired if a.shared)
    owner = min(w.split("/", 1)[0] for w in namespace.shared_by)
    assert (
        namespace.resource
        in next(s for s in shards if s.id == f"{namespace.target}/{owner}").resources
    )


def test_a_large_tenant_is_split_and_a_selection_narrows_the_shards(
    local: tuple[Environment, list],  # type: ignore[type-arg]
) -> None:
    environment, desired = local
    shards = plan_shards(environment, desired, size=1)
    assert all(len(s.resources) <= 1 for s in shards)
    assert any(s.id.endswith("/1") for s in shards)
    grouped = plan_shards(environment, desired, size=len(desired))  # small tenants share
    assert [s.id for s in grouped] == [
        f"{t.name}/{min(s.tenants[0] for s in shards if s.target == t.name)}"
        for t in environment.spec.targets
    ]

    tenant = desired[0].workflow.split("/", 1)[0]
    chosen = plan_shards(environment, desired, tenants=[tenant], targets=["sfn-local"])
    assert {s.target for s in chosen} == {"sfn-local"}
    assert {s.tenants for s in chosen} <= {(tenant,)}


def _item(target: str, resource: str, status: str, id: str | None = None) -> DriftItem:
    return DriftItem(
        workflow=None if status == "unmanaged" else f"t/{resource}",
        target=target,
        engine="temporal",
        resource=resource,
        status=status,  # type: ignore[arg-type]
        id=id,
    )


def test_aggregation_dedupes_what_shards_cannot_know_of_each_other() -> None:
    environment = load_environment(ROOT, "local")
    a, b = "temporal-local", "sfn-local"
    down = ReadFailure(b, "stepfunctions", "connection refused")
    first = DriftReport(
        "local",
        (_item(a, "x", "in-sync", "ns/x"), _item(a, "shared", "in-sync", "ns")),
        failures=(down,),
        targets=(TargetStats(a, "temporal", reads=3),),
    )
    second = DriftReport(
        "local",
        # the same shared object seen by a second shard, and the object of `x` listed by
        # another target reaching the same namespace
        (_item(a, "shared", "in-sync", "ns"), _item(b, "alias-of-x", "unmanaged", "ns/x")),
        failures=(down,),
        targets=(TargetStats(a, "temporal", reads=1),),
    )
    report = aggregate(environment, {"2": second, "1": first})

    assert [(i.target, i.resource) for i in report.items] == [(a, "shared"), (a, "x")]
    assert report.failures == (down,)
    assert [(s.target, s.reads) for s in report.targets] == [(a, 4)]


def test_a_report_travels_whole_and_bounded() -> None:
    violation = Violation("CPL-P001", "high", "mandatory", "m", "/p", "workflows/t/x.yaml", 3, 4)
    item = dataclasses.replace(
        _item("temporal-local", "x", "modified", "ns/x"),
        diff=({"path": "/a", "expected": 1, "actual": 2},),
        compliant=False,
        violations=(violation,),
    )
    report = DriftReport("local", (item,), targets=(TargetStats("temporal-local", "temporal"),))

    back = report_from_wire(unpack(pack(report_to_wire(report))))
    assert back.to_json() == report.to_json()
    assert back.items[0].violations == (violation,)
    with pytest.raises(ValueError, match="not a packed drift report"):
        unpack({"zlib": "%%%"})
    packed = pack(report_to_wire(report))
    assert unpack(packed, limit=PACKED_LIMIT) == report_to_wire(report)
    with pytest.raises(ValueError, match="unpacks to more than 100 bytes"):
        unpack(packed, limit=100)


def test_the_target_that_runs_the_workflow(tmp_path: object) -> None:
    environment = load_environment(ROOT, "local")
    assert hosting_target(environment, None).name == "temporal-local"
    with pytest.raises(ConfigError, match="'sfn-local' is not a Temporal target"):
        hosting_target(environment, "sfn-local")
    second = environment.spec.targets[1].model_copy(update={"name": "temporal-two"})
    body = environment.spec.model_copy(update={"targets": [*environment.spec.targets, second]})
    several = environment.model_copy(update={"spec": body})
    with pytest.raises(ConfigError, match="several Temporal targets"):
        hosting_target(several, None)


@pytest.mark.parametrize("where", [(), ("--on", "temporal")])
def test_an_unknown_target_is_named(
    where: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["drift", "--env", "local", "--repo", str(ROOT), "--target", "nosuch", *where])
    assert code == 1
    assert "--target: environment 'local' has no target 'nosuch'" in capsys.readouterr().err
