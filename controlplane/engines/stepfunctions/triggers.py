"""`spec.triggers` on Step Functions: one EventBridge rule per trigger on the default event
bus, targeting the workflow's state machine (docs/triggers.md).

A CloudEvent travels on EventBridge with its `source` as the event's `source`, its `type` as
`detail-type` and the whole structured CloudEvent (attributes and `data`) as `detail`. So
the event pattern is `{source, detail-type, detail: {<attribute>: ..., data: {...}}}`, and a
trigger path `$.x` is `$.detail.x` for the input transformer.

The rules are part of the state machine's artifact (`document["triggers"]`): planned,
applied, drifted and deleted with it. The live rules are the ones whose target is the state
machine (`list_rule_names_by_target`), so a rule removed from the spec is deleted and a
hand-made rule on the machine shows as drift.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from controlplane.engines.live import ResourceError
from controlplane.spec.model import PrefixMatch, Trigger, Workflow

TARGET_ID = "cpl-state-machine"
_RULE_NAME_LIMIT = 64
# What describe_rule adds that the artifact never sets.
_ASSIGNED = ("Arn", "EventBusName", "CreatedBy", "ResponseMetadata")

Call = Callable[[str, Callable[[], Any]], Any]


def rule_name(resource: str, trigger: str) -> str:
    """`<tenant>-<name>-<trigger>`; past EventBridge's 64 characters, cut and hashed."""
    name = f"{resource}-{trigger}"
    if len(name) <= _RULE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _RULE_NAME_LIMIT - 9]}-{digest}"


def render_rules(
    workflow: Workflow, resource: str, machine_arn: str, role_arn: str | None
) -> list[dict[str, Any]]:
    """The EventBridge rules (with their one target) of the workflow's triggers."""
    return [
        {
            "Name": rule_name(resource, trigger.name),
            "Description": f"cpl trigger {trigger.name} of {workflow.key}",
            "EventPattern": event_pattern(trigger),
            "State": "ENABLED",
            "Targets": [_target(trigger, machine_arn, role_arn)],
        }
        for trigger in workflow.spec.triggers
    ]


def event_pattern(trigger: Trigger) -> dict[str, Any]:
    """The EventBridge pattern of a trigger: exact source and type, then its filters."""
    detail: dict[str, Any] = {}
    for key, matcher in sorted(trigger.filters.items()):
        keys = key.removeprefix("$.").split(".") if key.startswith("$.") else [key]
        node = detail
        for part in keys[:-1]:
            node = node.setdefault(part, {})
        node[keys[-1]] = _pattern_values(matcher)
    pattern: dict[str, Any] = {"source": [trigger.source], "detail-type": [trigger.type]}
    if detail:
        pattern["detail"] = detail
    return pattern


def _pattern_values(matcher: Any) -> list[Any]:
    if isinstance(matcher, PrefixMatch):
        return [{"prefix": matcher.prefix}]
    return list(matcher) if isinstance(matcher, list) else [matcher]


def _target(trigger: Trigger, machine_arn: str, role_arn: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {"Id": TARGET_ID, "Arn": machine_arn}
    if role_arn:
        target["RoleArn"] = role_arn
    if trigger.input is None:
        target["InputPath"] = "$.detail.data"
        return target
    paths = {name: "$.detail" + path.text[1:] for name, path in sorted(trigger.input.items())}
    template = ", ".join(f'"{name}": <{name}>' for name in paths)
    target["InputTransformer"] = {"InputPathsMap": paths, "InputTemplate": "{" + template + "}"}
    return target


class EventRules:
    """Reads and writes the EventBridge rules of one state machine through `call`, the
    client's retrying call (`call(action, operation)`), on the `events` boto3 client."""

    def __init__(self, events: Any, call: Call) -> None:
        self.events = events
        self.call = call

    def read(self, machine_arn: str) -> list[dict[str, Any]]:
        """The rules targeting the machine, in the artifact's shape, sorted by name."""
        names: list[str] = []
        options: dict[str, Any] = {}
        while True:
            page = self.call(
                "list the rules targeting the state machine",
                functools.partial(
                    self.events.list_rule_names_by_target, TargetArn=machine_arn, **options
                ),
            )
            names.extend(page.get("RuleNames", []))
            if not page.get("NextToken"):
                break
            options = {"NextToken": page["NextToken"]}
        rules = [self._rule(name) for name in sorted(set(names))]
        return [rule for rule in rules if rule is not None]

    def _rule(self, name: str) -> dict[str, Any] | None:
        try:
            described = self.call(
                f"describe rule {name}", lambda: self.events.describe_rule(Name=name)
            )
        except ResourceError as error:
            if "ResourceNotFoundException" in error.message:
                return None  # deleted between the listing and now
            raise
        rule = {key: value for key, value in described.items() if key not in _ASSIGNED}
        if isinstance(rule.get("EventPattern"), str):
            rule["EventPattern"] = json.loads(rule["EventPattern"])
        targets = self.call(
            f"list the targets of rule {name}",
            lambda: self.events.list_targets_by_rule(Rule=name),
        )
        rule["Targets"] = sorted(targets.get("Targets", []), key=lambda t: str(t.get("Id")))
        return rule

    def put(self, rules: list[dict[str, Any]], live: list[dict[str, Any]]) -> None:
        """Make the live rules of the machine exactly `rules`."""
        wanted = {rule["Name"] for rule in rules}
        for rule in rules:
            self._put(rule, next((r for r in live if r.get("Name") == rule["Name"]), None))
        for rule in live:
            if rule.get("Name") not in wanted:
                self.delete(rule)

    def _put(self, rule: dict[str, Any], live: dict[str, Any] | None) -> None:
        name = rule["Name"]
        self.call(
            f"put rule {name}",
            lambda: self.events.put_rule(
                Name=name,
                EventPattern=json.dumps(rule["EventPattern"], sort_keys=True),
                State=rule["State"],
                Description=rule["Description"],
            ),
        )
        wanted_ids = {target["Id"] for target in rule["Targets"]}
        stale = [t["Id"] for t in (live or {}).get("Targets", []) if t["Id"] not in wanted_ids]
        if stale:
            self.call(
                f"remove stale targets of rule {name}",
                lambda: self.events.remove_targets(Rule=name, Ids=stale),
            )
        self.call(
            f"put the targets of rule {name}",
            lambda: self.events.put_targets(Rule=name, Targets=rule["Targets"]),
        )

    def delete(self, rule: dict[str, Any]) -> None:
        """Remove the rule's targets, then the rule (EventBridge refuses the other order)."""
        name = rule["Name"]
        ids = [target["Id"] for target in rule.get("Targets", [])]
        try:
            if ids:
                self.call(
                    f"remove the targets of rule {name}",
                    lambda: self.events.remove_targets(Rule=name, Ids=ids),
                )
            self.call(f"delete rule {name}", lambda: self.events.delete_rule(Name=name))
        except ResourceError as error:
            if "ResourceNotFoundException" not in error.message:
                raise
