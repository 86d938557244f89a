"""`spec.triggers`: a valid trigger loads with its matchers and input mapping, and every
mistake is reported at the offending key (docs/triggers.md)."""

from __future__ import annotations

import json

import pytest

from controlplane.cli import run
from controlplane.spec.model import PrefixMatch, Workflow
from tests.conftest import MakeRepo

HEAD = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: orders, tenant: retail, version: 1.0.0, owner: team-orders}
spec:
  start: done
  steps: [{name: done, type: succeed}]
  triggers:
"""


def _workflow(triggers: str) -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load(HEAD + triggers)
    return data


def test_a_trigger_loads_with_its_matchers_and_mapping() -> None:
    workflow = Workflow.model_validate(
        _workflow(
            """
    - name: order-placed
      source: com.acme.shop
      type: com.acme.order.placed
      filters:
        channel: web
        region: [eu, us]
        $.data.sku: {prefix: "SKU-"}
        $.data.count: 3
        $.data.gift: true
      input: {orderId: $.data.id, topic: $.subject, order: $.data}
      authenticated: true
"""
        )
    )
    trigger = workflow.spec.triggers[0]
    assert trigger.filters == {
        "channel": "web",
        "region": ["eu", "us"],
        "$.data.sku": PrefixMatch(prefix="SKU-"),
        "$.data.count": 3,
        "$.data.gift": True,
    }
    assert trigger.input is not None
    assert {k: v.text for k, v in trigger.input.items()} == {
        "orderId": "$.data.id",
        "topic": "$.subject",
        "order": "$.data",
    }
    assert trigger.authenticated is True


def _diagnostics(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str], triggers: str
) -> list[tuple[str, str, str]]:
    repo = make_repo({"workflows/retail/orders.yaml": HEAD + triggers})
    assert run(["validate", "--repo", str(repo), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["diagnostics"]
    return [(d["code"], d["path"], d["message"]) for d in found]


def test_trigger_mistakes_are_reported_at_their_keys(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _diagnostics(
        make_repo,
        capsys,
        """
    - name: placed
      source: com.acme.shop
      type: com.acme.order.placed
      filters: {Channel: web, id: x, $.items: 1, ok: {prefx: a}}
      input: {orderId: $.body.id, "bad key": $.data}
      authenticated: maybe
    - name: placed
      source: ""
      type: t
      sourse: x
""",
    )
    codes = {(code, path) for code, path, _ in found}
    assert codes == {
        ("CPL-S004", "/spec/triggers/0/filters/Channel"),
        ("CPL-S004", "/spec/triggers/0/filters/id"),
        ("CPL-S004", "/spec/triggers/0/filters/$.items"),
        ("CPL-S002", "/spec/triggers/0/filters/ok/prefx"),
        ("CPL-S003", "/spec/triggers/0/filters/ok"),
        ("CPL-S004", "/spec/triggers/0/input/orderId"),
        ("CPL-S004", "/spec/triggers/0/input/bad key"),
        ("CPL-S004", "/spec/triggers/0/authenticated"),
        ("CPL-S004", "/spec/triggers/1/source"),
        ("CPL-S002", "/spec/triggers/1/sourse"),
        ("CPL-S011", "/spec/triggers/1/name"),
    }, found
    messages = {path: message for _, path, message in found}
    assert "not a path into the event" in messages["/spec/triggers/0/input/orderId"]
    assert "source and type are the trigger's own fields" in messages["/spec/triggers/0/filters/id"]
    assert messages["/spec/triggers/1/name"] == "duplicate trigger name 'placed'"


def test_the_json_schema_describes_triggers(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema", "--kind", "Workflow"]) == 0
    schema = json.loads(capsys.readouterr().out)
    trigger = schema["$defs"]["Trigger"]
    assert set(trigger["properties"]) == {
        "name",
        "source",
        "type",
        "filters",
        "input",
        "authenticated",
    }
    assert set(trigger["required"]) == {"name", "source", "type"}
