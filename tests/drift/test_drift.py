"""`cpl drift` against the real local engines: a moto server (Step Functions) and a Temporal
dev server, both shared by the session (tests/engines.py)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from controlplane.audit import log_paths
from controlplane.cli import run
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.engines.temporal.client import CRON_MARK, record_key
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runner import connect
from controlplane.spec.load import load_environment
from tests.drift.conftest import CLOSED_PORT, ControlRepo, MakeControlRepo, item, unique

pytestmark = pytest.mark.integration


def _sfn(repo: ControlRepo) -> Any:
    environment = load_environment(repo.root, repo.env)
    return aws_client(environment.target("sfn-local"), "stepfunctions")


def _machine(repo: ControlRepo) -> tuple[Any, str, dict[str, Any]]:
    sfn = _sfn(repo)
    arn = next(
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"] == repo.sfn_resource
    )
    return sfn, arn, sfn.describe_state_machine(stateMachineArn=arn)


def _temporal(server: DevServer, namespace: str, action: Any) -> Any:
    async def go() -> Any:
        client = await connect(server.address, namespace)
        return await action(client, namespace)

    return asyncio.run(go())


# -- Step Functions ---------------------------------------------------------------------------


def test_in_sync_then_modified_by_hand_with_the_exact_diff(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    repo.deploy()

    code, report = repo.drift()
    assert code == 0, report
    assert report["drifted"] is False
    assert {i["status"] for i in report["items"]} == {"in-sync"}
    assert all(i["compliant"] is True for i in report["items"])
    # two workflows and the Temporal namespace they share
    assert report["summary"] == {**report["summary"], "managed": 3, "in_sync": 3, "coverage": 1.0}

    sfn, arn, described = _machine(repo)
    definition = json.loads(described["definition"])
    definition["Comment"] = "hot-fixed in the console"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))

    code, report = repo.drift()
    assert code == 5
    found = item(report, repo.sfn_resource)
    assert found["status"] == "modified"
    assert found["diff"] == [
        {
            "path": "/definition/Comment",
            "expected": f"{repo.tenant}/order-fulfillment 2.1.0 (rendered by cpl)",
            "actual": "hot-fixed in the console",
        }
    ]
    assert found["compliant"] is True  # a comment changes nothing a policy cares about
    assert item(report, repo.temporal_resource)["status"] == "in-sync"
    assert report["summary"]["modified"] == 1 and report["drifted"] is True


def test_live_edit_that_logs_execution_data_of_a_pii_workflow_is_not_compliant(
    control_repo: MakeControlRepo,
) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, arn, described = _machine(repo)
    logging = described["loggingConfiguration"]
    sfn.update_state_machine(
        stateMachineArn=arn, loggingConfiguration={**logging, "includeExecutionData": True}
    )

    code, report = repo.drift()
    assert code == 5
    found = item(report, repo.sfn_resource)
    assert found["status"] == "modified"
    assert found["diff"] == [
        {
            "path": "/configuration/loggingConfiguration/includeExecutionData",
            "expected": False,
            "actual": True,
        }
    ]
    assert found["compliant"] is False
    assert [v["rule"] for v in found["violations"]] == ["CPL-P021"]
    assert found["file"] == f"workflows/{repo.tenant}/order-fulfillment.yaml"
    assert report["summary"]["noncompliant"] == 1


def test_deleted_state_machine_is_missing(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, arn, _ = _machine(repo)
    sfn.delete_state_machine(stateMachineArn=arn)

    code, report = repo.drift()
    assert code == 5
    found = item(report, repo.sfn_resource)
    assert (found["status"], found["diff"], found["compliant"]) == ("missing", [], True)
    assert report["summary"]["missing"] == 1


def test_hand_made_tagged_state_machine_is_unmanaged(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, _, described = _machine(repo)
    name = f"{repo.tenant}-made-in-console"
    sfn.create_state_machine(
        name=name,
        definition=described["definition"],
        roleArn=described["roleArn"],
        tags=[
            {"key": "cpl:managed", "value": "true"},
            {"key": "cpl:workflow", "value": f"{repo.tenant}/made-in-console"},
            {"key": "cpl:environment", "value": repo.env},
        ],
    )

    code, report = repo.drift()
    assert code == 5
    found = item(report, name)
    assert found["status"] == "unmanaged"
    assert found["workflow"] == f"{repo.tenant}/made-in-console"
    assert found["compliant"] is False  # no spec, no policy vouches for it
    summary = report["summary"]
    assert (summary["managed"], summary["unmanaged"], summary["coverage"]) == (3, 1, 0.75)


def test_ignore_rules_suppress_a_field(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, arn, described = _machine(repo)
    definition = json.loads(described["definition"])
    definition["Comment"] = "tuned by ops"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
    (repo.root / "drift").mkdir()
    (repo.root / "drift" / "ignore.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: DriftIgnore\nignore:\n"
        "  stepfunctions:\n"
        f"    - path: /definition/Comment\n      workflows: ['{repo.tenant}/*']\n"
        "      reason: ops annotate state machines\n"
    )

    code, report = repo.drift()
    assert code == 0, report
    found = item(report, repo.sfn_resource)
    assert found["status"] == "in-sync"
    assert [(c["path"], c["actual"]) for c in found["ignored"]] == [
        ("/definition/Comment", "tuned by ops")
    ]

    (repo.root / "drift" / "ignore.yaml").write_text(
        "ignore:\n  stepfunctions:\n    - definition/Comment\n"
    )
    code, _ = repo.drift()
    assert code == 1  # a pattern that is not a JSON pointer is a configuration error


# -- Temporal ---------------------------------------------------------------------------------


def test_temporal_schedule_and_published_version_changed_by_hand(
    control_repo: MakeControlRepo, temporal_server: DevServer
) -> None:
    repo = control_repo()
    repo.deploy()

    async def edit(client: Any, namespace: str) -> None:
        handle = client.get_schedule_handle(repo.temporal_resource)

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = current.description.schedule
            schedule.spec = ScheduleSpec(
                cron_expressions=[f"0 3 * * * # {CRON_MARK}0 3 * * *"],
                time_zone_name=schedule.spec.time_zone_name,
            )
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
        key = record_key(f"{repo.tenant}/month-end-close")
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        record = json.loads(described.namespace_info.data[key])
        record["version"] = "9.9.9"
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=namespace,
                update_info=UpdateNamespaceInfo(data={key: json.dumps(record)}),
            )
        )

    _temporal(temporal_server, repo.namespace, edit)
    code, report = repo.drift()
    assert code == 5
    found = item(report, repo.temporal_resource)
    assert found["status"] == "modified"
    paths = {c["path"]: c for c in found["diff"]}
    assert set(paths) == {"/schedule/cron", "/spec/version"}
    assert paths["/schedule/cron"]["actual"] == "0 3 * * *"
    assert (
        paths["/spec/version"]
        == {
            "path": "/spec/version",
            "expected": "1.3.0",
            "actual": "9.9.9",
        }
        or paths["/spec/version"]["actual"] == "9.9.9"
    )
    assert found["compliant"] is True


def test_temporal_namespace_retention_changed_by_hand(
    control_repo: MakeControlRepo, temporal_server: DevServer
) -> None:
    repo = control_repo(namespace=unique("cpl-drift-ret-"))
    repo.deploy()

    async def shorten(client: Any, namespace: str) -> None:
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=namespace,
                config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=86400)),
            )
        )

    _temporal(temporal_server, repo.namespace, shorten)
    code, report = repo.drift()
    assert code == 5
    namespace = item(report, repo.namespace)  # the shared resource, not the workflow
    assert namespace["workflow"] == f"shared:namespace/{repo.namespace}"
    assert namespace["diff"] == [{"path": "/retention", "expected": 2592000, "actual": 86400}]
    assert item(report, repo.temporal_resource)["status"] == "in-sync"


def test_temporal_deleted_and_unmanaged_schedules(
    control_repo: MakeControlRepo, temporal_server: DevServer
) -> None:
    repo = control_repo()
    repo.deploy()
    environment = load_environment(repo.root, repo.env)
    from controlplane.engines.temporal.client import TemporalEngine

    with TemporalEngine(environment.target("temporal-local"), environment) as engine:
        engine.delete(f"{repo.namespace}/{repo.tenant}/month-end-close")
    handmade = f"{repo.tenant}-made-by-hand"

    async def create(client: Any, namespace: str) -> None:
        await client.create_schedule(
            handmade,
            Schedule(
                action=ScheduleActionStartWorkflow("Anything", id="x", task_queue="q"),
                spec=ScheduleSpec(cron_expressions=["0 5 * * *"]),
            ),
        )
        # listing schedules reads Temporal's visibility store, which lags a moment behind
        for _ in range(100):
            if handmade in [entry.id async for entry in await client.list_schedules()]:
                return
            await asyncio.sleep(0.1)

    _temporal(temporal_server, repo.namespace, create)
    code, report = repo.drift()
    assert code == 5
    assert item(report, repo.temporal_resource)["status"] == "missing"
    unmanaged = item(report, handmade)  # no cpl memo: found because it is in cpl's namespace
    assert (unmanaged["status"], unmanaged["engine"]) == ("unmanaged", "temporal")


# -- partial reports, sharding, outputs -------------------------------------------------------


def test_unreachable_engine_gives_a_partial_report_naming_it(
    control_repo: MakeControlRepo, moto_endpoint: str
) -> None:
    repo = control_repo()
    repo.deploy()
    repo.point_at(moto_endpoint, CLOSED_PORT)

    code, report = repo.drift()
    assert code == 1
    assert report["partial"] is True
    assert report["unreachable"] == ["sfn-local"]
    assert "sfn-local" in report["failures"][0]["message"]
    # the reachable engine is still reported
    assert item(report, repo.temporal_resource)["status"] == "in-sync"
    assert all(i["target"] != "sfn-local" for i in report["items"])
    # coverage is that of the target read, and says so
    summary = report["summary"]
    assert (summary["coverage"], summary["targets_read"], summary["unreachable"]) == (1.0, 1, 1)
    out = repo.root / "partial.txt"
    shard = ["--tenant", repo.tenant]
    assert run(["drift", "--env", repo.env, "--repo", str(repo.root), *shard, "-o", str(out)]) == 1
    assert "coverage 100.0% of what was read (1 target not read)," in out.read_text()


def test_coverage_is_unknown_when_no_target_can_be_read(
    control_repo: MakeControlRepo, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = control_repo()
    repo.deploy()
    repo.point_at(moto_endpoint, CLOSED_PORT)
    repo.point_at(temporal_server.address, CLOSED_PORT.removeprefix("http://"))
    metrics = repo.root / "drift.prom"

    code, report = repo.drift("--metrics", str(metrics))
    assert code == 1
    assert report["unreachable"] == ["sfn-local", "temporal-local"]
    summary = report["summary"]
    assert (summary["coverage"], summary["targets_read"], summary["managed"]) == (None, 0, 0)
    coverage = [
        v
        for (name, _), v in _prometheus(metrics.read_text()).items()
        if name == "cpl_drift_coverage_ratio"
    ]
    assert len(coverage) == 1 and math.isnan(coverage[0])  # not a claim of 1.0

    base = ["drift", "--env", repo.env, "--repo", str(repo.root), "--tenant", repo.tenant]
    text, markdown = repo.root / "drift.txt", repo.root / "drift.md"
    assert run([*base, "-o", str(text)]) == 1
    assert run([*base, "--format", "markdown", "-o", str(markdown)]) == 1
    summary_line = next(line for line in text.read_text().splitlines() if "coverage" in line)
    assert "coverage unknown (2 targets not read)," in summary_line
    assert "| unknown (2 targets not read) |" in markdown.read_text()


def test_tenant_shards_report_only_their_tenants(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    other = unique("t")
    repo.add_tenant(other)
    repo.deploy()
    repo.deploy(other)

    code, report = repo.drift(tenants=(other,))
    assert code == 0, report
    workflows = {i["workflow"] for i in report["items"]}
    assert {w.split("/")[0] for w in workflows if not w.startswith("shared:")} == {other}
    assert report["tenants"] == [other]
    code, report = repo.drift(tenants=(repo.tenant, other))
    assert code == 0 and len(report["items"]) == 4 + 1  # and the namespace they share, once


def test_metrics_and_report_formats(control_repo: MakeControlRepo) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, arn, _ = _machine(repo)
    sfn.delete_state_machine(stateMachineArn=arn)
    metrics = repo.root / "drift.prom"

    code, _ = repo.drift("--metrics", str(metrics))
    assert code == 5
    samples = _prometheus(metrics.read_text())
    env = repo.env
    assert (
        samples[
            (
                "cpl_drift_drifted_resources",
                (
                    ("engine", "stepfunctions"),
                    ("environment", env),
                    ("target", "sfn-local"),
                    ("tenants", repo.tenant),
                ),
            )
        ]
        == 1.0
    )
    assert (
        samples[
            (
                "cpl_drift_target_up",
                (
                    ("engine", "temporal"),
                    ("environment", env),
                    ("target", "temporal-local"),
                    ("tenants", repo.tenant),
                ),
            )
        ]
        == 1.0
    )
    coverage = [v for (name, _), v in samples.items() if name == "cpl_drift_coverage_ratio"]
    assert coverage == [1.0]
    assert any(name == "cpl_drift_duration_seconds" for name, _ in samples)

    base = ["drift", "--env", env, "--repo", str(repo.root), "--tenant", repo.tenant]
    for fmt in ("text", "markdown", "sarif"):
        out = repo.root / f"report.{fmt}"
        assert run([*base, "--format", fmt, "-o", str(out)]) == 5
        text = out.read_text()
        if fmt == "sarif":
            sarif = json.loads(text)
            results = sarif["runs"][0]["results"]
            assert [r["ruleId"] for r in results] == ["CPL-D002"]
            location = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]
            assert location["uri"] == f"workflows/{repo.tenant}/order-fulfillment.yaml"
        elif fmt == "markdown":
            assert "drift found" in text and repo.sfn_resource in text
        else:
            assert text.splitlines()[0].startswith(f"missing   {repo.tenant}/order-fulfillment")
            assert text.rstrip().endswith("drift")

    events = [
        json.loads(line)
        for line in (repo.root / ".cpl" / "audit" / "local.jsonl").read_text().splitlines()
    ]
    types = [e["type"] for e in events]
    assert "dev.cpl.drift.detected" in types and types[-1] == "dev.cpl.drift.completed"


def _prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A strict-enough parser of the text exposition format (HELP/TYPE before samples)."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter")
            typed.add(name)
            continue
        if line.startswith("#") or not line:
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        assert name in typed, f"sample before its TYPE: {line}"
        labels = tuple(
            sorted(
                (key, raw.strip('"'))
                for key, raw in (pair.split("=", 1) for pair in rest.rstrip("}").split(",") if pair)
            )
        )
        samples[(name, labels)] = float(value)
    return samples


def test_sync_reapplies_drifted_resources_and_never_deletes_unmanaged_ones(
    control_repo: MakeControlRepo,
) -> None:
    repo = control_repo()
    repo.deploy()
    sfn, arn, described = _machine(repo)
    definition = json.loads(described["definition"])
    definition["Comment"] = "hot-fixed in the console"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
    stray = f"{repo.tenant}-made-in-console"
    sfn.create_state_machine(
        name=stray,
        definition=described["definition"],
        roleArn=described["roleArn"],
        tags=[
            {"key": "cpl:managed", "value": "true"},
            {"key": "cpl:workflow", "value": f"{repo.tenant}/made-in-console"},
            {"key": "cpl:environment", "value": repo.env},
        ],
    )

    code, report = repo.drift("--sync", "--yes")
    assert code == 0, report  # the sync (apply) succeeded
    assert item(report, repo.sfn_resource)["status"] == "modified"  # as found before syncing

    code, report = repo.drift()
    assert item(report, repo.sfn_resource)["status"] == "in-sync"
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["Comment"]
        == f"{repo.tenant}/order-fulfillment 2.1.0 (rendered by cpl)"
    )
    assert item(report, stray)["status"] == "unmanaged"  # reported, still there
    assert code == 5
    environment = load_environment(repo.root, repo.env)
    audit = "".join(path.read_text() for path in log_paths(repo.root, environment))
    assert "dev.cpl.apply.succeeded" in audit
