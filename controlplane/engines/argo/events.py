"""`spec.triggers` on Argo: an Argo Events webhook `EventSource` and a `Sensor` that submits a
Workflow from the workflow's WorkflowTemplate (docs/triggers.md).

The EventSource has one webhook per trigger (`POST /<tenant>/<name>/<trigger>` on port
12000). A CloudEvent arrives in structured mode (`Content-Type: application/cloudevents+json`):
Argo Events wraps the request as `{header, body}`, so the CloudEvent's attributes are
`body.<attribute>` and its data `body.data`. The Sensor's dependency per trigger filters on
`body.source`, `body.type` and the trigger's filters (string values are regular expressions
in Argo Events: cpl anchors and escapes them), and its trigger submits a Workflow whose
`document` parameter is the mapped input, built by a Go template.

The manifests are checked against Argo Events' schema with hera's models generated from
Argo's OpenAPI document (`hera.events.models`), by the same round trip as the workflow
manifests (`schema.py`).
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from controlplane.engines.argo.schema import ManifestSchemaError, differences
from controlplane.spec.model import PrefixMatch, Trigger, Workflow

API_VERSION = "argoproj.io/v1alpha1"
WEBHOOK_PORT = "12000"
EVENT_KINDS = ("EventSource", "Sensor")
EVENTS_SUFFIX = ".events.yaml"
"""The file of a workflow's EventSource and Sensor, next to `<resource>.yaml`."""


def event_source_name(resource: str) -> str:
    return f"{resource}-events"


def sensor_name(resource: str) -> str:
    return f"{resource}-triggers"


def webhook_endpoint(workflow: Workflow, trigger: Trigger) -> str:
    return f"/{workflow.metadata.tenant}/{workflow.metadata.name}/{trigger.name}"


def token_secret(resource: str) -> str:
    """The Kubernetes Secret (key `token`) an authenticated webhook checks bearer tokens with."""
    return f"{resource}-webhook-token"


