"""The state machine's IAM identity: exactly the grants its rendered definition uses
(docs/security.md, "Workload identities").

What a state machine may call is read off the artifact, not the spec: the Lambda functions
its tasks invoke, the SQS queue of its dead letters, the DynamoDB circuit table of its
breakers, the default event bus its approvals and timeouts put events on, the KMS key of its
encryption, its log group and its tracing. Each becomes one statement with the exact actions
on the exact ARNs. Two kinds of grants have no resource-level permissions in AWS, so their
statements name `*`: CloudWatch Logs log delivery (how Step Functions writes to a log group)
and X-Ray (`UNSCOPED_ACTIONS`). A service integration cpl does not know gets
`<service>:<Action>` on `*`, which CPL-P021 reports.

A target without `roleArn` gets a role per workflow (`document["role"]`, managed: planned,
applied, drifted and deleted with the state machine, like its EventBridge rules). A target
with `roleArn` keeps its role; the artifact then carries what the bindings need
(`role.Needs`), and `cpl drift` reads that role's policies (`role.Granted`) so that the live
compliance pass of CPL-P021 reports every grant beyond the needs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

POLICY_NAME = "cpl-bindings"
"""The name of the managed role's one inline policy."""
ROLE_PATH = "/cpl/"
"""IAM path of managed roles: `cpl drift` knows a managed role by it."""
_ROLE_NAME_LIMIT = 64

LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
TRACING_ACTIONS = (
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
)
UNSCOPED_ACTIONS = frozenset(LOG_DELIVERY_ACTIONS + TRACING_ACTIONS)
"""Actions AWS authorizes on `*` only: the one place a rendered policy names `*`."""

_SERVICE = re.compile(r"^arn:aws[a-z-]*:states:::(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z]+)")
_LAMBDA = re.compile(r"^arn:aws[a-z-]*:lambda:")
_SQS_HOST = re.compile(r"^sqs\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")


def role_name(resource: str) -> str:
    """`cpl-<tenant>-<name>`; past IAM's 64 characters, cut and hashed."""
    name = f"cpl-{resource}"
    if len(name) <= _ROLE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _ROLE_NAME_LIMIT - 9]}-{digest}"


def role_arn(account: str, resource: str) -> str:
    return f"arn:aws:iam::{account}:role{ROLE_PATH}{role_name(resource)}"


def render_role(
    document: dict[str, Any],
    *,
    resource: str,
    region: str,
    account: str,
    machine_arn: str,
    managed: bool,
    provided: str | None,
) -> dict[str, Any]:
    """`document["role"]` of a rendered state machine artifact (without the role yet)."""
    needs = policy_document(document, region=region, account=account, machine_arn=machine_arn)
    if not managed:
        return {"managed": False, "Arn": provided, "Needs": needs}
    return {
        "managed": True,
        "RoleName": role_name(resource),
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": trust_document(document),
        "Policies": {POLICY_NAME: needs},
        "AttachedPolicies": [],
    }


def with_role(document: dict[str, Any], role: dict[str, Any], arn: str | None) -> None:
    """Set `document["role"]` and make the machine, its schedule and its rules run as `arn`."""
    document["role"] = role
    document["configuration"]["roleArn"] = arn
    if document.get("schedule"):
        document["schedule"]["Target"]["RoleArn"] = arn
    for rule in document.get("triggers", []):
        for target in rule["Targets"]:
            target["RoleArn"] = arn


