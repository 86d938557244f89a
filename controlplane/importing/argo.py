"""Argo WorkflowTemplate / CronWorkflow → a spec in DAG or steps (state-machine) form.

The entrypoint decides the form: a `dag` template becomes a DAG (tasks → steps,
`dependencies` → `dependsOn`), a `steps` template a state machine (each row in order; a row of
several steps a parallel step). A task calling a container template becomes a `task` step
whose activity is bound to the container (image, command, args) for Argo; a `suspend` with a
duration a `wait`. Each task keeps its result at `$.<task name>`, which is where
`{{tasks.X.outputs.result}}` (`when`, `withParam`) reads it from in the spec.

Findings locate their construct with a YAML path into the manifest
(`spec.templates[1].dag.tasks[0].when`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import ConfigError
from controlplane.importing.fidelity import FidelityReport
from controlplane.importing.names import Namer, slug

Document = dict[str, Any]

_KINDS = ("WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate", "Workflow")
_CONTAINER_KEYS = ("image", "command", "args", "workingDir", "imagePullPolicy")
_OUTPUT = re.compile(r"^\{\{\s*(?:tasks|steps)\.([A-Za-z0-9_-]+)\.outputs\.result\s*\}\}$")
_WHEN = re.compile(
    r"^\s*(\{\{\s*(?:tasks|steps)\.[A-Za-z0-9_-]+\.outputs\.result\s*\}\})\s*"
    r"(==|!=|>=|<=|>|<)\s*(.+?)\s*$"
)
_SYMBOLS = {"==": "eq", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
_DEPENDS = re.compile(r"^[A-Za-z0-9_-]+(\.Succeeded)?$")
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_OVERLAP = {"Forbid": "skip", "Allow": "allow-all"}
_TOP_IGNORED = {"entrypoint", "templates", "arguments", "activeDeadlineSeconds", "ttlStrategy"}


@dataclass
class ArgoImport:
    spec: Document
    description: str | None
    activities: dict[str, Document]
    """Logical activity name → its argo binding (image, command, args...)."""
    report: FidelityReport
    name: str | None = None


def is_argo(document: Any) -> bool:
    """Whether a parsed document is an Argo manifest."""
    return (
        isinstance(document, dict)
        and str(document.get("apiVersion", "")).startswith("argoproj.io/")
        and document.get("kind") in _KINDS
    )


def import_argo(manifest: Any, source: str) -> ArgoImport:
    kind = manifest.get("kind")
    if kind not in ("WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate"):
        raise ConfigError(
            f"{source}: a {kind} cannot be imported: import its WorkflowTemplate or CronWorkflow"
        )
    return _Importer(source).run(manifest)


@dataclass
class _Templates:
    by_name: dict[str, Document]
    index: dict[str, int]

    def at(self, name: str) -> tuple[Document | None, str]:
        if name not in self.by_name:
            return None, ""
        return self.by_name[name], f"spec.templates[{self.index[name]}]"


@dataclass
class _Importer:
    source: str
    report: FidelityReport = field(init=False)
    namer: Namer = field(default_factory=Namer)
    activities: dict[str, Document] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.report = FidelityReport(source=self.source, kind="argo")

    def run(self, manifest: Document) -> ArgoImport:
        metadata = manifest.get("metadata") or {}
        spec = manifest.get("spec")
        if not isinstance(spec, dict):
            raise ConfigError(f"{self.source}: spec is missing")
        body: Document = {}
        prefix = "spec"
        if manifest["kind"] == "CronWorkflow":
            self._schedule(spec, body)
            workflow_spec = spec.get("workflowSpec")
            if not isinstance(workflow_spec, dict):
                raise ConfigError(f"{self.source}: spec.workflowSpec is missing")
            spec, prefix = workflow_spec, "spec.workflowSpec"
        templates = spec.get("templates") or []
        if not isinstance(templates, list) or not templates:
            raise ConfigError(f"{self.source}: {prefix}.templates is missing")
        self.templates = _Templates(
            {t["name"]: t for t in templates if isinstance(t, dict) and "name" in t},
            {t["name"]: i for i, t in enumerate(templates) if isinstance(t, dict) and "name" in t},
        )
        self.prefix = prefix
        entry = spec.get("entrypoint")
        template, where = self.templates.at(str(entry))
        if template is None:
            raise ConfigError(f"{self.source}: {prefix}.entrypoint '{entry}' is not a template")
        where = self._where(where)
        if isinstance(template.get("dag"), dict):
            self.report.exact("dag", f"{where}.dag")
            body["steps"] = self.dag(template["dag"], f"{where}.dag")
        elif isinstance(template.get("steps"), list):
            self.report.exact("steps", f"{where}.steps")
            start, steps = self.rows(template["steps"], f"{where}.steps")
            body["start"] = start
            body["steps"] = steps
        else:
            # a single container as the whole workflow: one task
            step = self.call(str(entry), "main", f"{prefix}.entrypoint")
            if step is None:
                raise ConfigError(f"{self.source}: the entrypoint template cannot be imported")
            body["start"] = step["name"]
            body["steps"] = [{**step, "end": True}]
        if self.activities:
            self.report.approximated(
                "container.contract",
                f"{prefix}.templates",
                "cpl runs each container with its container contract: the input in the "
                "CPL_INPUT environment variable, the result read from /tmp/cpl/result.json "
                "(not parameters and stdout)",
            )
        if isinstance(spec.get("activeDeadlineSeconds"), int):
            body["timeout"] = f"{spec['activeDeadlineSeconds']}s"
            self.report.exact("timeout", f"{prefix}.activeDeadlineSeconds")
        ttl = (spec.get("ttlStrategy") or {}).get("secondsAfterCompletion")
        if isinstance(ttl, int):
            body["retention"] = f"{ttl}s"
            self.report.exact("retention", f"{prefix}.ttlStrategy.secondsAfterCompletion")
        if (spec.get("arguments") or {}).get("parameters"):
            self.report.approximated(
                "arguments",
                f"{prefix}.arguments.parameters",
                "workflow parameters are not declared in the spec: a run's input document "
                "carries them",
            )
        for key in sorted(set(spec) - _TOP_IGNORED):
            if key in ("podGC", "workflowMetadata"):
                continue
            self.report.unsupported(key, f"{prefix}.{key}", "the spec has no equivalent: left out")
        self.report.renamed = dict(self.namer.names)
        description = (metadata.get("annotations") or {}).get("workflows.argoproj.io/description")
        return ArgoImport(
            spec={k: body[k] for k in _BODY_ORDER if k in body},
            description=description if isinstance(description, str) else None,
            activities=dict(self.activities),
            report=self.report,
            name=metadata.get("name") or metadata.get("generateName", "").rstrip("-") or None,
        )

    def _where(self, template_path: str) -> str:
        return template_path.replace("spec.", f"{self.prefix}.", 1)

    # -- schedule ---------------------------------------------------------------------------

    def _schedule(self, spec: Document, body: Document) -> None:
        schedules = spec.get("schedules") or ([spec["schedule"]] if "schedule" in spec else [])
        if not schedules:
            raise ConfigError(f"{self.source}: spec.schedule is missing")
        where = "spec.schedules[0]" if "schedules" in spec else "spec.schedule"
        schedule: Document = {"cron": str(schedules[0])}
        self.report.exact("schedule", where)
        for index in range(1, len(schedules)):
            self.report.unsupported(
                "schedule", f"spec.schedules[{index}]", "a spec has one schedule: left out"
            )
        if isinstance(spec.get("timezone"), str):
            schedule["timezone"] = spec["timezone"]
            self.report.exact("schedule.timezone", "spec.timezone")
        policy = spec.get("concurrencyPolicy")
        if policy in _OVERLAP:
            schedule["overlap"] = _OVERLAP[policy]
            self.report.exact("schedule.overlap", "spec.concurrencyPolicy")
        elif policy is not None:
            schedule["overlap"] = "skip"
            self.report.approximated(
                "schedule.overlap",
                "spec.concurrencyPolicy",
                f"{policy}: the spec cannot replace a running run; overlapping firings are "
                "skipped (Forbid)",
            )
        for key in (
            "startingDeadlineSeconds",
            "suspend",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
            "stopStrategy",
        ):
            if key in spec:
                self.report.unsupported(
                    f"schedule.{key}", f"spec.{key}", "the spec has no equivalent: left out"
                )
        body["schedule"] = schedule

    # -- DAG --------------------------------------------------------------------------------

    def dag(self, dag: Document, where: str) -> list[Document]:
        tasks = dag.get("tasks") or []
        steps: list[Document] = []
        skipped: dict[str, list[str]] = {}
        for name in [t.get("name") for t in tasks if isinstance(t, dict)]:
            self.namer.name(str(name))
        for index, task in enumerate(tasks):
            here = f"{where}.tasks[{index}]"
            dependencies = self._dependencies(task, here)
            step = self.task(task, here)
            if step is None:
                skipped[task["name"]] = dependencies
                continue
            if dependencies:
                step["dependsOn"] = dependencies
            steps.append(step)
        # a skipped task's dependents depend on what it depended on
        for step in steps:
            if "dependsOn" in step:
                step["dependsOn"] = _without_skipped(step["dependsOn"], skipped, self.namer)
                if not step["dependsOn"]:
                    del step["dependsOn"]
        if not steps:
            raise ConfigError(f"{self.source}: no task of {where} can be imported")
        return [_ordered(s) for s in steps]

    def _dependencies(self, task: Document, here: str) -> list[str]:
        names = list(task.get("dependencies") or [])
        depends = task.get("depends")
        if isinstance(depends, str):
            parts = [p.strip() for p in depends.split("&&")]
            if all(_DEPENDS.match(p) for p in parts):
                names += [p.split(".")[0] for p in parts]
                self.report.exact("dag.depends", f"{here}.depends")
            else:
                self.report.unsupported(
                    "dag.depends",
                    f"{here}.depends",
                    f"'{depends}': only `a && b` (or .Succeeded) maps to dependsOn; left out",
                )
        elif names:
            self.report.exact("dag.dependencies", f"{here}.dependencies")
        return [str(n) for n in names]

    def task(self, task: Document, here: str) -> Document | None:
        """The step of one DAG task or steps entry (None: not importable, reported)."""
        name = self.namer.name(str(task.get("name")))
        template_name = str(task.get("template", ""))
        if "templateRef" in task:
            self.report.unsupported(
                "templateRef", f"{here}.templateRef", "templates of other manifests: skipped"
            )
            return None
        if "withItems" in task:
            self.report.unsupported(
                "withItems",
                f"{here}.withItems",
                "a map iterates over an array of the data document, not a literal list: skipped",
            )
            return None
        if "withParam" in task:
            return self._map(task, name, template_name, here)
        step = self.call(template_name, name, here)
        if step is None:
            return None
        if "when" in task:
            condition = self.condition(str(task["when"]), f"{here}.when")
            if condition is not None:
                step["when"] = condition
        for key in sorted(
            set(task) - {"name", "template", "dependencies", "depends", "when", "arguments"}
        ):
            self.report.unsupported(key, f"{here}.{key}", "the spec has no equivalent: left out")
        if (task.get("arguments") or {}).get("parameters"):
            self.report.approximated(
                "arguments",
                f"{here}.arguments",
                "the container receives the data document in CPL_INPUT (cpl's container "
                "contract), not these parameters",
            )
        return step

    def _map(self, task: Document, name: str, template_name: str, here: str) -> Document | None:
        match = _OUTPUT.match(str(task["withParam"]).strip())
        if match is None:
            self.report.unsupported(
                "withParam",
                f"{here}.withParam",
                "only {{tasks.X.outputs.result}} (kept at $.X) can be iterated: skipped",
            )
            return None
        inner = self.call(template_name, self.namer.fresh(f"{name}-item"), here)
        if inner is None:
            return None
        inner.pop("resultPath", None)
        source = self.namer.names.get(match.group(1), slug(match.group(1)))
        step: Document = {
            "name": name,
            "type": "map",
            "items": f"$.{source}",
            "start": inner["name"],
            "steps": [{**inner, "end": True}],
            "resultPath": f"$.{name}",
        }
        template, _ = self.templates.at(template_name)
        if template is not None and isinstance(template.get("parallelism"), int):
            step["maxConcurrency"] = template["parallelism"]
        self.report.approximated(
            "withParam",
            f"{here}.withParam",
            f"a map over $.{source}: each item is the iteration's document (CPL_INPUT), not "
            "{{item}} in the arguments",
        )
        return step

    def call(self, template_name: str, name: str, here: str) -> Document | None:
        """A step that runs the template `template_name` (container or suspend)."""
        template, where = self.templates.at(template_name)
        if template is None:
            self.report.unsupported("template", here, f"no template '{template_name}': skipped")
            return None
        where = self._where(where)
        if isinstance(template.get("container"), dict):
            return self._container(template, name, where)
        if isinstance(template.get("suspend"), dict):
            duration = _seconds(template["suspend"].get("duration"))
            if duration is None:
                self.report.unsupported(
                    "suspend",
                    f"{where}.suspend",
                    "a suspend without a duration waits for a person: import it as an "
                    "approval by hand; skipped",
                )
                return None
            self.report.exact("suspend", f"{where}.suspend", "a wait step")
            return {"name": name, "type": "wait", "duration": f"{duration}s"}
        kind = next(
            (k for k in ("script", "resource", "dag", "steps", "http") if k in template), "?"
        )
        self.report.unsupported(
            f"template.{kind}",
            where,
            f"a {kind} template is not a container the spec can bind: skipped",
        )
        return None

    def _container(self, template: Document, name: str, where: str) -> Document:
        container = template["container"]
        binding = {k: container[k] for k in _CONTAINER_KEYS if k in container}
        if "image" not in binding:
            raise ConfigError(f"{self.source}: {where}.container has no image")
        activity = self._activity(str(template["name"]), binding)
        step: Document = {"name": name, "type": "task", "activity": activity}
        self.report.exact("container", f"{where}.container", f"activity '{activity}'")
        templated = [
            a for a in binding.get("args", []) + binding.get("command", []) if "{{" in str(a)
        ]
        if templated:
            self.report.approximated(
                "container.args",
                f"{where}.container.args",
                "arguments templated from parameters are kept as written; cpl hands the "
                "container its input in CPL_INPUT",
            )
        for key in sorted(set(container) - set(_CONTAINER_KEYS)):
            self.report.unsupported(
                f"container.{key}", f"{where}.container.{key}", "not part of a binding: left out"
            )
        if isinstance(template.get("activeDeadlineSeconds"), int):
            step["timeout"] = f"{template['activeDeadlineSeconds']}s"
            self.report.exact("task.timeout", f"{where}.activeDeadlineSeconds")
        retry = self._retry(template.get("retryStrategy"), f"{where}.retryStrategy")
        if retry is not None:
            step["retry"] = retry
        step["resultPath"] = f"$.{name}"
        return step

    def _activity(self, template: str, binding: Document) -> str:
        for name, bound in self.activities.items():
            if bound == binding:
                return name
        base = slug(template)
        name, number = base, 1
        while name in self.activities:
            number += 1
            name = f"{base}-{number}"
        self.activities[name] = binding
        return name

    def _retry(self, strategy: Any, where: str) -> Document | None:
        if not isinstance(strategy, dict):
            return None
        limit = strategy.get("limit")
        try:
            attempts = int(str(limit)) + 1 if limit is not None else None
        except ValueError:
            self.report.unsupported("retry.limit", f"{where}.limit", f"'{limit}' is not a count")
            return None
        if attempts is None:
            self.report.unsupported("retry", where, "no limit: Argo retries forever; left out")
            return None
        retry: Document = {"maxAttempts": attempts}
        exact = True
        backoff = strategy.get("backoff") or {}
        duration = _seconds(backoff.get("duration"))
        if duration is not None:
            retry["initialInterval"] = f"{duration}s"
        factor = backoff.get("factor")
        if factor is not None:
            retry["backoffRate"] = float(str(factor))
        cap = _seconds(backoff.get("cap") or backoff.get("maxDuration"))
        if cap is not None:
            retry["maxInterval"] = f"{cap}s"
            if "maxDuration" in backoff and "cap" not in backoff:
                exact = False
        policy = strategy.get("retryPolicy", "OnFailure")
        if policy != "Always":
            exact = False
        if exact:
            self.report.exact("retry", where)
        else:
            self.report.approximated(
                "retry",
                where,
                f"retryPolicy {policy}: cpl renders retryPolicy Always (every failure is "
                "retried); backoff.maxDuration (a total) becomes the interval cap",
            )
        for key in ("expression", "affinity"):
            if key in strategy:
                self.report.unsupported(f"retry.{key}", f"{where}.{key}", "left out")
        return retry

    def condition(self, when: str, where: str) -> Document | None:
        match = _WHEN.match(when)
        if match is None:
            self.report.unsupported(
                "when",
                where,
                f"'{when}': only `{{{{tasks.X.outputs.result}}}} <op> <literal>` maps to a "
                "condition; the step always runs",
            )
            return None
        output, symbol, literal = match.groups()
        task = _OUTPUT.match(output)
        assert task is not None
        source = self.namer.names.get(task.group(1), slug(task.group(1)))
        value = _literal(literal)
        if symbol not in ("==", "!=") and not isinstance(value, int | float):
            self.report.unsupported("when", where, "an ordering of text: the step always runs")
            return None
        self.report.approximated(
            "when",
            where,
            f"reads $.{source}, where the spec keeps the task's result (cpl's container "
            "contract: /tmp/cpl/result.json, not stdout)",
        )
        return {"path": f"$.{source}", _SYMBOLS[symbol]: value}

    # -- steps (state-machine form) ---------------------------------------------------------

    def rows(self, rows: list[Any], where: str) -> tuple[str, list[Document]]:
        """The rows of a steps template as a chain of steps: (start, steps)."""
        for row in rows:
            for item in row if isinstance(row, list) else []:
                if isinstance(item, dict):
                    self.namer.name(str(item.get("name")))
        chain: list[Document] = []  # one step per row, in order
        extra: list[Document] = []  # the steps a choice may skip to are in the chain already
        for index, row in enumerate(rows):
            here = f"{where}[{index}]"
            if not isinstance(row, list):
                raise ConfigError(f"{self.source}: {here} is not a list of steps")
            imported = [
                (item, self.task({k: v for k, v in item.items() if k != "when"}, f"{here}[{i}]"))
                for i, item in enumerate(row)
            ]
            kept = [(item, step) for item, step in imported if step is not None]
            if not kept:
                continue
            if len(kept) == 1:
                item, step = kept[0]
            else:
                name = self.namer.fresh(f"row-{index + 1}")
                step = {
                    "name": name,
                    "type": "parallel",
                    "branches": [
                        {"start": s["name"], "steps": [{**s, "end": True}]} for _, s in kept
                    ],
                    "resultPath": f"$.{name}",
                }
                item = {}
                self.report.exact("steps.parallel", here, f"a parallel step '{name}'")
                if any("when" in i for i, _ in kept):
                    self.report.unsupported(
                        "when", here, "a `when` inside a parallel row: the step always runs"
                    )
            chain.append(step)
            if "when" in item:
                condition = self.condition(str(item["when"]), f"{here}[0].when")
                if condition is not None:
                    step["_when"] = condition
        steps: list[Document] = []
        for position, step in enumerate(chain):
            following = chain[position + 1]["name"] if position + 1 < len(chain) else None
            condition = step.pop("_when", None)
            if condition is not None:
                # a conditional row: a choice runs it or goes straight on
                choice_name = self.namer.fresh(f"{step['name']}-when")
                after = following or self._end(extra)
                choice = {
                    "name": choice_name,
                    "type": "choice",
                    "rules": [{"when": condition, "next": step["name"]}],
                    "default": after,
                }
                steps.append(choice)
            if following is not None:
                step["next"] = following
            else:
                step["end"] = True
            steps.append(_ordered(step))
        # a transition into a conditional row enters its choice
        choices = {s["rules"][0]["next"]: s["name"] for s in steps if s["type"] == "choice"}
        for step in steps:
            if step["type"] != "choice" and step.get("next") in choices:
                step["next"] = choices[step["next"]]
        steps.extend(extra)
        if not steps:
            raise ConfigError(f"{self.source}: no step of {where} can be imported")
        start = steps[0]["name"]
        return start, steps

    def _end(self, extra: list[Document]) -> str:
        if not extra:
            extra.append({"name": self.namer.fresh("done"), "type": "succeed"})
        return str(extra[0]["name"])


def _without_skipped(names: list[str], skipped: dict[str, list[str]], namer: Namer) -> list[str]:
    result: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in skipped:
            pending.extend(skipped.pop(name))
            continue
        step = namer.names.get(name, slug(name))
        if step not in result:
            result.append(step)
    return result


def _seconds(value: Any) -> int | None:
    """Seconds of an Argo duration (`30`, `"30"`, `"10s"`, `"2m"`), None when not one."""
    if value is None:
        return None
    match = _GO_DURATION.match(str(value).strip())
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2) or "s"
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return max(1, round(number * factor))


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


_BODY_ORDER = ("schedule", "timeout", "retention", "start", "steps")
_ORDER = (
    "name",
    "type",
    "activity",
    "items",
    "maxConcurrency",
    "duration",
    "dependsOn",
    "when",
    "timeout",
    "retry",
    "rules",
    "default",
    "branches",
    "start",
    "steps",
    "resultPath",
    "next",
    "end",
)


def _ordered(step: Document) -> Document:
    """Keys in the order the spec documents them (readable output)."""
    known = {k: step[k] for k in _ORDER if k in step}
    return {**known, **{k: v for k, v in step.items() if k not in known}}
