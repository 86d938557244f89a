"""`spec.alerts` and `spec.slo` on Step Functions, on the moto server: apply creates one
CloudWatch alarm per alert and SLO objective on the state machine's metrics, with the spec's
thresholds in CloudWatch's units; a changed threshold is a planned update showing the field;
an alarm edited or deleted by hand is drift; removing an alert or the workflow deletes its
alarms. (moto stores alarms and never evaluates them: what is proven is what cpl deploys.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ControlRepo, write_repo

KEY = "retail/inventory-sync"
# the example's own: slo {completionTime: {p95: 5m}, successRate: 0.99} and this alert
ALERTS = "    - {metric: failureRate, above: 0.05, window: 1h}\n"
MORE = (
    "    - {metric: duration, above: 90s}\n"
    "    - {metric: failureRate, above: 2%, window: 90s}\n"
    "    - {metric: retries, above: 50, window: 5m}\n"
)


def _cloudwatch(repo: ControlRepo) -> Any:
    return boto3.client(
        "cloudwatch",
        endpoint_url=repo.moto,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )


def _alarms(repo: ControlRepo, machine: str) -> dict[str, dict[str, Any]]:
    found = _cloudwatch(repo).describe_alarms(AlarmNamePrefix=f"cpl-{machine}-")["MetricAlarms"]
    return {alarm["AlarmName"]: alarm for alarm in found}


@pytest.fixture
def repo(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> ControlRepo:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [KEY])
    repo.edit(KEY, ALERTS, ALERTS + MORE)
    return repo


def test_alerts_and_slos_are_alarms_planned_applied_drifted_and_deleted(
    repo: ControlRepo,
) -> None:
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    machine = f"{repo.tenants['retail']}-inventory-sync"
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}"
    prefix = f"cpl-{machine}-"
    alarms = _alarms(repo, machine)
    assert sorted(alarms) == [
        f"{prefix}alert0-failureRate",
        f"{prefix}alert1-duration",
        f"{prefix}alert2-failureRate",
        f"{prefix}slo-completionTime-p95",
        f"{prefix}slo-successRate",
    ]  # no alarm for retries: Step Functions has no such metric
    dimension = [{"Name": "StateMachineArn", "Value": arn}]

    rate = alarms[f"{prefix}alert0-failureRate"]
    assert (rate["Threshold"], rate["ComparisonOperator"]) == (0.05, "GreaterThanThreshold")
    queries = {query["Id"]: query for query in rate["Metrics"]}
    assert queries["rate"]["Expression"] == "(FILL(failed, 0) + FILL(timedout, 0)) / started"
    for query_id, metric in (("failed", "ExecutionsFailed"), ("started", "ExecutionsStarted")):
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": "AWS/States",
            "MetricName": metric,
            "Dimensions": dimension,
        }
        assert (stat["Period"], stat["Stat"]) == (3600, "Sum")  # window 1h

    duration = alarms[f"{prefix}alert1-duration"]
    assert duration["MetricName"] == "ExecutionTime"
    assert duration["Dimensions"] == dimension
    assert (duration["Statistic"], duration["Threshold"]) == ("Maximum", 90000.0)  # 90s in ms
    assert duration["Period"] == 300  # no window: five minutes
    assert alarms[f"{prefix}alert2-failureRate"]["Threshold"] == 0.02  # 2%
    # a 90s window is no CloudWatch period: the next one, two minutes
    assert alarms[f"{prefix}alert2-failureRate"]["Metrics"][0]["MetricStat"]["Period"] == 120

    p95 = alarms[f"{prefix}slo-completionTime-p95"]
    assert (p95["ExtendedStatistic"], p95["Threshold"], p95["Period"]) == ("p95", 300000.0, 86400)
    success = alarms[f"{prefix}slo-successRate"]
    assert (success["Threshold"], success["ComparisonOperator"]) == (0.99, "LessThanThreshold")
    tags = _cloudwatch(repo).list_tags_for_resource(ResourceARN=success["AlarmArn"])["Tags"]
    assert {"Key": "cpl:managed", "Value": "true"} in tags
    assert {"Key": "cpl:workflow", "Value": repo.workflow(KEY)} in tags

    # compat and check say what the engine got
    compat = repo.cpl("compat", "--engine", "stepfunctions", "--format", "json")
    assert "alarm" in compat.out and "no metric of retried attempts" in compat.out

    assert repo.cpl("plan", "--env", "local").code == 0  # converged

    # A changed threshold is an update of the alarm, field by field.
    repo.edit(KEY, "{metric: duration, above: 90s}", "{metric: duration, above: 2m}")
    repo.edit(KEY, "version: 2.0.0", "version: 2.1.0")  # a changed workflow needs a new version
    planned = repo.cpl("plan", "--env", "local", "--format", "json")
    assert planned.code == 4, planned.out + planned.err
    (change,) = [c for c in planned.json()["changes"] if c.get("resource") == machine]
    assert change["action"] == "update"
    assert {
        "path": f"/alarms/{prefix}alert1-duration/Threshold",
        "before": 90000.0,
        "after": 120000.0,
    } in change["diff"]
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    assert _alarms(repo, machine)[f"{prefix}alert1-duration"]["Threshold"] == 120000.0

    # By hand: a threshold changed is drift at the field; a deleted alarm is missing.
    cloudwatch = _cloudwatch(repo)
    edited = {
        key: p95[key]
        for key in (
            "AlarmName",
            "Namespace",
            "MetricName",
            "Dimensions",
            "ExtendedStatistic",
            "Period",
            "EvaluationPeriods",
            "ComparisonOperator",
            "TreatMissingData",
        )
    }
    cloudwatch.put_metric_alarm(**edited, Threshold=600000.0)
    cloudwatch.delete_alarms(AlarmNames=[f"{prefix}slo-successRate"])
    drift = repo.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 5, drift.out + drift.err
    (found,) = [i for i in drift.json()["items"] if i.get("resource") == machine]
    assert found["status"] == "modified"
    assert {
        "path": f"/alarms/{prefix}slo-completionTime-p95/Threshold",
        "expected": 300000.0,
        "actual": 600000.0,
    } in found["diff"]
    (missing,) = [d for d in found["diff"] if d["path"] == f"/alarms/{prefix}slo-successRate"]
    assert missing["actual"] is None and missing["expected"]["Threshold"] == 0.99

    # Apply restores both; removing alerts from the spec deletes their alarms.
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    restored = _alarms(repo, machine)
    assert restored[f"{prefix}slo-completionTime-p95"]["Threshold"] == 300000.0
    assert restored[f"{prefix}slo-successRate"]["Threshold"] == 0.99
    repo.edit(KEY, "    - {metric: duration, above: 2m}\n", "")
    repo.edit(KEY, "version: 2.1.0", "version: 2.2.0")
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    assert f"{prefix}alert1-duration" not in _alarms(repo, machine)
    assert repo.cpl("plan", "--env", "local").code == 0


def test_deleting_the_workflow_deletes_its_alarms(repo: ControlRepo) -> None:
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    machine = f"{repo.tenants['retail']}-inventory-sync"
    assert len(_alarms(repo, machine)) == 5
    repo.file(KEY).unlink()
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert _alarms(repo, machine) == {}