def trust_document(document: dict[str, Any]) -> dict[str, Any]:
    """Who may assume the role: Step Functions, and the schedulers that start the machine."""
    services = ["states.amazonaws.com"]
    if document.get("schedule"):
        services.append("scheduler.amazonaws.com")
    if document.get("triggers"):
        services.append("events.amazonaws.com")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": sorted(services)},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def policy_document(
    document: dict[str, Any], *, region: str, account: str, machine_arn: str
) -> dict[str, Any]:
    """The least-privilege policy of a rendered state machine (statements sorted, merged by
    action set so the document is deterministic)."""
    grants: dict[str, set[str]] = {}
    for action, resource in _grants(document, region, account, machine_arn):
        grants.setdefault(action, set()).add(resource)
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for action, resources in grants.items():
        by_resources.setdefault(tuple(sorted(resources)), []).append(action)
    statements = [
        {
            "Sid": _sid(sorted(actions)),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": list(resources),
        }
        for resources, actions in by_resources.items()
    ]
    statements.sort(key=lambda s: (s["Sid"], s["Resource"]))
    return {"Version": "2012-10-17", "Statement": statements}


def _sid(actions: list[str]) -> str:
    services = sorted({a.split(":", 1)[0] for a in actions})
    return "".join(s.title().replace("-", "") for s in services) + "Access"


def _grants(
    document: dict[str, Any], region: str, account: str, machine_arn: str
) -> Iterator[tuple[str, str]]:
    for state in _states(document.get("definition", {}).get("States", {})):
        yield from _task_grants(state, region, account)
    config = document.get("configuration", {})
    logging = config.get("loggingConfiguration") or {}
    if logging.get("destinations"):
        for action in LOG_DELIVERY_ACTIONS:
            yield action, "*"
    if (config.get("tracingConfiguration") or {}).get("enabled"):
        for action in TRACING_ACTIONS:
            yield action, "*"
    encryption = config.get("encryptionConfiguration") or {}
    if encryption.get("kmsKeyId"):
        key = _kms_arn(str(encryption["kmsKeyId"]), region, account)
        yield "kms:Decrypt", key
        yield "kms:GenerateDataKey", key
    if document.get("schedule") or document.get("triggers"):
        yield "states:StartExecution", machine_arn


def _task_grants(state: dict[str, Any], region: str, account: str) -> Iterator[tuple[str, str]]:
    resource = str(state.get("Resource", ""))
    parameters = state.get("Parameters") or {}
    if _LAMBDA.match(resource):
        yield "lambda:InvokeFunction", resource
        return
    found = _SERVICE.match(resource)
    if found is None:
        return  # an activity: its workers call Step Functions, the machine calls nobody
    service, action = found.group("service"), found.group("action")
    if service == "lambda" and action == "invoke":
        yield "lambda:InvokeFunction", str(parameters.get("FunctionName", "*"))
    elif service == "sqs" and action == "sendMessage":
        yield "sqs:SendMessage", _queue_arn(str(parameters.get("QueueUrl", "")), region, account)
    elif service == "dynamodb":
        table = str(parameters.get("TableName", "*"))
        yield f"dynamodb:{_title(action)}", f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    elif service == "events" and action == "putEvents":
        for entry in parameters.get("Entries") or [{}]:
            bus = str(entry.get("EventBusName") or "default")
            arn = (
                bus
                if bus.startswith("arn:")
                else f"arn:aws:events:{region}:{account}:event-bus/{bus}"
            )
            yield "events:PutEvents", arn
    else:
        yield f"{service}:{_title(action)}", "*"


def _states(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        if not isinstance(state, dict):
            continue
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch.get("States", {}))
        for key in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(key), dict):
                yield from _states(state[key].get("States", {}))


def _title(action: str) -> str:
    return action[:1].upper() + action[1:]


def _queue_arn(url: str, region: str, account: str) -> str:
    """`https://sqs.<region>.amazonaws.com/<account>/<name>` (or an emulator's URL) as ARN."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) < 2:
        return "*"
    host = _SQS_HOST.match(parsed.hostname or "")
    return f"arn:aws:sqs:{host.group('region') if host else region}:{parts[-2]}:{parts[-1]}"


def _kms_arn(key: str, region: str, account: str) -> str:
    if key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{region}:{account}:{key if key.startswith('alias/') else 'key/' + key}"
