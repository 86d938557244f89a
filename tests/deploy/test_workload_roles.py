"""Per-workflow IAM roles on Step Functions (stepfunctions/iam.py, roles.py), on the moto
server: a target without `roleArn` gets one role per workflow, applied with the state
machine (which runs as it), drifted (a policy attached by hand is drift) and deleted with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ControlRepo, write_repo

KEY = "retail/inventory-sync"
ACCOUNT = "123456789012"


def _client(repo: ControlRepo, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=repo.moto,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )


@pytest.fixture
def repo(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> ControlRepo:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [KEY])
    environment = repo.root / "environments/local.yaml"
    text = environment.read_text()
    own = f"roleArn: arn:aws:iam::{ACCOUNT}:role/cpl-sfn"
    assert own in text
    environment.write_text(text.replace(own, f'account: "{ACCOUNT}"', 1))
    return repo


def _drift_item(repo: ControlRepo) -> dict[str, Any]:
    """This test's state machine in `cpl drift` (the session's moto has other tests' too)."""
    drift = repo.cpl("drift", "--env", "local", "--format", "json")
    (item,) = [i for i in drift.json()["items"] if i["workflow"] == repo.workflow(KEY)]
    return item


def test_a_target_without_role_gets_a_role_per_workflow(repo: ControlRepo) -> None:
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    iam, sfn = _client(repo, "iam"), _client(repo, "stepfunctions")
    machine = f"{repo.tenants['retail']}-inventory-sync"
    role_name = f"cpl-{machine}"
    role = iam.get_role(RoleName=role_name)["Role"]
    assert role["Path"] == "/cpl/"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/cpl/{role_name}"
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    # scheduled: EventBridge Scheduler assumes it too, to start the machine
    assert trust["Statement"][0]["Principal"]["Service"] == [
        "scheduler.amazonaws.com",
        "states.amazonaws.com",
    ]
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{machine}"
    assert sfn.describe_state_machine(stateMachineArn=arn)["roleArn"] == role["Arn"]

    policy = iam.get_role_policy(RoleName=role_name, PolicyName="cpl-bindings")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    grants = {
        (action, resource)
        for statement in policy["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    assert ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:retail-batch-dlq") in grants
    assert ("states:StartExecution", arn) in grants
    lambdas = {r for a, r in grants if a == "lambda:InvokeFunction"}
    assert lambdas and all(":function:inventory-" in r for r in lambdas)
    wildcard = {a for a, r in grants if r == "*"}
    assert wildcard and all(a.startswith("logs:") for a in wildcard)  # log delivery only

    plan = repo.cpl("plan", "--env", "local", "--format", "json")
    assert [c["action"] for c in plan.json()["changes"]] == ["noop"], plan.out
    clean = _drift_item(repo)
    assert (clean["status"], clean["compliant"]) == ("in-sync", True), clean

    # a managed policy attached by hand grants more than the bindings: drift, non-compliant
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    extra = iam.create_policy(PolicyName=f"{machine}-all", PolicyDocument=json.dumps(everything))
    iam.attach_role_policy(RoleName=role_name, PolicyArn=extra["Policy"]["Arn"])
    drifted = _drift_item(repo)
    assert drifted["status"] == "modified"
    assert [c["path"] for c in drifted["diff"]] == ["/role/AttachedPolicies/0"]
    assert drifted["compliant"] is False
    assert any("has managed policy" in v["message"] for v in drifted["violations"])
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []

    # removing the workflow deletes its role with the machine
    repo.file(KEY).unlink()
    removed = repo.cpl("apply", "--env", "local", "--yes")
    assert removed.code == 0, removed.out + removed.err
    assert role_name not in {r["RoleName"] for r in iam.list_roles(PathPrefix="/cpl/")["Roles"]}


def test_a_targets_own_role_granting_more_is_non_compliant_at_drift(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [KEY])
    iam = _client(repo, "iam")
    shared = f"shared-{repo.namespace}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName=shared, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    environment = repo.root / "environments/local.yaml"
    own = f"roleArn: arn:aws:iam::{ACCOUNT}:role/cpl-sfn"
    environment.write_text(environment.read_text().replace(own, f"roleArn: {arn}", 1))
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0

    def item() -> dict[str, Any]:
        found = _drift_item(repo)
        assert found["status"] == "in-sync", found  # the role is not cpl's to change
        return found

    assert item()["compliant"] is True  # no policy yet: grants nothing beyond the needs
    broad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
        ],
    }
    iam.put_role_policy(RoleName=shared, PolicyName="broad", PolicyDocument=json.dumps(broad))
    found = item()
    assert found["compliant"] is False
    (violation,) = [v for v in found["violations"] if v["rule"] == "CPL-P021"]
    assert f"the role {arn} of target 'sfn-local' grants more than" in violation["message"]
    assert "lambda:InvokeFunction on *, sqs:SendMessage on *" in violation["message"]


def test_a_target_without_role_and_account_is_refused_before_any_call(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [KEY])
    environment = repo.root / "environments/local.yaml"
    own = f"      roleArn: arn:aws:iam::{ACCOUNT}:role/cpl-sfn\n"
    environment.write_text(environment.read_text().replace(own, "", 1))
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 1
    assert "target 'sfn-local' has no roleArn and no account" in applied.out + applied.err
    machine = f"{repo.tenants['retail']}-inventory-sync"
    names = {
        m["name"] for m in _client(repo, "stepfunctions").list_state_machines()["stateMachines"]
    }
    assert machine not in names
