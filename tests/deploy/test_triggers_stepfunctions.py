"""`spec.triggers` on Step Functions, on the moto server: apply creates one EventBridge rule
per trigger targeting the state machine, the pattern matches the CloudEvent as cpl carries
it and the input transformer maps it, drift sees a rule edited by hand, and removing the
trigger deletes the rule.

moto's EventBridge does not deliver events to Step Functions targets (`put_events` fails on a
matching rule with one; it delivers to SQS, CloudWatch Logs and event buses only), and it does
not implement `test_event_pattern`. So matching and the mapped input are proven by
`put_events` to a probe rule (on a bus of its own) with the rule's own pattern and an SQS
target with its own input transformer, and the run with that input is started by hand. moto
also inserts a string value into the template unquoted where EventBridge quotes it, so the
mapped values here are an object and a number (the template is the same for strings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ControlRepo, write_repo

TRIGGERS = """spec:
  triggers:
    - name: stock-changed
      source: com.acme.warehouse
      type: com.acme.stock.changed
      filters: {channel: [web, store], $.data.sku: {prefix: "SKU-"}}
      input: {order: $.data.order, count: $.data.count}
"""
KEY = "retail/inventory-sync"


def _client(repo: ControlRepo, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=repo.moto,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )


def _event(channel: str = "web", sku: str = "SKU-42") -> dict[str, Any]:
    """A CloudEvent as cpl carries it on EventBridge: source, type, and the event as detail."""
    cloudevent = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "com.acme.warehouse",
        "type": "com.acme.stock.changed",
        "subject": "wh-berlin",
        "channel": channel,
        "data": {"sku": sku, "count": 3, "order": {"id": "o-1", "lines": [1, 2]}},
    }
    return {
        "Source": cloudevent["source"],
        "DetailType": cloudevent["type"],
        "Detail": json.dumps(cloudevent),
    }


@pytest.fixture
def repo(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> ControlRepo:
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [KEY])
    repo.edit(KEY, "spec:\n", TRIGGERS)
    return repo


def test_a_trigger_is_an_eventbridge_rule_applied_drifted_and_deleted(repo: ControlRepo) -> None:
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    events, sfn, sqs = _client(repo, "events"), _client(repo, "stepfunctions"), _client(repo, "sqs")
    machine = f"{repo.tenants['retail']}-inventory-sync"
    rule = f"{machine}-stock-changed"
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}"

    pattern = json.loads(events.describe_rule(Name=rule)["EventPattern"])
    assert pattern == {
        "source": ["com.acme.warehouse"],
        "detail-type": ["com.acme.stock.changed"],
        "detail": {"channel": ["web", "store"], "data": {"sku": [{"prefix": "SKU-"}]}},
    }
    (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert target["Arn"] == arn
    assert target["RoleArn"] == "arn:aws:iam::123456789012:role/cpl-sfn"
    transformer = target["InputTransformer"]
    assert transformer == {
        "InputPathsMap": {"count": "$.detail.data.count", "order": "$.detail.data.order"},
        "InputTemplate": '{"count": <count>, "order": <order>}',
    }

    # Delivery: a probe rule with the rule's pattern and an SQS target with its transformer
    # (moto fails put_events on a rule with a Step Functions target; see the docstring).
    queue = sqs.create_queue(QueueName=f"{machine}-probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    probe = f"{machine}-probe"  # on a bus of its own: the default bus has cpl's rule
    events.create_event_bus(Name=probe)
    events.put_rule(
        Name=probe, EventBusName=probe, EventPattern=events.describe_rule(Name=rule)["EventPattern"]
    )
    events.put_targets(
        Rule=probe,
        EventBusName=probe,
        Targets=[{"Id": "probe", "Arn": queue_arn, "InputTransformer": transformer}],
    )
    sent = [
        {**entry, "EventBusName": probe}
        for entry in (_event(channel="phone"), _event(sku="X-1"), _event())
    ]
    assert events.put_events(Entries=sent)["FailedEntryCount"] == 0
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    mapped = {"count": 3, "order": {"id": "o-1", "lines": [1, 2]}}
    assert bodies == [mapped]  # another channel, or a SKU without the prefix, does not match
    events.remove_targets(Rule=probe, EventBusName=probe, Ids=["probe"])
    events.delete_rule(Name=probe, EventBusName=probe)
    events.delete_event_bus(Name=probe)

    # The mapped input starts a run of the state machine that succeeds.
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(mapped))
    assert sfn.describe_execution(executionArn=execution["executionArn"])["input"] == json.dumps(
        mapped
    )

    assert repo.cpl("plan", "--env", "local").code == 0  # converged: nothing to change

    # A hand-edited pattern is drift at the pattern.
    edited = {**pattern, "detail-type": ["com.acme.stock.anything"]}
    events.put_rule(Name=rule, EventPattern=json.dumps(edited))
    drift = repo.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 5
    (found,) = [i for i in drift.json()["items"] if i.get("resource") == machine]
    assert {
        "path": "/triggers/0/EventPattern/detail-type/0",
        "expected": "com.acme.stock.changed",
        "actual": "com.acme.stock.anything",
    } in found["diff"]

    # Applying restores the rule; removing the trigger from the spec deletes it.
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    assert json.loads(events.describe_rule(Name=rule)["EventPattern"]) == pattern
    repo.edit(KEY, TRIGGERS, "spec:\n")
    repo.edit(KEY, "version: 2.0.0", "version: 2.0.1")  # a changed workflow needs a new version
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    with pytest.raises(ClientError, match="ResourceNotFound"):
        events.describe_rule(Name=rule)
    assert repo.cpl("plan", "--env", "local").code == 0


def test_deleting_the_workflow_deletes_its_rules(repo: ControlRepo) -> None:
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    events = _client(repo, "events")
    rule = f"{repo.tenants['retail']}-inventory-sync-stock-changed"
    assert events.describe_rule(Name=rule)["State"] == "ENABLED"
    repo.file(KEY).unlink()
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    with pytest.raises(ClientError, match="ResourceNotFound"):
        events.describe_rule(Name=rule)
