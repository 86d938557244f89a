"""Argo Workflows: one WorkflowTemplate (or CronWorkflow, when scheduled) per workflow.

The shape of a manifest:

- `main` is the entrypoint. In DAG form it is a `dag` template whose tasks call the steps'
  node templates; in state-machine form it calls the node of `spec.start`.
- Every step renders as a *node template* `node-<step>`: a `steps` template that takes the
  run's data document (input parameter `document`, a JSON string), performs the step (row
  one: a container, a suspend, branches, a `withParam` fan-out) and, in state-machine form,
  continues with the node of the next step (the last row: mutually exclusive `when`
  alternatives for `next`, choice rules, catches and approval outcomes). Argo has no goto:
  continuing by calling the next node is what makes loops (recursion) and catches possible.
- Tasks are container templates `task-<step>` (image and command from the activity's argo
  binding); the task input arrives in env `CPL_INPUT`, the result is read from
  `/tmp/cpl/result.json` and an error name from `/tmp/cpl/error` (the cpl container contract).
- The document is updated with Argo expressions (`jsonpath`, `sprig.set`, `toJson`); branch,
  iteration and DAG nodes export their final document as output parameter `document`.
- `onExit` runs, when the run did not succeed, the compensations in reverse order and then the
  dead-letter container.

Conditions become expr expressions inside `{{=...}}` tags (see `condition_expression`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from controlplane.engines.argo.events import (
    EVENTS_SUFFIX,
    events_text,
    mixed_filters,
    render_event_manifests,
)
from controlplane.engines.argo.identity import (
    IDENTITY_SUFFIX,
    harden,
    identity_manifests,
    identity_text,
)
from controlplane.engines.argo.metrics import FEATURES as MONITORING_FEATURES
from controlplane.engines.argo.metrics import monitoring_annotation, template_metrics
from controlplane.engines.argo.schema import validate_manifest
from controlplane.engines.translator import (
    GOVERNANCE_FEATURES,
    Artifact,
    Feature,
    RenderContext,
    Translator,
    record_governance,
)
from controlplane.monitoring.share import without_rules_file
from controlplane.spec.check import compensation_targets, transitions
from controlplane.spec.environment import EngineName, Environment, Target
from controlplane.spec.model import (
    AllOf,
    AnyOf,
    ApprovalStep,
    Catch,
    ChoiceStep,
    Comparison,
    Condition,
    FailStep,
    MapStep,
    NotOf,
    ParallelStep,
    Retry,
    Step,
    SucceedStep,
    TaskStep,
    WaitStep,
    Workflow,
)
from controlplane.spec.normalize import apply_defaults
from controlplane.spec.types import DataPath, is_path


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter when PyYAML has it (same text as SafeDumper, 20x faster), never
    writing anchors and aliases: a manifest may share one list in two places (a metric's
    labels, a binding's command), and Kubernetes tooling expects plain YAML."""

    def ignore_aliases(self, data: object) -> bool:
        return True


_DUMPER = _Dumper

API_VERSION = "argoproj.io/v1alpha1"
LABEL_PREFIX = "cpl.dev"
# Images of cpl's own helper containers (not user activities).
UTILITY_IMAGE = "busybox:1.36"
SCRIPT_IMAGE = "python:3.12-alpine"
DEAD_LETTER_IMAGE = "ghcr.io/cpl-dev/dead-letter:0.1.0"
RESULT_FILE = "/tmp/cpl/result.json"
ERROR_FILE = "/tmp/cpl/error"
# Argo keeps parameters in the Workflow object, which etcd limits to about 1 MiB.
PAYLOAD_LIMIT_BYTES = 1024 * 1024

_DOC = "inputs.parameters.document"
_UNCHANGED = f"jsonpath({_DOC}, '$')"
_OVERLAP = {"skip": "Forbid", "allow-all": "Allow", "buffer-one": "Allow"}
_BINDING_KEYS = ("image", "command", "args", "workingDir", "resources", "imagePullPolicy")


# --- expressions (Argo's expr language inside `{{= ... }}` tags) ---------------------------


# How a string is written inside an expr literal within a `{{=...}}` tag. Argo finds a tag's
# end at the first `}}` (fasttemplate), before expr parses anything, so a literal holding `}}`
# would end the tag and let the rest of the data become template text, `{{=...}}` included.
# Braces are therefore written as expr's `\x7b`/`\x7d` escapes: the tag holds no brace from
# data, and expr turns them back into the characters.
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "{": "\\x7b", "}": "\\x7d"})


