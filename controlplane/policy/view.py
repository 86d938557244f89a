"""The evaluation view of a policy input: the parts of the policy input document
(controlplane/policies/README.md) the built-in rules read.

Handing a document to the embedded OPA costs time per JSON node (the bindings convert every
node of the input on each call, about 4 µs a node on the benchmark machine), and a full input
is ~45 KB: the workflow (~8 KB), `rendered` (10-35 KB, the Temporal artifact repeats the whole
workflow), `compat` (~20 KB, one entry per construct) and `bindings` (~3 KB). The built-in
library reads all of `workflow` and `change`, but only a few fields of the rest:

- `rendered`: `kind`, `tracing`, `role` (the Step Functions role's policies),
  `configuration.loggingConfiguration`, `configuration.tracingConfiguration`, and per Argo
  manifest `kind`, `metadata.name`, and of `spec` (or `spec.workflowSpec`) `ttlStrategy`,
  `podGC`, `serviceAccountName`, `securityContext` and per template its `name` and the
  `securityContext` of its `container` or `script` (CPL-P021);
- `compat`: the entries whose `support` is not `exact` (CPL-P020, which reports one finding
  per (feature, support) with the `reason` of its first entry: later entries of the same
  feature and support keep their `path` only);
- `bindings`: `activities.<name>.external` (CPL-P008).

`evaluation_view()` keeps exactly those (and everything else unchanged). Engines apply it only
when every loaded module is part of the built-in library (`Library.builtin_only`): rules from
an environment's `policy.paths` may read any part of the input, so they always get the full
policy input document. The findings of the built-in rules are the same on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_WORKFLOW_SPEC_FIELDS = ("ttlStrategy", "podGC", "serviceAccountName", "securityContext")
_CONFIGURATION_FIELDS = ("loggingConfiguration", "tracingConfiguration")


def evaluation_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with `rendered`, `compat` and `bindings` reduced to what rules read."""
    view = dict(document)
    if "rendered" in view:
        view["rendered"] = _rendered(view["rendered"])
    compat = view.get("compat")
    if isinstance(compat, list):
        view["compat"] = _compat(compat)
    bindings = view.get("bindings")
    if isinstance(bindings, Mapping):
        view["bindings"] = _bindings(bindings)
    return view


def _compat(compat: list[Any]) -> list[Any]:
    entries: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for entry in compat:
        if not isinstance(entry, Mapping):
            entries.append(entry)
            continue
        support = entry.get("support")
        if support == "exact":
            continue
        key = (repr(entry.get("feature", "?")), repr(support))
        if key in seen and "reason" in entry:
            entry = {k: v for k, v in entry.items() if k != "reason"}
        seen.add(key)
        entries.append(entry)
    return entries


def _pick(source: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: source[f] for f in fields if f in source}


def _rendered(rendered: Any) -> Any:
    if not isinstance(rendered, Mapping):
        return rendered
    view = _pick(rendered, ("kind", "tracing", "role"))
    configuration = rendered.get("configuration")
    if isinstance(configuration, Mapping):
        view["configuration"] = _pick(configuration, _CONFIGURATION_FIELDS)
    elif "configuration" in rendered:
        view["configuration"] = configuration
    manifests = rendered.get("manifests")
    if isinstance(manifests, list):
        view["manifests"] = [_manifest(m) for m in manifests]
    elif "manifests" in rendered:
        view["manifests"] = manifests
    return view


def _manifest(manifest: Any) -> Any:
    if not isinstance(manifest, Mapping):
        return manifest
    view = _pick(manifest, ("kind",))
    metadata = manifest.get("metadata")
    if isinstance(metadata, Mapping):
        view["metadata"] = _pick(metadata, ("name",))
    elif "metadata" in manifest:
        view["metadata"] = metadata
    spec = manifest.get("spec")
    if isinstance(spec, Mapping):
        spec_view = _workflow_spec(spec)
        workflow_spec = spec.get("workflowSpec")
        if isinstance(workflow_spec, Mapping):
            spec_view["workflowSpec"] = _workflow_spec(workflow_spec)
        elif "workflowSpec" in spec:
            spec_view["workflowSpec"] = workflow_spec
        view["spec"] = spec_view
    elif "spec" in manifest:
        view["spec"] = spec
    return view


def _workflow_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    view = _pick(spec, _WORKFLOW_SPEC_FIELDS)
    templates = spec.get("templates")
    if isinstance(templates, list):
        view["templates"] = [_template(t) for t in templates]
    elif "templates" in spec:
        view["templates"] = templates
    return view


def _template(template: Any) -> Any:
    if not isinstance(template, Mapping):
        return template
    view = _pick(template, ("name",))
    for kind in ("container", "script"):
        container = template.get(kind)
        if isinstance(container, Mapping):
            view[kind] = _pick(container, ("securityContext",))
        elif kind in template:
            view[kind] = container
    return view


def _bindings(bindings: Mapping[str, Any]) -> dict[str, Any]:
    activities = bindings.get("activities")
    if not isinstance(activities, Mapping):
        return {"activities": activities} if "activities" in bindings else {}
    return {
        "activities": {
            name: _pick(binding, ("external",)) if isinstance(binding, Mapping) else binding
            for name, binding in activities.items()
        }
    }