def render_event_manifests(
    workflow: Workflow, resource: str, namespace: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The EventSource and the Sensor of the workflow's triggers."""
    metadata = {"namespace": namespace, "labels": dict(labels)}
    webhooks: dict[str, Any] = {}
    for trigger in workflow.spec.triggers:
        webhook: dict[str, Any] = {
            "port": WEBHOOK_PORT,
            "endpoint": webhook_endpoint(workflow, trigger),
            "method": "POST",
        }
        if trigger.authenticated:
            webhook["authSecret"] = {"name": token_secret(resource), "key": "token"}
        webhooks[trigger.name] = webhook
    event_source = {
        "apiVersion": API_VERSION,
        "kind": "EventSource",
        "metadata": {"name": event_source_name(resource), **metadata},
        "spec": {"webhook": webhooks},
    }
    sensor = {
        "apiVersion": API_VERSION,
        "kind": "Sensor",
        "metadata": {"name": sensor_name(resource), **metadata},
        "spec": {
            "dependencies": [
                {
                    "name": trigger.name,
                    "eventSourceName": event_source_name(resource),
                    "eventName": trigger.name,
                    "filters": {"data": _data_filters(trigger)},
                }
                for trigger in workflow.spec.triggers
            ],
            "triggers": [
                _submit(trigger, resource, namespace) for trigger in workflow.spec.triggers
            ],
        },
    }
    return [event_source, sensor]


def events_text(manifests: list[dict[str, Any]]) -> str:
    """The event manifests as one YAML stream (sorted keys), each checked against the schema."""
    for manifest in manifests:
        validate_event_manifest(manifest)
    return yaml.safe_dump_all(manifests, sort_keys=True, allow_unicode=True, width=100)


def mixed_filters(trigger: Trigger) -> list[str]:
    """Filter keys whose list mixes value types: one Argo data filter has one type."""
    return [
        key
        for key, matcher in trigger.filters.items()
        if isinstance(matcher, list) and len({_type_of(value) for value in matcher}) > 1
    ]


def _data_filters(trigger: Trigger) -> list[dict[str, Any]]:
    filters = [
        _string_filter("body.source", [trigger.source]),
        _string_filter("body.type", [trigger.type]),
    ]
    for key, matcher in sorted(trigger.filters.items()):
        path = "body." + (key.removeprefix("$.") if key.startswith("$.") else key)
        if isinstance(matcher, PrefixMatch):
            filters.append(
                {"path": path, "type": "string", "value": ["^" + re.escape(matcher.prefix)]}
            )
            continue
        values = matcher if isinstance(matcher, list) else [matcher]
        kind = _type_of(values[0])
        if kind == "string":
            filters.append(_string_filter(path, [str(v) for v in values]))
        else:
            shown = [json.dumps(v) for v in values if _type_of(v) == kind]
            filters.append({"path": path, "type": kind, "value": shown})
    return filters


def _string_filter(path: str, values: list[str]) -> dict[str, Any]:
    # Argo Events matches string values as regular expressions: anchor and escape them.
    return {"path": path, "type": "string", "value": [f"^{re.escape(v)}$" for v in values]}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


def _submit(trigger: Trigger, resource: str, namespace: str) -> dict[str, Any]:
    workflow = {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": f"{resource}-", "namespace": namespace},
        "spec": {
            "workflowTemplateRef": {"name": resource},
            "arguments": {"parameters": [{"name": "document", "value": "{}"}]},
        },
    }
    source: dict[str, Any] = {"dependencyName": trigger.name}
    if trigger.input is None:
        source["dataKey"] = "body.data"
    else:
        fields = ", ".join(
            f"{json.dumps(name)}: {_go_value(path.parts)}"
            for name, path in sorted(trigger.input.items())
        )
        source["dataTemplate"] = "{" + fields + "}"
    return {
        "template": {
            "name": trigger.name,
            "conditions": trigger.name,
            "argoWorkflow": {
                "operation": "submit",
                "source": {"resource": workflow},
                "parameters": [{"src": source, "dest": "spec.arguments.parameters.0.value"}],
            },
        }
    }


def _go_value(parts: tuple[str | int, ...]) -> str:
    """A Go template (sprig) expression for the JSON value at an event path, null if absent."""
    keys = " ".join(json.dumps(str(part)) for part in parts)
    return "{{ dig " + keys + " nil .Input.body | toJson }}"


@lru_cache(maxsize=1)
def _models() -> dict[str, type[BaseModel]]:
    """hera's Argo Events models (generated from Argo's OpenAPI document)."""
    from hera.events.models import EventSource, Sensor

    return {"EventSource": EventSource, "Sensor": Sensor}


def validate_event_manifest(manifest: dict[str, Any]) -> None:
    """Raise ManifestSchemaError unless the manifest survives Argo Events' models unchanged.

    The generated models describe `metadata`, `spec` and `status`; `apiVersion` and `kind`
    are checked here.
    """
    kind = str(manifest.get("kind", ""))
    name = str((manifest.get("metadata") or {}).get("name", "?"))
    model = _models().get(kind)
    if model is None:
        raise ManifestSchemaError(kind, name, [f"/kind: not one of {', '.join(EVENT_KINDS)}"])
    if manifest.get("apiVersion") != API_VERSION:
        raise ManifestSchemaError(kind, name, [f"/apiVersion: not {API_VERSION}"])
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    if kind == "EventSource":
        body = _webhook_contexts_nested(body)
    else:
        body = _resources_checked(kind, name, body)
    problems = _round_trip(model, body, "")
    if problems:
        raise ManifestSchemaError(kind, name, problems)


def _round_trip(model: type[BaseModel], document: dict[str, Any], prefix: str) -> list[str]:
    """What validating `document` with `model` rejects, drops or changes (JSON pointers)."""
    try:
        parsed = model.model_validate(document)
    except ValidationError as exc:
        return [
            prefix + "/" + "/".join(str(part) for part in error["loc"]) + f": {error['msg']}"
            for error in exc.errors()
        ]
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return differences(document, dumped, prefix)


def _resources_checked(kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The Sensor with each submitted Workflow checked and set aside.

    A trigger's `source.resource` is free-form in Argo Events' schema (any Kubernetes
    object); the Workflow cpl puts there is checked against Argo Workflows' own model.
    """
    from hera.workflows.models import Workflow as WorkflowModel

    result = copy.deepcopy(body)
    problems: list[str] = []
    for index, trigger in enumerate(result.get("spec", {}).get("triggers", [])):
        source = trigger.get("template", {}).get("argoWorkflow", {}).get("source", {})
        resource = source.get("resource")
        if not isinstance(resource, dict):
            continue
        if resource.get("apiVersion") != API_VERSION or resource.get("kind") != "Workflow":
            problems.append(f"/spec/triggers/{index}: the submitted resource is no Workflow")
        document = {k: v for k, v in resource.items() if k not in ("apiVersion", "kind")}
        pointer = f"/spec/triggers/{index}/template/argoWorkflow/source/resource"
        problems.extend(_round_trip(WorkflowModel, document, pointer))
        del source["resource"]
    if problems:
        raise ManifestSchemaError(kind, name, problems)
    return result


def _webhook_contexts_nested(body: dict[str, Any]) -> dict[str, Any]:
    """The EventSource in the shape of the generated models.

    In Argo Events' Go types a webhook's context (port, endpoint, method, authSecret) is
    inlined into the webhook (`json:",inline"`), which is how manifests write it; the OpenAPI
    document the models come from names that inlined struct `webhookContext`. Nesting the
    context back under that name checks it against the context's schema.
    """
    spec = body.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("webhook"), dict):
        return body
    nested: dict[str, Any] = {}
    for name, webhook in spec["webhook"].items():
        if isinstance(webhook, dict):
            context = {k: v for k, v in webhook.items() if k != "filter"}
            rest = {k: v for k, v in webhook.items() if k == "filter"}
            nested[name] = {**rest, "webhookContext": context}
        else:
            nested[name] = webhook
    return {**body, "spec": {**spec, "webhook": nested}}