def _literal(value: Any) -> str:
    """A JSON value as an expr literal."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return "'" + value.translate(_STRING_ESCAPES) + "'"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(str(k))}: {_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _tag(expression: str) -> str:
    """An expression tag. Argo ends a tag at its first `}}`: nested objects (`{'a': {'b': 1}}`)
    or an object at the very end would end it early, so adjacent braces are spaced apart (string
    literals hold no braces, see `_STRING_ESCAPES`, so this only touches expr syntax)."""
    while "}}" in expression or "{{" in expression:
        expression = expression.replace("}}", "} }").replace("{{", "{ {")
    if expression.endswith("}"):
        expression += " "
    return "{{=" + expression + "}}"


def _read(path: DataPath | str, doc: str = _DOC) -> str:
    """The value at a data path of the JSON document held in the string `doc`."""
    return f"jsonpath({doc}, {_literal(str(path))})"


def _object_at(keys: tuple[str, ...], doc: str) -> str:
    """The object at `keys` of the document, or an empty object when it is missing."""
    if not keys:
        return f"jsonpath({doc}, '$')"
    args = ", ".join(_literal(k) for k in keys)
    return f"sprig.dig({args}, {{}}, jsonpath({doc}, '$'))"


def _write(doc: str, path: DataPath | None, value: str) -> str:
    """The document (an object expression) with `value` written at `path` (default `$`)."""
    keys = tuple(str(p) for p in path.parts) if path is not None else ()
    if not keys:
        return value
    expression = value
    for depth in range(len(keys) - 1, -1, -1):
        expression = (
            f"sprig.set({_object_at(keys[:depth], doc)}, {_literal(keys[depth])}, {expression})"
        )
    return expression


def _resolve(value: Any, doc: str) -> str:
    """A task parameter value as an expression: paths read the document, the rest are literals."""
    if is_path(value):
        return _read(value, doc)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_resolve(v, doc)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_resolve(v, doc) for v in value) + "]"
    return _literal(value)


def condition_expression(condition: Condition, doc: str = _DOC) -> str:
    """A structured condition as an expr boolean expression over the document.

    Comparisons read the value with `jsonpath` (a missing path is an expression error, which
    fails the node, like the interpreter's DataPathError); `exists` digs with a sentinel
    default instead so that a missing path is simply false; `matches` uses expr's `matches`
    (Go RE2 syntax); `all`/`any`/`not` are `&&`, `||`, `!`.
    """
    if isinstance(condition, AllOf):
        return "(" + " && ".join(condition_expression(c, doc) for c in condition.all) + ")"
    if isinstance(condition, AnyOf):
        return "(" + " || ".join(condition_expression(c, doc) for c in condition.any) + ")"
    if isinstance(condition, NotOf):
        return "!" + _parenthesized(condition_expression(condition.not_, doc))
    return _comparison(condition, doc)


def _parenthesized(expression: str) -> str:
    return expression if expression.startswith("(") else f"({expression})"


_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _comparison(condition: Comparison, doc: str) -> str:
    operator, operand = condition.operator, condition.operand
    if operator == "exists":
        keys = condition.path.parts
        if keys and all(isinstance(k, str) for k in keys):
            args = ", ".join(_literal(str(k)) for k in keys)
            present = f"sprig.dig({args}, '__cpl_missing__', jsonpath({doc}, '$'))"
            return f"({present} {'!=' if operand else '=='} '__cpl_missing__')"
        return "true" if operand else "false"
    value = _read(condition.path, doc)
    if operator == "in":
        return f"({value} in {_literal(operand)})"
    if operator == "matches":
        return f"({value} matches {_literal(operand)})"
    return f"({value} {_SYMBOLS[operator]} {_literal(operand)})"


def _comparisons(condition: Condition, pointer: str) -> Iterator[tuple[str, str]]:
    """(operator, pointer) of every comparison in a condition, for Support records."""
    if isinstance(condition, AllOf | AnyOf):
        key = "all" if isinstance(condition, AllOf) else "any"
        items = condition.all if isinstance(condition, AllOf) else condition.any
        for index, item in enumerate(items):
            yield from _comparisons(item, f"{pointer}/{key}/{index}")
    elif isinstance(condition, NotOf):
        yield from _comparisons(condition.not_, f"{pointer}/not")
    else:
        yield condition.operator, pointer


def _steps_ref(name: str) -> str:
    return f"steps['{name}']"


def _go_duration(seconds: float) -> str:
    """A duration string Argo parses (Go syntax): `90s`, `1500ms`."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _template_name(text: str) -> str:
    """A template name Argo accepts (letters, digits, `-`; at most 128 characters)."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]", "-", text)
    return cleaned[:128]


# --- render state ----------------------------------------------------------------------------


@dataclass
class _Scope:
    """The steps of one state machine or DAG, and how node templates in it are named."""

    pointer: str
    prefix: str
    steps: dict[str, Step]
    indexes: dict[str, int]
    dag: bool
    nested: bool  # branch or map iteration: nodes export their final document

    def path(self, name: str) -> str:
        return f"{self.pointer}/steps/{self.indexes[name]}"

    def node(self, name: str) -> str:
        return _template_name(f"node-{self.prefix}{name}")


@dataclass
class _Exit:
    """One alternative of a node's last row: where the run goes next, and when."""

    when: str | None
    template: str
    document: str | None = None  # expression of the next document (for node targets)
    failure: tuple[str, str] | None = None  # (error, cause) expressions for `cpl-fail`


@dataclass
class _Compensation:
    step: TaskStep  # the compensation task
    task_template: str
    export: str  # global output parameter holding the document after the compensated step
    path: str


@dataclass
class ArgoContext(RenderContext):
    """The render context plus the templates collected while walking the steps."""

    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    scopes: list[_Scope] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)  # compensated step path -> export
    compensations: list[_Compensation] = field(default_factory=list)

    @property
    def scope(self) -> _Scope:
        return self.scopes[-1]

    def add(self, template: dict[str, Any]) -> str:
        self.templates.setdefault(template["name"], template)
        return str(template["name"])


def _ctx(ctx: RenderContext) -> ArgoContext:
    assert isinstance(ctx, ArgoContext), "ArgoTranslator renders with an ArgoContext"
    return ctx


# --- the translator ---------------------------------------------------------------------------


