"""The rendered Step Functions role policy grants what the workflow uses and nothing else,
shown on a moto server that enforces IAM (a server of its own, started once per session:
`/moto-api/reset-auth` with 0 makes moto check every later request against the caller's
IAM policies, the switch `INITIAL_NO_AUTH_ACTION_COUNT` sets at start).

A user carrying the generated policy document stands in for the role (moto does not run
state machines as their role).

What moto can enforce: it authorizes SQS requests against the queue's ARN, so the
resource scoping of `sqs:SendMessage` (the dead-letter queue) is proven here, and it
authorizes every service by action, so actions the policy does not grant (receiving from or
deleting the bound queue, creating tables, deleting functions) are denied. What it cannot:
for Lambda and DynamoDB moto authorizes against the resource `*`, not the function or table
ARN, so any policy scoped to ARNs (ours included) is denied `lambda:InvokeFunction` there;
the Lambda and DynamoDB ARNs of the policy are checked by the render assertions below and
by CPL-P021 (no wildcard beyond the bindings), not by moto.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from controlplane.engines import render
from controlplane.engines.stepfunctions.emulator import MotoServer, start_moto_server
from controlplane.spec.load import load_environment, load_workflows
from tests.conftest import ROOT

ACCOUNT = "123456789012"
KEY = "retail/inventory-sync"


@pytest.fixture(scope="session")
def enforcing_moto() -> Iterator[MotoServer]:
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


def _policy() -> dict[str, Any]:
    """The role policy cpl renders for the example workflow on a target without roleArn."""
    environment = load_environment(ROOT, "local")
    target = environment.target("sfn-local").model_copy(
        update={"role_arn": None, "account": ACCOUNT}
    )
    (workflow,) = [w.model for w in load_workflows(ROOT).workflows if w.model.key == KEY]
    role = render(workflow, target, environment).document["role"]
    assert role["managed"] is True
    policy: dict[str, Any] = role["Policies"]["cpl-bindings"]
    return policy


def _client(url: str, service: str, keys: dict[str, str]) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **keys)


def _denied(call: Any) -> bool:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "403")
    return False


def test_the_rendered_policy_is_enforced_on_the_bound_queue_only(
    enforcing_moto: MotoServer,
) -> None:
    policy = _policy()
    url = enforcing_moto.url
    setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    sqs, iam = _client(url, "sqs", setup), _client(url, "iam", setup)
    bound = sqs.create_queue(QueueName="retail-batch-dlq")["QueueUrl"]
    other = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    iam.create_user(UserName="machine")
    iam.put_user_policy(
        UserName="machine", PolicyName="cpl-bindings", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="machine")["AccessKey"]
    switch = urllib.request.Request(
        f"{url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "application/octet-stream"},  # a form body would be parsed
    )
    with urllib.request.urlopen(switch, timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "ok"

    keys = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    as_machine = _client(url, "sqs", keys)
    as_machine.send_message(QueueUrl=bound, MessageBody="{}")  # the dead-letter queue: allowed
    assert _denied(lambda: as_machine.send_message(QueueUrl=other, MessageBody="{}"))
    assert _denied(lambda: as_machine.receive_message(QueueUrl=bound))
    assert _denied(lambda: as_machine.delete_queue(QueueUrl=bound))
    dynamodb = _client(url, "dynamodb", keys)
    assert _denied(
        lambda: dynamodb.create_table(
            TableName="anything",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    )
    functions = _client(url, "lambda", keys)
    assert _denied(lambda: functions.delete_function(FunctionName="inventory-fetch-stock"))


def test_the_rendered_policy_names_exact_arns() -> None:
    """What moto cannot enforce (see the module docstring), read off the document."""
    grants = {
        (action, resource)
        for statement in _policy()["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    functions = {r for a, r in grants if a == "lambda:InvokeFunction"}
    assert functions == {
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:inventory-{name}"
        for name in ("list-changed-skus", "fetch-stock", "update-stock", "publish-summary")
    }
    assert ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:retail-batch-dlq") in grants
    assert all("*" not in action for action, _ in grants)
    unscoped = {action for action, resource in grants if resource == "*"}
    assert unscoped and all(a.startswith(("logs:", "xray:")) for a in unscoped)
