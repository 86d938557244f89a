"""`cpl import --unmanaged` on the Step Functions emulator: a state machine drift reports as
unmanaged becomes a spec and a state record, without being recreated; the next plan is empty
and drift sees it managed and in sync. What cpl cannot render identically stays unmanaged."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.importing.conftest import ROLE, make_control_repo
from tests.importing.test_cli import cpl

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function"


def _hand_written(tenant: str) -> dict[str, Any]:
    """A definition written in the style cpl renders (guarded comparisons, explicit
    ResultPath), as a team would after reading cpl's output."""
    return {
        "Comment": f"{tenant}/orders 1.2.0 (rendered by cpl)",
        "StartAt": "validate",
        "States": {
            "validate": {
                "Type": "Task",
                "Resource": f"{LAMBDA}:validate-order",
                "ResultPath": "$.validation",
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "MaxAttempts": 2,
                        "IntervalSeconds": 1,
                        "BackoffRate": 2.0,
                    }
                ],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "rejected"}
                ],
                "Next": "route",
            },
            "route": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.total", "IsPresent": True},
                            {"Variable": "$.total", "IsNumeric": True},
                            {"Variable": "$.total", "NumericGreaterThan": 100},
                        ],
                        "Next": "review",
                    }
                ],
                "Default": "ship",
            },
            "review": {
                "Type": "Task",
                "Resource": f"{LAMBDA}:review-order",
                "ResultPath": "$",
                "Next": "ship",
            },
            "ship": {
                "Type": "Task",
                "Resource": f"{LAMBDA}:ship-order",
                "ResultPath": "$.shipment",
                "End": True,
            },
            "rejected": {"Type": "Fail", "Error": "OrderRejected"},
        },
    }


def _legacy() -> dict[str, Any]:
    return {
        "StartAt": "Export",
        "States": {
            "Export": {
                "Type": "Task",
                "Resource": f"{LAMBDA}:export",
                "ResultSelector": {"id.$": "$.id"},
                "End": True,
            },
        },
    }


def _create(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    arn: str = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=ROLE,
        tags=[
            {"key": "cpl:managed", "value": "true"},
            {"key": "cpl:environment", "value": "dev"},
            {"key": "cpl:owner", "value": "team-orders"},
        ],
    )["stateMachineArn"]
    return arn


def _drift(capsys: pytest.CaptureFixture[str], repo: Path, tenant: str) -> dict[str, Any]:
    code, out, err = cpl(
        capsys, "drift", "--env", "dev", "--tenant", tenant, "--repo", str(repo), "--format", "json"
    )
    assert code in (0, 5), err
    report: dict[str, Any] = json.loads(out)
    return {item["resource"]: item for item in report["items"]}


def test_unmanaged_state_machines_are_adopted_in_place(
    tmp_path: Path, moto_endpoint: str, sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    repo = make_control_repo(tmp_path / "repo", moto_endpoint)
    adopted_arn = _create(sfn, f"{tenant}-orders", _hand_written(tenant))
    _create(sfn, f"{tenant}-legacy-export", _legacy())
    created = sfn.describe_state_machine(stateMachineArn=adopted_arn)["creationDate"]

    before = _drift(capsys, repo, tenant)
    assert before[f"{tenant}-orders"]["status"] == "unmanaged"
    assert before[f"{tenant}-legacy-export"]["status"] == "unmanaged"

    code, out, err = cpl(
        capsys,
        "import",
        "--unmanaged",
        "--env",
        "dev",
        "--tenant",
        tenant,
        "--repo",
        str(repo),
        "--format",
        "json",
    )
    assert code == 1, err  # one of the two could not be adopted
    result = {r["resource"]: r for r in json.loads(out)["resources"]}
    assert result[f"{tenant}-orders"]["adopted"] is True
    assert result[f"{tenant}-orders"]["workflow"] == f"{tenant}/orders"
    legacy = result[f"{tenant}-legacy-export"]
    assert legacy["adopted"] is False
    assert "/States/Export/ResultSelector" in legacy["reason"]
    spec = (repo / "workflows" / tenant / "orders.yaml").read_text("utf-8")
    assert "version: 1.2.0" in spec and "owner: team-orders" in spec
    assert not (repo / "workflows" / tenant / "legacy-export.yaml").exists()

    code, out, err = cpl(capsys, "plan", "--env", "dev", "--repo", str(repo))
    assert code == 0, out + err
    after = _drift(capsys, repo, tenant)
    orders = after[f"{tenant}-orders"]
    assert (orders["status"], orders["workflow"]) == ("in-sync", f"{tenant}/orders")
    assert after[f"{tenant}-legacy-export"]["status"] == "unmanaged"
    # the same state machine, not a new one
    described = sfn.describe_state_machine(stateMachineArn=adopted_arn)
    assert described["creationDate"] == created
    assert json.loads(described["definition"]) == _hand_written(tenant)
    state = json.loads((repo / ".cpl" / "state" / "dev" / "state.json").read_text("utf-8"))
    records = [r for r in state["resources"] if r["workflow"] == f"{tenant}/orders"]
    assert [r["resourceId"] for r in records] == [adopted_arn]


def test_dry_run_adopts_nothing(
    tmp_path: Path, moto_endpoint: str, sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    repo = make_control_repo(tmp_path / "repo", moto_endpoint)
    _create(sfn, f"{tenant}-orders", _hand_written(tenant))
    code, out, err = cpl(
        capsys,
        "import",
        "--unmanaged",
        "--dry-run",
        "--env",
        "dev",
        "--tenant",
        tenant,
        "--repo",
        str(repo),
    )
    assert code == 0, err
    assert f"would adopt {tenant}-orders (sfn) as {tenant}/orders" in out
    assert not (repo / "workflows" / tenant).exists()
    assert _drift(capsys, repo, tenant)[f"{tenant}-orders"]["status"] == "unmanaged"


def test_live_import_reads_the_state_machine_from_the_target(
    tmp_path: Path, moto_endpoint: str, sfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    repo = make_control_repo(tmp_path / "repo", moto_endpoint)
    arn = _create(sfn, f"{tenant}-legacy-export", _legacy())
    code, out, err = cpl(
        capsys,
        "import",
        "--live",
        arn,
        "--env",
        "dev",
        "--tenant",
        tenant,
        "--name",
        "export",
        "--repo",
        str(repo),
        "--format",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["fidelity"]["source"] == arn
    assert [f["source"] for f in result["fidelity"]["findings"] if f["fidelity"] != "exact"] == [
        "/States/Export/ResultSelector"
    ]
    assert (repo / "workflows" / tenant / "export.yaml").is_file()
    code, _, err = cpl(
        capsys,
        "import",
        "--live",
        "no-such-machine",
        "--env",
        "dev",
        "--tenant",
        tenant,
        "--repo",
        str(repo),
    )
    assert code == 1 and "cannot read 'no-such-machine'" in err