class ArgoTranslator(Translator[str]):
    """Renders a workflow as an Argo WorkflowTemplate or CronWorkflow (one node per step)."""

    engine: ClassVar[EngineName] = "argo"
    FEATURES: ClassVar[dict[str, Feature]] = {
        **GOVERNANCE_FEATURES,
        **MONITORING_FEATURES,  # slo and alerts, objective by objective, metric by metric
        "task.circuitBreaker": Feature(
            "approximated",
            "Argo has no circuit breaker: the activity's client must enforce the settings; "
            "Argo only retries",
        ),
        "dataDocument": Feature(
            "approximated",
            "Argo passes parameters, not a JSON document: the data document travels as a JSON "
            "string parameter from node to node, task inputs are read with `jsonpath` and "
            "results written with sprig `set` expressions; it lives in the Workflow object "
            "(etcd, about 1 MiB for the whole run)",
        ),
        "dag": Feature("exact", "a `dag` template; dependsOn → dependencies"),
        "dag.when": Feature("exact", "`when` inside the step's node; a skipped step writes null"),
        "task": Feature("exact", "container template from the activity's argo binding"),
        "task.timeout": Feature("exact", "template activeDeadlineSeconds (per attempt)"),
        "task.heartbeat": Feature(
            "approximated",
            "Argo has no activity heartbeat: a hung container is stopped only by the task "
            "timeout (activeDeadlineSeconds)",
        ),
        "task.idempotencyKey": Feature(
            "approximated",
            "Argo does not deduplicate; the key is handed to the container as "
            "CPL_IDEMPOTENCY_KEY and the activity must honour it",
        ),
        "task.compensation": Feature(
            "approximated",
            "the onExit handler sees only workflow.status, not which steps completed: every "
            "compensation of the run is attempted in reverse declaration order with the "
            "document its step exported (a global output parameter); one whose step never "
            "completed fails to resolve and is skipped (continueOn)",
        ),
        "retry": Feature("exact", "retryStrategy: limit = maxAttempts - 1, retryPolicy Always"),
        "retry.backoff": Feature("exact", "backoff.duration and backoff.factor"),
        "retry.backoffRate.fraction": Feature(
            "approximated", "Argo's backoff.factor is an integer: the rate is rounded"
        ),
        "retry.maxInterval": Feature("exact", "backoff.cap (Argo 3.6 and later)"),
        "retry.jitter": Feature("approximated", "Argo's backoff has no jitter"),
        "retry.nonRetryable": Feature(
            "approximated",
            "Argo decides retries from the pod's phase and cannot see error names: "
            "non-retryable errors are retried too",
        ),
        "catch": Feature(
            "approximated",
            "continueOn + `when` on the step's status; the error name comes from the file "
            "/tmp/cpl/error the container writes (a pod stopped by its deadline reports "
            "`Error`, not `Timeout`)",
        ),
        "catch.dag": Feature(
            "unsupported", "a catch in DAG form is not rendered for Argo: the run fails"
        ),
        "choice": Feature("exact", "mutually exclusive `when` expressions on the next nodes"),
        "condition.eq": Feature("exact"),
        "condition.ne": Feature("exact"),
        "condition.gt": Feature("exact"),
        "condition.ge": Feature("exact"),
        "condition.lt": Feature("exact"),
        "condition.le": Feature("exact"),
        "condition.in": Feature("exact"),
        "condition.exists": Feature("exact", "sprig.dig with a sentinel default"),
        "condition.matches": Feature(
            "approximated", "expr `matches` uses Go RE2 syntax, not Python's `re`"
        ),
        "parallel": Feature("exact", "one row of branch nodes run in parallel"),
        "map": Feature("exact", "withParam over the items; results aggregated from the nodes"),
        "map.maxConcurrency": Feature("exact", "template parallelism"),
        "map.batchSize": Feature(
            "approximated",
            "items are chunked with sprig.chunk in the withParam expression; each chunk is "
            "one iteration whose document is the list of its items",
        ),
        "wait.duration": Feature("exact", "suspend template with a duration"),
        "wait.until": Feature(
            "approximated",
            "Argo's suspend takes only a relative duration: a short script pod computes the "
            "seconds until the timestamp, then a suspend waits that long (clock skew between "
            "pod and controller; a past timestamp waits 0s)",
        ),
        "approval": Feature(
            "approximated",
            "suspend template: approve with `argo node set --output-parameter approved=true` "
            "(or false) then `argo resume`; the signal name is an annotation",
        ),
        "approval.timeout": Feature(
            "exact", "suspend duration; an unanswered suspend takes the onTimeout branch"
        ),
        "approval.approvers": Feature(
            "unsupported",
            "Argo does not check who resumes a suspended node: anyone allowed by Kubernetes "
            "RBAC to update workflows in the namespace can approve",
        ),
        "succeed": Feature("exact", "a zero-length suspend (no pod)"),
        "fail": Feature(
            "approximated",
            "a container that prints `error: cause` and exits 1; Argo records the node as "
            "Failed without an error name",
        ),
        "timeout": Feature("exact", "spec.activeDeadlineSeconds"),
        "retention": Feature(
            "exact", "ttlStrategy.secondsAfterCompletion; podGC OnPodCompletion removes pods"
        ),
        "schedule": Feature("exact", "CronWorkflow schedules"),
        "triggers": Feature(
            "approximated",
            "an Argo Events webhook EventSource and a Sensor that submits a Workflow from the "
            "WorkflowTemplate: CloudEvents arrive in structured mode over HTTP, and a "
            "redelivered event starts a second run (no deduplication by event id)",
        ),
        "triggers.scheduled": Feature(
            "unsupported",
            "a scheduled workflow renders as a CronWorkflow, which a Sensor cannot submit from",
        ),
        "identity.kubernetes": Feature(
            "unsupported",
            "delivery: kubernetes applies the WorkflowTemplate only; its ServiceAccount, Role "
            "and RoleBinding (`cpl render -o`, <resource>.identity.yaml) are delivered by gitops",
        ),
        "triggers.kubernetes": Feature(
            "unsupported",
            "delivery: kubernetes applies the WorkflowTemplate only; the EventSource and Sensor "
            "are delivered by gitops",
        ),
        "triggers.filters.mixed": Feature(
            "unsupported",
            "an Argo Events data filter has one type: values of other types in the list are "
            "left out",
        ),
        "schedule.timezone": Feature("exact", "CronWorkflow timezone"),
        "schedule.overlap": Feature(
            "exact", "concurrencyPolicy (skip → Forbid, allow-all → Allow)"
        ),
        "schedule.overlap.buffer-one": Feature(
            "approximated",
            "concurrencyPolicy Allow with a workflow mutex: overlapping runs queue instead of "
            "running together, but Argo's queue is not limited to one",
        ),
        "onError.deadLetter": Feature(
            "approximated",
            "a dead-letter container in onExit when the run did not succeed; Argo has no "
            "trace, so the message carries workflow.failures instead",
        ),
        "onError.compensate": Feature(
            "approximated", "compensations run from onExit (see task.compensation)"
        ),
        "input.schema": Feature(
            "unsupported", "Argo does not validate workflow arguments against a JSON Schema"
        ),
        "security.encryption": Feature(
            "unsupported",
            "Argo has no payload encryption: parameters are stored in the Workflow object "
            "(encrypted only if the cluster encrypts etcd at rest)",
        ),
        "payload.offload": Feature(
            "unsupported", "cpl does not render artifact offload for Argo; data stays inline"
        ),
    }

    # -- the seam --

    def context(self, workflow: Workflow, target: Target, environment: Environment) -> ArgoContext:
        return ArgoContext(workflow, target, environment, dict(self.FEATURES))

    def render(self, workflow: Workflow, target: Target, environment: Environment) -> Artifact:
        """The WorkflowTemplate or CronWorkflow of `workflow` for an argo `target`."""
        workflow = apply_defaults(workflow)
        ctx = self.context(workflow, target, environment)
        meta = workflow.metadata
        resource = f"{meta.tenant}-{meta.name}"
        namespace = target.namespace or "default"
        ctx.record("dataDocument", "/spec")

        main = self._main(workflow, ctx)
        templates = [main, *ctx.templates.values()]
        spec: dict[str, Any] = {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "document", "value": "{}"}]},
            "podGC": {"strategy": "OnPodCompletion"},
            "workflowMetadata": {"labels": self._labels(workflow)},
        }
        body = workflow.spec
        if body.timeout is not None:
            ctx.record("timeout", "/spec/timeout")
            spec["activeDeadlineSeconds"] = _seconds(body.timeout.seconds)
        if body.retention is not None:
            ctx.record("retention", "/spec/retention")
            spec["ttlStrategy"] = {"secondsAfterCompletion": _seconds(body.retention.seconds)}
        exit_handler = self._exit_handler(workflow, ctx)
        if exit_handler is not None:
            spec["onExit"] = exit_handler["name"]
            templates.append(exit_handler)
        templates.extend(t for t in ctx.templates.values() if t not in templates)
        spec["templates"] = templates
        harden(spec, resource)
        self._record_unrendered(workflow, ctx)
        metrics = template_metrics(workflow, namespace)  # for its slo and alerts (metrics.py)
        if metrics is not None:
            spec["metrics"] = metrics

        metadata = {
            "name": resource,
            "namespace": namespace,
            "labels": self._labels(workflow),
            "annotations": {**self._annotations(workflow, ctx), **monitoring_annotation(workflow)},
        }
        manifest: dict[str, Any]
        if body.schedule is not None:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "CronWorkflow",
                "metadata": metadata,
                "spec": self._cron(workflow, spec, ctx),
            }
        else:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "WorkflowTemplate",
                "metadata": metadata,
                "spec": spec,
            }
        document: dict[str, Any] = {"kind": "argo", "manifests": [manifest]}
        document["identity"] = identity_manifests(resource, namespace, self._labels(workflow))
        if target.delivery == "kubernetes":
            ctx.record("identity.kubernetes", "/spec")
        if body.triggers:
            document["events"] = self._events(workflow, resource, namespace, ctx)
        return Artifact(
            workflow=workflow.key,
            version=meta.version,
            target=target.name,
            engine=self.engine,
            resource=resource,
            document=document,
            support=tuple(ctx.support),
            write_files=_write_files,
        )

    # -- step types (each registers its node template and returns its name) --

    def task(self, step: TaskStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("task", path)
        task_template = self._task_template(step, path, actx)
        call: dict[str, Any] = {
            "name": "run",
            "template": task_template,
            "arguments": {"parameters": self._task_arguments(step, _DOC)},
        }
        result = "jsonpath(steps.run.outputs.parameters.result, '$')"
        error = "steps.run.outputs.parameters.error"
        export = None
        if step.compensation:
            export = self._register_compensation(step, path, actx)
        return self._node(step, path, actx, [[call]], result, step.result_path, error, export)

    def choice(self, step: ChoiceStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("choice", path)
        exits: list[_Exit] = []
        earlier: list[str] = []
        for index, rule in enumerate(step.rules):
            pointer = f"{path}/rules/{index}/when"
            self._record_condition(rule.when, pointer, ctx)
            expression = condition_expression(rule.when)
            when = " && ".join([*(f"!{_parenthesized(e)}" for e in earlier), expression])
            exits.append(self._goto(rule.next, when, _UNCHANGED, actx))
            earlier.append(expression)
        if step.default is not None:
            when = " && ".join(f"!{_parenthesized(e)}" for e in earlier)
            exits.append(self._goto(step.default, when, _UNCHANGED, actx))
        return self._finish(step, actx, [], exits, _UNCHANGED)

    def parallel(self, step: ParallelStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("parallel", path)
        row = []
        for index, branch in enumerate(step.branches):
            pointer = f"{path}/branches/{index}"
            prefix = f"{actx.scope.prefix}{step.name}-b{index}-"
            start = self._scope(pointer, prefix, branch.steps, branch.start, actx)
            row.append(
                {
                    "name": f"branch{index}",
                    "template": start,
                    "arguments": {
                        "parameters": [{"name": "document", "value": "{{" + _DOC + "}}"}]
                    },
                }
            )
        result = (
            "["
            + ", ".join(
                f"jsonpath(steps.branch{i}.outputs.parameters.document, '$')"
                for i in range(len(step.branches))
            )
            + "]"
        )
        return self._node(step, path, actx, [row], result, step.result_path, "'BranchFailed'")

    def map(self, step: MapStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("map", path)
        items = _read(step.items)
        if step.batch_size is not None:
            ctx.record("map.batchSize", f"{path}/batchSize")
            items = f"sprig.chunk({step.batch_size}, {items})"
        prefix = f"{actx.scope.prefix}{step.name}-"
        start = self._scope(path, prefix, step.steps, step.start, actx)
        call = {
            "name": "iterate",
            "template": start,
            "arguments": {"parameters": [{"name": "document", "value": "{{item}}"}]},
            # Each item as JSON text, so that `{{item}}` is a JSON document whatever its type.
            "withParam": _tag(f"toJson(map({items}, {{toJson(#)}}))"),
        }
        result = "jsonpath(steps.iterate.outputs.parameters.document, '$')"
        extra: dict[str, Any] = {}
        if step.max_concurrency is not None:
            ctx.record("map.maxConcurrency", f"{path}/maxConcurrency")
            extra["parallelism"] = step.max_concurrency
        return self._node(
            step, path, actx, [[call]], result, step.result_path, "'IterationFailed'", extra=extra
        )

    def wait(self, step: WaitStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        name = _template_name(f"wait-{actx.scope.prefix}{step.name}")
        if step.duration is not None:
            ctx.record("wait.duration", f"{path}/duration")
            actx.add({"name": name, "suspend": {"duration": _go_duration(step.duration.seconds)}})
            rows: list[list[dict[str, Any]]] = [[{"name": "run", "template": name}]]
        else:
            assert step.until is not None
            ctx.record("wait.until", f"{path}/until")
            actx.add(
                {
                    "name": name,
                    "inputs": {"parameters": [{"name": "seconds"}]},
                    "suspend": {"duration": "{{inputs.parameters.seconds}}"},
                }
            )
            seconds = actx.add(_seconds_until_template())
            rows = [
                [
                    {
                        "name": "delay",
                        "template": seconds,
                        "arguments": {
                            "parameters": [{"name": "timestamp", "value": _tag(_read(step.until))}]
                        },
                    }
                ],
                [
                    {
                        "name": "run",
                        "template": name,
                        "arguments": {
                            "parameters": [
                                {"name": "seconds", "value": "{{steps.delay.outputs.result}}"}
                            ]
                        },
                    }
                ],
            ]
        return self._node(step, path, actx, rows, None, None, "'Error'")

    def approval(self, step: ApprovalStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("approval", path)
        name = _template_name(f"approval-{actx.scope.prefix}{step.name}")
        suspend: dict[str, Any] = {}
        if step.timeout is not None:
            ctx.record("approval.timeout", f"{path}/timeout")
            suspend["duration"] = _go_duration(step.timeout.seconds)
        if step.approvers is not None:
            ctx.record("approval.approvers", f"{path}/approvers")
        actx.add(
            {
                "name": name,
                "metadata": {"annotations": {f"{LABEL_PREFIX}/signal": step.signal}},
                "suspend": suspend,
                "outputs": {
                    "parameters": [
                        {
                            "name": "approved",
                            "enum": ["true", "false"],
                            "valueFrom": {"supplied": {}, "default": "timeout"},
                        },
                        {"name": "by", "valueFrom": {"supplied": {}, "default": ""}},
                    ]
                },
            }
        )
        row = [{"name": "run", "template": name}]
        approved = "steps.run.outputs.parameters.approved"
        doc = _UNCHANGED
        exits: list[_Exit] = []
        if step.next is not None:
            exits.append(self._goto(step.next, f"{approved} == 'true'", doc, actx))
        rejected = f"{approved} == 'false'"
        rejection = next(
            (c for c in step.catch if "ApprovalRejected" in c.errors or "*" in c.errors), None
        )
        for index in range(len(step.catch)):
            ctx.record("catch", f"{path}/catch/{index}")
        if rejection is not None:
            error = "{'error': 'ApprovalRejected', 'by': steps.run.outputs.parameters.by}"
            exits.append(
                self._goto(
                    rejection.next, rejected, _write(_DOC, rejection.result_path, error), actx
                )
            )
        else:
            exits.append(self._fail_exit(rejected, "'ApprovalRejected'", "'approval rejected'"))
        timed_out = f"{approved} != 'true' && {approved} != 'false'"
        if step.on_timeout is not None:
            exits.append(self._goto(step.on_timeout, timed_out, doc, actx))
        else:
            exits.append(self._fail_exit(timed_out, "'Timeout'", "'no answer before timeout'"))
        return self._finish(step, actx, [row], exits, doc)

    def succeed(self, step: SucceedStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("succeed", path)
        noop = actx.add({"name": "cpl-succeed", "suspend": {"duration": "0"}})
        return self._finish(step, actx, [[{"name": "run", "template": noop}]], [], _UNCHANGED)

    def fail(self, step: FailStep, path: str, ctx: RenderContext) -> str:
        actx = _ctx(ctx)
        ctx.record("fail", path)
        failing = actx.add(_fail_template())
        call = {
            "name": "run",
            "template": failing,
            "arguments": {
                "parameters": [
                    {"name": "error", "value": step.error or "Failed"},
                    {"name": "cause", "value": step.cause or ""},
                ]
            },
        }
        return self._finish(step, actx, [[call]], [], None)

    # -- scopes --

    def _main(self, workflow: Workflow, ctx: ArgoContext) -> dict[str, Any]:
        body = workflow.spec
        inputs = {"parameters": [{"name": "document"}]}
        if body.start is not None:
            start = self._scope("/spec", "", body.steps, body.start, ctx)
            call = {
                "name": "start",
                "template": start,
                "arguments": {"parameters": [{"name": "document", "value": "{{" + _DOC + "}}"}]},
            }
            return {"name": "main", "inputs": inputs, "steps": [[call]]}
        ctx.record("dag", "/spec/steps")
        return {"name": "main", "inputs": inputs, "dag": {"tasks": self._dag(body.steps, ctx)}}

    def _scope(
        self, pointer: str, prefix: str, steps: list[Step], start: str, ctx: ArgoContext
    ) -> str:
        """Render the nodes reachable from `start` (state-machine form); the start node's name."""
        scope = _Scope(
            pointer=pointer,
            prefix=prefix,
            steps={s.name: s for s in steps},
            indexes={s.name: i for i, s in enumerate(steps)},
            dag=False,
            nested=bool(ctx.scopes),
        )
        ctx.scopes.append(scope)
        try:
            seen = {start}
            queue = [start]
            while queue:
                name = queue.pop(0)
                step = scope.steps[name]
                self.step(step, scope.path(name), ctx)
                for _, target in transitions(step):
                    if target not in seen and target in scope.steps:
                        seen.add(target)
                        queue.append(target)
        finally:
            ctx.scopes.pop()
        return scope.node(start)

    def _dag(self, steps: list[Step], ctx: ArgoContext) -> list[dict[str, Any]]:
        scope = _Scope(
            pointer="/spec",
            prefix="",
            steps={s.name: s for s in steps},
            indexes={s.name: i for i, s in enumerate(steps)},
            dag=True,
            nested=False,
        )
        compensations = compensation_targets(steps)
        tasks = []
        ctx.scopes.append(scope)
        try:
            for step in steps:
                if step.name in compensations:
                    continue
                node = self.step(step, scope.path(step.name), ctx)
                dependencies = list(step.depends_on or [])
                task: dict[str, Any] = {
                    "name": step.name,
                    "template": node,
                    "arguments": {
                        "parameters": [{"name": "document", "value": _dag_document(dependencies)}]
                    },
                }
                if dependencies:
                    task["dependencies"] = dependencies
                tasks.append(task)
        finally:
            ctx.scopes.pop()
        return tasks

    # -- node templates --

    def _node(
        self,
        step: TaskStep | ParallelStep | MapStep | WaitStep,
        path: str,
        ctx: ArgoContext,
        rows: list[list[dict[str, Any]]],
        result: str | None,
        result_path: DataPath | None,
        error: str,
        export: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A node for a step that completes or fails (task, parallel, map, wait)."""
        scope = ctx.scope
        updated = _write(_DOC, result_path, result) if result is not None else _UNCHANGED
        deciding = [s["name"] for s in rows[-1]]
        succeeded = " && ".join(f"{_steps_ref(n)}.status == 'Succeeded'" for n in deciding)
        exits: list[_Exit] = []
        if scope.dag:
            if step.catch:
                ctx.record("catch.dag", f"{path}/catch")
            if step.when is not None:
                ctx.record("dag.when", f"{path}/when")
                self._record_condition(step.when, f"{path}/when", ctx)
                for call in rows[0]:
                    call["when"] = _tag(condition_expression(step.when))
                skipped = _write(_DOC, result_path, "nil") if result is not None else updated
                first = rows[0][0]["name"]
                updated = f"({_steps_ref(first)}.status == 'Skipped' ? {skipped} : {updated})"
            return self._finish(step, ctx, rows, exits, updated, export, extra)

        if step.catch:
            for call in rows[-1]:
                call["continueOn"] = {"failed": True, "error": True}
        if step.next is not None:
            exits.append(self._goto(step.next, succeeded if step.catch else None, updated, ctx))
        caught: list[str] = []
        for index, catch in enumerate(step.catch):
            ctx.record("catch", f"{path}/catch/{index}")
            exits.append(self._catch_exit(catch, succeeded, error, caught, ctx))
            if "*" in catch.errors:
                break
        if step.catch and not any("*" in c.errors for c in step.catch):
            unmatched = f"!({succeeded}) && !({error} in {_literal(caught)})"
            exits.append(self._fail_exit(unmatched, error, "'unhandled error'"))
        return self._finish(step, ctx, rows, exits, updated, export, extra)

    def _catch_exit(
        self, catch: Catch, succeeded: str, error: str, caught: list[str], ctx: ArgoContext
    ) -> _Exit:
        failed = f"!({succeeded})"
        if "*" in catch.errors:
            when = failed if not caught else f"{failed} && !({error} in {_literal(caught)})"
        else:
            new = [e for e in catch.errors if e not in caught]
            when = f"{failed} && {error} in {_literal(new)}"
            if caught:
                when += f" && !({error} in {_literal(caught)})"
            caught.extend(new)
        document = _write(_DOC, catch.result_path, f"{{'error': {error}}}")
        if catch.result_path is None:
            document = _UNCHANGED
        return self._goto(catch.next, when, document, ctx)

    def _goto(self, target: str, when: str | None, document: str, ctx: ArgoContext) -> _Exit:
        return _Exit(when=when, template=ctx.scope.node(target), document=document)

    def _fail_exit(self, when: str, error: str, cause: str) -> _Exit:
        return _Exit(when=when, template="cpl-fail", failure=(error, cause))

    def _finish(
        self,
        step: Step,
        ctx: ArgoContext,
        rows: list[list[dict[str, Any]]],
        exits: list[_Exit],
        final: str | None,
        export: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Assemble and register the node template of `step`; `final` is its document after."""
        scope = ctx.scope
        name = scope.node(step.name)
        last_row: list[dict[str, Any]] = []
        for index, out in enumerate(exits):
            call: dict[str, Any] = {"name": f"then{index}", "template": out.template}
            if out.failure is not None:
                ctx.add(_fail_template())
                error, cause = out.failure
                call["arguments"] = {
                    "parameters": [
                        {"name": "error", "value": _tag(error)},
                        {"name": "cause", "value": _tag(cause)},
                    ]
                }
            else:
                assert out.document is not None
                value = (
                    "{{" + _DOC + "}}"
                    if out.document == _UNCHANGED
                    else _tag(f"toJson({out.document})")
                )
                call["arguments"] = {"parameters": [{"name": "document", "value": value}]}
            if out.when is not None:
                call["when"] = _tag(out.when)
            last_row.append(call)
        template: dict[str, Any] = {
            "name": name,
            "inputs": {"parameters": [{"name": "document"}]},
            "steps": [*rows, *([last_row] if last_row else [])],
        }
        outputs = []
        if (scope.nested or scope.dag) and final is not None:
            document = f"toJson({final})"
            for index in range(len(exits) - 1, -1, -1):
                if exits[index].failure is None:
                    then = _steps_ref(f"then{index}")
                    document = (
                        f"{then}.status == 'Succeeded' ? "
                        f"{then}.outputs.parameters.document : {document}"
                    )
            outputs.append({"name": "document", "valueFrom": {"expression": document}})
        if export is not None and final is not None:
            outputs.append(
                {
                    "name": "compensable",
                    "globalName": export,
                    "valueFrom": {
                        "expression": f"steps.run.status == 'Succeeded' ? toJson({final}) : ''"
                    },
                }
            )
        if outputs:
            template["outputs"] = {"parameters": outputs}
        if extra:
            template.update(extra)
        ctx.add(template)
        return name

    # -- tasks --

    def _task_template(self, step: TaskStep, path: str, ctx: ArgoContext) -> str:
        binding = ctx.activity(step.activity, step.name)
        name = _template_name(f"task-{ctx.scope.prefix}{step.name}")
        container: dict[str, Any] = {k: _plain(binding[k]) for k in _BINDING_KEYS if k in binding}
        env = [{"name": "CPL_INPUT", "value": "{{inputs.parameters.input}}"}]
        parameters: list[dict[str, Any]] = [{"name": "input"}]
        if step.idempotency_key is not None:
            ctx.record("task.idempotencyKey", f"{path}/idempotencyKey")
            env.append({"name": "CPL_IDEMPOTENCY_KEY", "value": "{{inputs.parameters.key}}"})
            parameters.append({"name": "key"})
        env.extend(_binding_env(binding.get("env")))
        container["env"] = env
        template: dict[str, Any] = {
            "name": name,
            "metadata": {"labels": {f"{LABEL_PREFIX}/activity": _label_value(step.activity)}},
            "inputs": {"parameters": parameters},
            "container": container,
            "outputs": {
                "parameters": [
                    {"name": "result", "valueFrom": {"path": RESULT_FILE, "default": "null"}},
                    {"name": "error", "valueFrom": {"path": ERROR_FILE, "default": "Error"}},
                ]
            },
        }
        if step.timeout is not None:
            ctx.record("task.timeout", f"{path}/timeout")
            template["activeDeadlineSeconds"] = _seconds(step.timeout.seconds)
        if step.heartbeat is not None:
            ctx.record("task.heartbeat", f"{path}/heartbeat")
        if step.circuit_breaker is not None:
            ctx.record("task.circuitBreaker", f"{path}/circuitBreaker")
        if step.retry is not None and step.retry.max_attempts > 1:
            template["retryStrategy"] = self._retry(step.retry, f"{path}/retry", ctx)
        return ctx.add(template)

    def _task_arguments(self, step: TaskStep, doc: str) -> list[dict[str, Any]]:
        if step.parameters is None:
            value = "{{" + doc + "}}" if doc == _DOC else _tag(doc)
        else:
            value = _tag(f"toJson({_resolve(step.parameters, doc)})")
        arguments = [{"name": "input", "value": value}]
        if step.idempotency_key is not None:
            arguments.append(
                {"name": "key", "value": _tag(f"string({_read(step.idempotency_key, doc)})")}
            )
        return arguments

    def _retry(self, retry: Retry, path: str, ctx: RenderContext) -> dict[str, Any]:
        ctx.record("retry", path)
        strategy: dict[str, Any] = {"limit": retry.max_attempts - 1, "retryPolicy": "Always"}
        backoff: dict[str, Any] = {}
        if retry.initial_interval is not None:
            ctx.record("retry.backoff", f"{path}/initialInterval")
            backoff["duration"] = _go_duration(retry.initial_interval.seconds)
        if retry.backoff_rate is not None:
            rate = retry.backoff_rate
            if rate != int(rate):
                ctx.record("retry.backoffRate.fraction", f"{path}/backoffRate")
            backoff["factor"] = max(1, round(rate))
        if retry.max_interval is not None:
            ctx.record("retry.maxInterval", f"{path}/maxInterval")
            backoff["cap"] = _go_duration(retry.max_interval.seconds)
        if retry.jitter == "full":
            ctx.record("retry.jitter", f"{path}/jitter")
        if retry.non_retryable:
            ctx.record("retry.nonRetryable", f"{path}/nonRetryable")
        if backoff:
            strategy["backoff"] = backoff
        return strategy

    def _register_compensation(self, step: TaskStep, path: str, ctx: ArgoContext) -> str | None:
        """The global output name exporting the document after `step`, for its compensation."""
        ctx.record("task.compensation", f"{path}/compensation")
        on_error = ctx.workflow.spec.on_error
        compensation = ctx.scope.steps.get(step.compensation or "")
        if on_error is None or not on_error.compensate or not isinstance(compensation, TaskStep):
            return None
        export = _template_name(f"cpl-done-{ctx.scope.prefix}{step.name}")
        comp_path = ctx.scope.path(compensation.name)
        task_template = self._task_template(compensation, comp_path, ctx)
        ctx.compensations.append(_Compensation(compensation, task_template, export, comp_path))
        return export

    # -- exit handler, schedule, metadata --

    def _exit_handler(self, workflow: Workflow, ctx: ArgoContext) -> dict[str, Any] | None:
        on_error = workflow.spec.on_error
        if on_error is None:
            return None
        failed = "{{=workflow.status != 'Succeeded'}}"
        rows: list[list[dict[str, Any]]] = []
        if on_error.compensate:
            ctx.record("onError.compensate", "/spec/onError/compensate")
            for index, comp in enumerate(reversed(ctx.compensations)):
                doc = f"workflow.outputs.parameters['{comp.export}']"
                rows.append(
                    [
                        {
                            "name": f"compensate{index}",
                            "template": comp.task_template,
                            "arguments": {"parameters": self._task_arguments(comp.step, doc)},
                            "when": failed,
                            "continueOn": {"failed": True, "error": True},
                        }
                    ]
                )
        if on_error.dead_letter is not None:
            ctx.record("onError.deadLetter", "/spec/onError/deadLetter")
            queue = ctx.queue(on_error.dead_letter)
            template = ctx.add(_dead_letter_template(workflow, queue))
            rows.append([{"name": "dead-letter", "template": template, "when": failed}])
        if not rows:
            return None
        return {"name": "cpl-on-exit", "steps": rows}

    def _cron(self, workflow: Workflow, spec: dict[str, Any], ctx: ArgoContext) -> dict[str, Any]:
        schedule = workflow.spec.schedule
        assert schedule is not None
        ctx.record("schedule", "/spec/schedule")
        overlap = schedule.overlap or "skip"
        cron: dict[str, Any] = {
            "schedules": [schedule.cron],
            "concurrencyPolicy": _OVERLAP[overlap],
            "workflowSpec": spec,
            "workflowMetadata": spec.pop("workflowMetadata"),
        }
        if schedule.timezone is not None:
            ctx.record("schedule.timezone", "/spec/schedule/timezone")
            cron["timezone"] = schedule.timezone
        if schedule.overlap is not None:
            feature = (
                "schedule.overlap.buffer-one" if overlap == "buffer-one" else "schedule.overlap"
            )
            ctx.record(feature, "/spec/schedule/overlap")
        if overlap == "buffer-one":
            mutex = f"{workflow.metadata.tenant}-{workflow.metadata.name}"
            spec["synchronization"] = {"mutexes": [{"name": mutex}]}
        return cron

    def _events(
        self, workflow: Workflow, resource: str, namespace: str, ctx: ArgoContext
    ) -> list[dict[str, Any]]:
        """The Argo Events manifests of the triggers (argo/events.py), with their support."""
        for index, trigger in enumerate(workflow.spec.triggers):
            pointer = f"/spec/triggers/{index}"
            ctx.record("triggers", pointer)
            if workflow.spec.schedule is not None:
                ctx.record("triggers.scheduled", pointer)
            if ctx.target.delivery == "kubernetes":
                ctx.record("triggers.kubernetes", pointer)
            for key in mixed_filters(trigger):
                ctx.record("triggers.filters.mixed", f"{pointer}/filters/{key}")
        if workflow.spec.schedule is not None:
            return []  # a CronWorkflow is no template a Sensor can submit from
        return render_event_manifests(workflow, resource, namespace, self._labels(workflow))

    def _labels(self, workflow: Workflow) -> dict[str, str]:
        meta = workflow.metadata
        return {
            f"{LABEL_PREFIX}/managed": "true",
            f"{LABEL_PREFIX}/tenant": meta.tenant,
            f"{LABEL_PREFIX}/workflow": meta.name,
            f"{LABEL_PREFIX}/version": _label_value(meta.version),
            f"{LABEL_PREFIX}/classification": meta.classification,
        }

    def _annotations(self, workflow: Workflow, ctx: ArgoContext) -> dict[str, str]:
        meta = workflow.metadata
        annotations = {
            f"{LABEL_PREFIX}/owner": meta.owner,
            f"{LABEL_PREFIX}/version": meta.version,
            f"{LABEL_PREFIX}/target": ctx.target.name,
        }
        if meta.description:
            annotations[f"{LABEL_PREFIX}/description"] = meta.description
        if meta.compliance:
            annotations[f"{LABEL_PREFIX}/compliance"] = ",".join(meta.compliance)
        if meta.labels:
            annotations[f"{LABEL_PREFIX}/labels"] = json.dumps(meta.labels, sort_keys=True)
        security = workflow.spec.security
        if security is not None and security.encryption is not None:
            annotations[f"{LABEL_PREFIX}/encryption-key"] = ctx.key(security.encryption.key)
        return annotations

    def _record_unrendered(self, workflow: Workflow, ctx: RenderContext) -> None:
        """Support records for spec sections that have no Argo counterpart."""
        body = workflow.spec
        if body.input is not None and body.input.schema_ is not None:
            ctx.record("input.schema", "/spec/input/schema")
        if body.security is not None and body.security.encryption is not None:
            ctx.record("security.encryption", "/spec/security/encryption")
        if body.payload is not None and body.payload.offload is not None:
            ctx.store(body.payload.offload.store)
            ctx.record("payload.offload", "/spec/payload/offload")
        without_rules_file(ctx.features, ctx.target)  # no rules delivered: no exact alert
        record_governance(workflow, ctx)

    def _record_condition(self, condition: Condition, pointer: str, ctx: RenderContext) -> None:
        for operator, where in _comparisons(condition, pointer):
            ctx.record(f"condition.{operator}", where)


# --- helpers ----------------------------------------------------------------------------------


def _write_files(artifact: Artifact) -> dict[str, str]:
    """`<namespace>/<resource>.yaml`, checked against Argo's schema first: files are what
    leaves cpl (`cpl render -o`), so nothing hera's models would drop gets out."""
    (manifest,) = artifact.document["manifests"]
    validate_manifest(manifest)
    text = yaml.dump(manifest, Dumper=_DUMPER, sort_keys=True, allow_unicode=True, width=100)
    folder = manifest["metadata"]["namespace"]
    files = {f"{folder}/{artifact.resource}.yaml": text}
    if artifact.document.get("events"):
        files[f"{folder}/{artifact.resource}{EVENTS_SUFFIX}"] = events_text(
            artifact.document["events"]
        )
    if artifact.document.get("identity"):
        files[f"{folder}/{artifact.resource}{IDENTITY_SUFFIX}"] = identity_text(
            artifact.document["identity"]
        )
    return files


def _dag_document(dependencies: list[str]) -> str:
    """The document a DAG step starts from: the input, or its dependencies' documents merged."""
    if not dependencies:
        return "{{" + _DOC + "}}"
    if len(dependencies) == 1:
        return "{{tasks." + dependencies[0] + ".outputs.parameters.document}}"
    documents = ", ".join(
        f"jsonpath(tasks['{d}'].outputs.parameters.document, '$')" for d in dependencies
    )
    return _tag(f"toJson(sprig.mergeOverwrite({documents}))")


def _seconds(seconds: float) -> int:
    return max(1, round(seconds))


def _label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:63]
    return cleaned.strip("._-")


def _binding_env(env: Any) -> list[dict[str, Any]]:
    if isinstance(env, dict):
        return [{"name": str(k), "value": str(v)} for k, v in sorted(env.items())]
    if isinstance(env, list):
        return [_plain(item) for item in env]
    return []


def _plain(value: Any) -> Any:
    """A copy of an environment value holding plain JSON values only (the manifest must not
    share objects with the environment, nor with itself: YAML would write them as aliases)."""
    return json.loads(json.dumps(value))


def _fail_template() -> dict[str, Any]:
    return {
        "name": "cpl-fail",
        "inputs": {"parameters": [{"name": "error"}, {"name": "cause"}]},
        "container": {
            "image": UTILITY_IMAGE,
            "command": ["sh", "-c"],
            "args": ['echo "$CPL_ERROR: $CPL_CAUSE" >&2; exit 1'],
            "env": [
                {"name": "CPL_ERROR", "value": "{{inputs.parameters.error}}"},
                {"name": "CPL_CAUSE", "value": "{{inputs.parameters.cause}}"},
            ],
        },
    }


_SECONDS_UNTIL = """\
import datetime
until = datetime.datetime.fromisoformat("{{inputs.parameters.timestamp}}".replace("Z", "+00:00"))
now = datetime.datetime.now(datetime.timezone.utc)
print(max(0, int((until - now).total_seconds())))
"""


def _seconds_until_template() -> dict[str, Any]:
    return {
        "name": "cpl-seconds-until",
        "inputs": {"parameters": [{"name": "timestamp"}]},
        "script": {"image": SCRIPT_IMAGE, "command": ["python"], "source": _SECONDS_UNTIL},
    }


def _dead_letter_template(workflow: Workflow, queue: str) -> dict[str, Any]:
    env = {
        "CPL_QUEUE": queue,
        "CPL_WORKFLOW": workflow.key,
        "CPL_VERSION": workflow.metadata.version,
        "CPL_RUN_ID": "{{workflow.uid}}",
        "CPL_STATUS": "{{workflow.status}}",
        "CPL_FAILURES": "{{workflow.failures}}",
        "CPL_INPUT": "{{workflow.parameters.document}}",
    }
    return {
        "name": "cpl-dead-letter",
        "container": {
            "image": DEAD_LETTER_IMAGE,
            "env": [{"name": k, "value": v} for k, v in env.items()],
        },
    }


def engine_names(artifact: Artifact) -> dict[str, str]:
    """The names a workflow's manifests take in Kubernetes and in the GitOps folder."""
    (manifest,) = artifact.document["manifests"]
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    # the file name as _write_files derives it, without formatting the file
    file = f"{namespace}/{artifact.resource}.yaml"
    return {"Argo object": f"{namespace}/{name}", "manifest file": file}
