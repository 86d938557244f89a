"""`spec.triggers` rendered per engine: the EventBridge rule of Step Functions, the Argo Events
EventSource and Sensor of Argo (checked against Argo Events' schema from hera's generated
models), the Support records of each engine, and the engine-neutral matcher `cpl serve
events` uses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from controlplane.engines import render
from controlplane.engines.argo.events import EVENTS_SUFFIX, validate_event_manifest
from controlplane.engines.argo.schema import ManifestSchemaError
from controlplane.engines.triggers import matches, run_input
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow
from tests.translate.conftest import MakeWorkflow, selecting_all

SPEC = """
start: reserve
steps:
  - {name: reserve, type: task, activity: inventory.reserve, end: true}
triggers:
  - name: order-placed
    source: com.acme.shop
    type: com.acme.order.placed
    filters: {channel: web, $.data.total: [10, 20], $.data.sku: {prefix: "SKU-"}}
    input: {orderId: $.data.id, total: $.data.total, shop: $.subject}
    authenticated: true
  - name: order-any
    source: com.acme.shop
    type: com.acme.order.placed
"""

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "com.acme.shop",
    "type": "com.acme.order.placed",
    "subject": "shop-7",
    "channel": "web",
    "data": {"id": "o-1", "total": 20, "sku": "SKU-9"},
}


@pytest.fixture
def workflow(make_workflow: MakeWorkflow) -> Workflow:
    return make_workflow(SPEC)


def _render(workflow: Workflow, environment: Environment, engine: str) -> Any:
    environment = selecting_all(environment, engine)
    (target,) = [t for t in environment.spec.targets if t.engine == engine]
    return render(workflow, target, environment)


def test_the_matcher_follows_source_type_and_every_filter(workflow: Workflow) -> None:
    trigger, catch_all = workflow.spec.triggers
    assert matches(trigger, EVENT)
    assert run_input(trigger, EVENT) == {"orderId": "o-1", "total": 20, "shop": "shop-7"}
    assert run_input(catch_all, EVENT) == EVENT["data"]  # no mapping: the data
    for change in (
        {"source": "com.acme.other"},
        {"type": "com.acme.order.cancelled"},
        {"channel": "phone"},
        {"data": {**EVENT["data"], "total": 30}},
        {"data": {**EVENT["data"], "total": True}},
        {"data": {**EVENT["data"], "sku": "X-9"}},
        {"data": {"id": "o-1"}},
    ):
        assert not matches(trigger, {**EVENT, **change}), change
    assert matches(catch_all, {**EVENT, "channel": "phone"})
    missing = {**EVENT, "data": {"total": 10, "sku": "SKU-1"}}
    assert run_input(trigger, missing) == {"orderId": None, "total": 10, "shop": "shop-7"}


def test_step_functions_renders_one_eventbridge_rule_per_trigger(
    workflow: Workflow, local_environment: Environment
) -> None:
    artifact = _render(workflow, local_environment, "stepfunctions")
    first, second = artifact.document["triggers"]
    assert first["Name"] == "retail-demo-order-placed"
    assert first["EventPattern"] == {
        "source": ["com.acme.shop"],
        "detail-type": ["com.acme.order.placed"],
        "detail": {
            "channel": ["web"],
            "data": {"sku": [{"prefix": "SKU-"}], "total": [10, 20]},
        },
    }
    (target,) = first["Targets"]
    assert target["Arn"].endswith(":stateMachine:retail-demo")
    assert target["InputTransformer"] == {
        "InputPathsMap": {
            "orderId": "$.detail.data.id",
            "shop": "$.detail.subject",
            "total": "$.detail.data.total",
        },
        "InputTemplate": '{"orderId": <orderId>, "shop": <shop>, "total": <total>}',
    }
    assert second["Targets"][0]["InputPath"] == "$.detail.data"
    records = [(s.feature, s.support, s.path) for s in artifact.support if "trigger" in s.feature]
    assert records == [
        ("triggers", "approximated", "/spec/triggers/0"),
        ("triggers", "approximated", "/spec/triggers/1"),
    ]


def test_argo_renders_an_event_source_and_a_sensor_next_to_the_template(
    workflow: Workflow, local_environment: Environment
) -> None:
    artifact = _render(workflow, local_environment, "argo")
    files = artifact.files
    events = list(yaml.safe_load_all(files[f"workflows/retail-demo{EVENTS_SUFFIX}"]))
    assert "workflows/retail-demo.yaml" in files
    source, sensor = events
    assert source["kind"] == "EventSource"
    assert source["spec"]["webhook"]["order-placed"] == {
        "port": "12000",
        "endpoint": "/retail/demo/order-placed",
        "method": "POST",
        "authSecret": {"name": "retail-demo-webhook-token", "key": "token"},
    }
    assert "authSecret" not in source["spec"]["webhook"]["order-any"]
    dependency = sensor["spec"]["dependencies"][0]
    assert dependency["filters"]["data"] == [
        {"path": "body.source", "type": "string", "value": [r"^com\.acme\.shop$"]},
        {"path": "body.type", "type": "string", "value": [r"^com\.acme\.order\.placed$"]},
        {"path": "body.data.sku", "type": "string", "value": [r"^SKU\-"]},
        {"path": "body.data.total", "type": "number", "value": ["10", "20"]},
        {"path": "body.channel", "type": "string", "value": ["^web$"]},
    ]
    submit = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]
    assert submit["operation"] == "submit"
    assert submit["source"]["resource"]["spec"]["workflowTemplateRef"] == {"name": "retail-demo"}
    (parameter,) = submit["parameters"]
    assert parameter["dest"] == "spec.arguments.parameters.0.value"
    assert parameter["src"]["dataTemplate"] == (
        '{"orderId": {{ dig "data" "id" nil .Input.body | toJson }}, '
        '"shop": {{ dig "subject" nil .Input.body | toJson }}, '
        '"total": {{ dig "data" "total" nil .Input.body | toJson }}}'
    )
    no_mapping = sensor["spec"]["triggers"][1]["template"]["argoWorkflow"]["parameters"][0]
    assert no_mapping["src"] == {"dependencyName": "order-any", "dataKey": "body.data"}


def test_argo_events_manifests_are_checked_against_the_schema(
    workflow: Workflow, local_environment: Environment
) -> None:
    source, sensor = _render(workflow, local_environment, "argo").document["events"]
    validate_event_manifest(source)
    validate_event_manifest(sensor)
    broken = copy.deepcopy(source)
    broken["spec"]["webhook"]["order-placed"]["endpiont"] = "/x"
    with pytest.raises(ManifestSchemaError, match="endpiont: dropped"):
        validate_event_manifest(broken)
    broken = copy.deepcopy(sensor)
    broken["spec"]["dependencies"][0]["filters"]["data"][0]["valeu"] = ["x"]
    with pytest.raises(ManifestSchemaError, match="valeu: dropped"):
        validate_event_manifest(broken)
    broken = copy.deepcopy(sensor)
    resource = broken["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    resource["spec"]["workflowTemplateRf"] = {"name": "x"}
    with pytest.raises(ManifestSchemaError, match="resource/spec/workflowTemplateRf: dropped"):
        validate_event_manifest(broken)


def test_argo_cannot_trigger_a_scheduled_workflow(
    make_workflow: MakeWorkflow, local_environment: Environment
) -> None:
    scheduled = make_workflow(SPEC + "schedule: {cron: '0 * * * *'}\n")
    artifact = _render(scheduled, local_environment, "argo")
    assert artifact.document["events"] == []
    levels = {(s.feature, s.support) for s in artifact.support if "trigger" in s.feature}
    assert levels == {("triggers", "approximated"), ("triggers.scheduled", "unsupported")}


def test_temporal_records_the_cpl_hosted_receiver(
    workflow: Workflow, local_environment: Environment
) -> None:
    artifact = _render(workflow, local_environment, "temporal")
    (record, _) = [s for s in artifact.support if s.feature == "triggers"]
    assert record.support == "approximated"
    assert "cpl serve events" in record.reason
    triggers = artifact.document["spec"]["workflow"]["spec"]["triggers"]
    assert [t["name"] for t in triggers] == ["order-placed", "order-any"]
