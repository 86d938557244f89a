"""Amazon States Language → the steps of a state-machine spec, with a fidelity report.

The importer is the inverse of cpl's Step Functions translator: what the translator renders
comes back as the spec it was rendered from (guarded comparisons, `ResultPath: null`
catchers, `States.Array` parameters), so that re-rendering an import of a definition cpl
rendered gives the same definition (`cpl import --unmanaged` relies on it). Everything else
maps where the spec model can say the same thing and is reported otherwise, never dropped
silently: each finding names its construct and a JSON pointer into the definition.

What the spec has no step for is folded or elided where that keeps every run the same: a
Pass that only passes its input on is skipped (transitions go to its Next), a Pass that
builds the input of the one task after it becomes that task's `parameters`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import ConfigError
from controlplane.importing.fidelity import FidelityReport
from controlplane.importing.names import Namer, slug
from controlplane.spec.types import PATH_PATTERN

Document = dict[str, Any]

_PATH = re.compile(PATH_PATTERN)
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[^:]+:\d{12}:function:([^:]+)(:[^:]+)?$")
_ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[^:]+:\d{12}:activity:(.+)$")
_SERVICE_ARN = re.compile(r"^arn:aws[a-z-]*:states:::([a-z0-9-]+):([A-Za-z0-9.:]+)$")
APPROVAL_RESOURCE = "arn:aws:states:::events:putEvents.waitForTaskToken"
_LAMBDA_INVOKE = re.compile(r"^arn:aws[a-z-]*:states:::lambda:invoke$")
_ARRAY = re.compile(r"^States\.Array\((.*)\)$", re.S)
_ERRORS = {"States.ALL": "*", "States.Timeout": "Timeout"}
_NUMERIC = {
    "NumericGreaterThan": "gt",
    "NumericGreaterThanEquals": "ge",
    "NumericLessThan": "lt",
    "NumericLessThanEquals": "le",
}
_EQUALS: dict[str, type | tuple[type, ...]] = {
    "StringEquals": str,
    "NumericEquals": (int, float),
    "BooleanEquals": bool,
}
_KIND_OF = {
    "IsNumeric": ("NumericEquals", *_NUMERIC),
    "IsString": ("StringEquals", "StringMatches"),
    "IsBoolean": ("BooleanEquals",),
}
NEVER: Document = {"path": "$", "exists": False}
"""A condition that never holds: what an unimportable choice rule becomes."""

_TASK_FIELDS = {
    "Type",
    "Comment",
    "Resource",
    "Parameters",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ResultSelector",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Retry",
    "Catch",
    "Next",
    "End",
    "Credentials",
}
_IGNORED = {"Type", "Comment", "Next", "End"}


@dataclass
class AslImport:
    """What one ASL definition became: the spec body, its activities and the report."""

    spec: Document
    description: str | None
    activities: dict[str, str]
    """Logical activity name → the `resource` of its stepfunctions binding."""
    report: FidelityReport


@dataclass
class _Scope:
    """One ASL state machine being converted: the workflow, a branch or a map processor."""

    states: dict[str, Any]
    pointer: str
    skip: dict[str, str] = field(default_factory=dict)  # elided state -> its Next
    folds: dict[str, Document] = field(default_factory=dict)  # task -> parameters to fold
    extra: list[Document] = field(default_factory=list)  # steps the import adds


def import_asl(definition: Any, source: str) -> AslImport:
    """Convert an ASL definition (parsed JSON); ConfigError when it is not one."""
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
        raise ConfigError(f"{source}: not an Amazon States Language definition (no States)")
    if definition.get("QueryLanguage") == "JSONata":
        raise ConfigError(
            f"{source}: JSONata state machines cannot be imported (cpl renders JSONPath ASL)"
        )
    return _Importer(source).run(definition)


class _Importer:
    def __init__(self, source: str) -> None:
        self.report = FidelityReport(source=source, kind="stepfunctions")
        self.namer = Namer()
        self.activities: dict[str, str] = {}

    # -- the definition ---------------------------------------------------------------------

    def run(self, definition: Document) -> AslImport:
        self._name_states(definition["States"])
        start, steps = self.scope(definition["States"], definition.get("StartAt"), "")
        spec: Document = {}
        if isinstance(definition.get("TimeoutSeconds"), int):
            spec["timeout"] = _duration(definition["TimeoutSeconds"])
            self.report.exact("workflow.timeout", "/TimeoutSeconds")
        for key in ("TimeoutSecondsPath", "Version"):
            if key in definition and key != "Version":
                self.report.unsupported(key, f"/{key}", "not importable: left out")
        spec["start"] = start
        spec["steps"] = steps
        comment = definition.get("Comment")
        description = None
        if isinstance(comment, str) and comment and not comment.endswith("(rendered by cpl)"):
            description = comment
        self.report.renamed = dict(self.namer.names)
        return AslImport(spec, description, dict(self.activities), self.report)

    def _name_states(self, states: dict[str, Any]) -> None:
        """Step names for every state at any depth (ASL state names are global)."""
        for name, state in states.items():
            self.namer.name(name)
            if not isinstance(state, dict):
                continue
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict) and isinstance(branch.get("States"), dict):
                    self._name_states(branch["States"])
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if isinstance(processor, dict) and isinstance(processor.get("States"), dict):
                self._name_states(processor["States"])

    # -- scopes -----------------------------------------------------------------------------

    def scope(
        self,
        states: dict[str, Any],
        start: Any,
        pointer: str,
        entry_parameters: Document | None = None,
    ) -> tuple[str, list[Document]]:
        """(start, steps) of one ASL state machine; `entry_parameters` (a map's item
        selector) are folded into its first state, which the caller checked can take them."""
        if start not in states:
            raise ConfigError(f"{self.report.source}: {pointer}/StartAt '{start}' is not a state")
        scope = _Scope(states, pointer)
        references = _references(states, start)
        self._plan_passes(scope, references)
        if entry_parameters is not None:
            scope.folds[start] = entry_parameters
        steps: list[Document] = []
        for name, state in states.items():
            if name in scope.skip:
                continue
            here = f"{pointer}/States/{_escape(name)}"
            if not isinstance(state, dict) or not isinstance(state.get("Type"), str):
                raise ConfigError(f"{self.report.source}: {here} is not a state (no Type)")
            steps.append(self.state(name, state, here, scope))
        steps.extend(scope.extra)
        return self.target(start, scope), steps

    def _plan_passes(self, scope: _Scope, references: dict[str, int]) -> None:
        """Which Pass (and unimportable Wait) states are skipped, and which fold into the
        task after them."""
        for name, state in scope.states.items():
            if not isinstance(state, dict) or state.get("End") or "Next" not in state:
                continue
            here = f"{scope.pointer}/States/{_escape(name)}"
            kind = state.get("Type")
            if kind == "Pass":
                effects = [k for k in _PASS_EFFECTS if k in state and state[k] != "$"]
                if not effects:
                    scope.skip[name] = state["Next"]
                    self.report.exact("pass", here, "passes its input on: skipped")
                    continue
                folded = self._fold(state, scope, references)
                if folded is not None:
                    scope.skip[name] = state["Next"]
                    scope.folds[state["Next"]] = folded
                    task = self.namer.names[state["Next"]]
                    self.report.exact("pass", here, f"folded into the parameters of '{task}'")
                    continue
                scope.skip[name] = state["Next"]
                self.report.unsupported(
                    "pass",
                    here,
                    f"the spec has no step that writes {', '.join(effects)}: skipped, the "
                    "document goes on unchanged",
                )
            elif kind == "Wait" and not ("Seconds" in state or "TimestampPath" in state):
                scope.skip[name] = state["Next"]
                given = next((k for k in ("Timestamp", "SecondsPath") if k in state), "?")
                self.report.unsupported(
                    f"wait.{given}",
                    here,
                    "a wait is a fixed duration or a path to a timestamp: skipped",
                )

    def _fold(self, state: Document, scope: _Scope, references: dict[str, int]) -> Document | None:
        """The parameters a Pass hands the one task after it, when folding them keeps runs
        the same: the task reads nothing else and replaces the document with its result."""
        if (
            any(k in state for k in ("InputPath", "OutputPath"))
            or state.get("ResultPath", "$") != "$"
        ):
            return None
        built = state.get("Parameters", state.get("Result"))
        following = scope.states.get(state["Next"])
        if not isinstance(built, dict) or not _foldable_task(following):
            return None
        if references.get(state["Next"], 0) != 1:
            return None
        if "Parameters" in state:
            return self.lossless(built)
        if _has_path_text(built):
            return None
        return dict(built)

    def target(self, name: str, scope: _Scope) -> str:
        """The step a transition to `name` reaches (past skipped states)."""
        seen: set[str] = set()
        while name in scope.skip and name not in seen:
            seen.add(name)
            name = scope.skip[name]
        return self.namer.names.get(name, slug(name))

    def _flow(self, state: Document, scope: _Scope) -> Document:
        if state.get("End"):
            return {"end": True}
        return {"next": self.target(state["Next"], scope)}

    # -- states -----------------------------------------------------------------------------

    def state(self, name: str, state: Document, here: str, scope: _Scope) -> Document:
        kind = state["Type"]
        step: Document = {"name": self.namer.names[name]}
        if kind == "Task":
            step.update(self.task(state, here, scope, scope.folds.get(name), step["name"]))
        elif kind == "Choice":
            step.update(self.choice(state, here, scope))
        elif kind == "Parallel":
            step.update(self.parallel(state, here, scope, step["name"]))
        elif kind == "Map":
            step.update(self.map(state, here, scope, step["name"]))
        elif kind == "Wait":
            step.update(self.wait(state, here, scope))
        elif kind == "Succeed":
            self.report.exact("succeed", here)
            step["type"] = "succeed"
            self._unused(state, here, {"InputPath", "OutputPath"})
        elif kind == "Fail":
            step.update(self.fail(state, here))
        elif kind == "Pass":
            # only an ending Pass gets here (others are skipped or folded)
            effects = [k for k in _PASS_EFFECTS if k in state and state[k] != "$"]
            if effects:
                self.report.unsupported(
                    "pass",
                    here,
                    f"the spec has no step that writes {', '.join(effects)}: the run ends "
                    "with the document as it is",
                )
            else:
                self.report.exact("pass", here, "ends the run with its input: a succeed step")
            step["type"] = "succeed"
        else:
            raise ConfigError(f"{self.report.source}: {here}/Type '{kind}' is not an ASL state")
        return step

    def task(
        self, state: Document, here: str, scope: _Scope, folded: Document | None, name: str
    ) -> Document:
        resource = state.get("Resource")
        if not isinstance(resource, str) or not resource:
            raise ConfigError(f"{self.report.source}: {here}/Resource is missing")
        approval = self._approval(state, here, scope)
        if approval is not None:
            return approval
        step: Document = {"type": "task"}
        handled = set(_IGNORED)
        lambda_invoke = self._lambda_invoke(state)
        if lambda_invoke is not None:
            arn, payload = lambda_invoke
            step["activity"] = self.activity(arn)
            self.report.exact(
                "task.lambda",
                f"{here}/Resource",
                "lambda:invoke returning $.Payload is the function's ARN as Resource",
            )
            parameters: Document | None = payload
            handled |= {"Resource", "Parameters", "OutputPath"}
        else:
            step["activity"] = self.activity(resource)
            construct = "task.lambda" if _LAMBDA_ARN.match(resource) else "task.service"
            if _ACTIVITY_ARN.match(resource):
                construct = "task.activity"
            self.report.exact(construct, f"{here}/Resource")
            parameters = state.get("Parameters")
            handled |= {"Resource", "Parameters"}
            if parameters is not None and not isinstance(parameters, dict):
                self.report.unsupported(
                    "task.parameters", f"{here}/Parameters", "not an object: left out"
                )
                parameters = None
            if parameters is not None:
                parameters = self.parameters(parameters, f"{here}/Parameters")
                self.report.exact("task.parameters", f"{here}/Parameters")
        input_path = state.get("InputPath", "$")
        handled.add("InputPath")
        if input_path != "$":
            if input_path is None and parameters is None:
                parameters = {}
                self.report.exact("task.inputPath", f"{here}/InputPath", "null: empty parameters")
            elif isinstance(input_path, str) and _PATH.match(input_path) and parameters is not None:
                parameters = _reroot(parameters, input_path)
                self.report.exact(
                    "task.inputPath", f"{here}/InputPath", "folded into the parameters' paths"
                )
            else:
                self.report.unsupported(
                    "task.inputPath",
                    f"{here}/InputPath",
                    "a task without parameters receives the whole document: left out",
                )
        if folded is not None:
            parameters = folded
        if parameters is not None:
            step["parameters"] = parameters
        self._result_path(state, here, step, "task", name)
        handled.add("ResultPath")
        if isinstance(state.get("TimeoutSeconds"), int):
            step["timeout"] = _duration(state["TimeoutSeconds"])
            self.report.exact("task.timeout", f"{here}/TimeoutSeconds")
        handled.add("TimeoutSeconds")
        if isinstance(state.get("HeartbeatSeconds"), int):
            step["heartbeat"] = _duration(state["HeartbeatSeconds"])
            if "activity" in step and self.activities.get(step["activity"], "").startswith(
                "arn:aws:lambda"
            ):
                self.report.approximated(
                    "task.heartbeat",
                    f"{here}/HeartbeatSeconds",
                    "a Lambda function cannot heartbeat: cpl renders no HeartbeatSeconds "
                    "for it, only TimeoutSeconds bounds the call",
                )
            else:
                self.report.exact("task.heartbeat", f"{here}/HeartbeatSeconds")
        handled.add("HeartbeatSeconds")
        retry = self.retry(state.get("Retry"), f"{here}/Retry")
        if retry is not None:
            step["retry"] = retry
        catch = self.catch(state.get("Catch"), f"{here}/Catch", scope)
        if catch:
            step["catch"] = catch
        handled |= {"Retry", "Catch"}
        self._unused(state, here, set(state) - handled)
        step.update(self._flow(state, scope))
        return step

    def _approval(self, state: Document, here: str, scope: _Scope) -> Document | None:
        """The approval step of an approval request as cpl renders it (an EventBridge
        event with a task token), else None."""
        if state.get("Resource") != APPROVAL_RESOURCE:
            return None
        entries = (state.get("Parameters") or {}).get("Entries")
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
            return None
        entry = entries[0]
        detail = entry.get("Detail")
        if entry.get("DetailType") != "cpl.approval.requested" or not isinstance(detail, dict):
            return None
        if not isinstance(detail.get("signal"), str) or state.get("ResultPath", "$") is not None:
            return None
        step: Document = {"type": "approval", "signal": detail["signal"]}
        roles = detail.get("approvers")
        if isinstance(roles, list) and roles:
            step["approvers"] = {"roles": [str(r) for r in roles]}
        if isinstance(state.get("TimeoutSeconds"), int):
            step["timeout"] = _duration(state["TimeoutSeconds"])
        catchers = list(state.get("Catch") or [])
        timeout_catcher = {"ErrorEquals": ["States.Timeout"], "ResultPath": None}
        if catchers and {k: v for k, v in catchers[0].items() if k != "Next"} == timeout_catcher:
            step["onTimeout"] = self.target(catchers[0]["Next"], scope)
            catchers = catchers[1:]
        catch = self.catch(catchers, f"{here}/Catch", scope)
        if catch:
            step["catch"] = catch
        self.report.exact("approval", here, "cpl's approval request (signal answered by cpl)")
        known = {"Resource", "Parameters", "ResultPath", "TimeoutSeconds", "Catch"}
        self._unused(state, here, set(state) - _IGNORED - known)
        step.update(self._flow(state, scope))
        return step

    def _lambda_invoke(self, state: Document) -> tuple[str, Document | None] | None:
        """(function ARN, parameters) when a `lambda:invoke` task is the same as calling
        the function by its ARN: its Payload is the input and it keeps only `$.Payload`."""
        parameters = state.get("Parameters")
        if not _LAMBDA_INVOKE.match(str(state.get("Resource"))) or not isinstance(parameters, dict):
            return None
        if state.get("OutputPath") != "$.Payload" or state.get("ResultPath", "$") != "$":
            return None
        if "ResultSelector" in state or set(parameters) - {"FunctionName", "Payload", "Payload.$"}:
            return None
        arn = parameters.get("FunctionName")
        if not isinstance(arn, str) or not _LAMBDA_ARN.match(arn):
            return None
        if parameters.get("Payload.$", "$") != "$" and "Payload" not in parameters:
            return None
        if "Payload" in parameters:
            payload = parameters["Payload"]
            if not isinstance(payload, dict):
                return None
            converted = self.lossless(payload)
            return None if converted is None else (arn, converted)
        return arn, None

    def activity(self, resource: str) -> str:
        """The logical activity bound to `resource` (one name per resource)."""
        for name, bound in self.activities.items():
            if bound == resource:
                return name
        if match := _LAMBDA_ARN.match(resource):
            base = slug(match.group(1))
        elif match := _ACTIVITY_ARN.match(resource):
            base = slug(match.group(1))
        elif match := _SERVICE_ARN.match(resource):
            base = slug(f"{match.group(1)}-{match.group(2)}")
        else:
            base = slug(resource.rsplit(":", 1)[-1])
        name, number = base, 1
        while name in self.activities:
            number += 1
            name = f"{base}-{number}"
        self.activities[name] = resource
        return name

    def choice(self, state: Document, here: str, scope: _Scope) -> Document:
        self.report.exact("choice", here)
        rules = []
        for index, rule in enumerate(state.get("Choices") or []):
            where = f"{here}/Choices/{index}"
            if not isinstance(rule, dict) or "Next" not in rule:
                raise ConfigError(f"{self.report.source}: {where} has no Next")
            condition = self.condition(rule, where)
            if condition is None:
                self.report.unsupported(
                    "choice.rule", where, "its condition cannot be imported: the rule never holds"
                )
                condition = dict(NEVER)
            rules.append({"when": condition, "next": self.target(rule["Next"], scope)})
        step: Document = {"type": "choice", "rules": rules}
        if "Default" in state:
            step["default"] = self.target(state["Default"], scope)
        else:
            # ASL fails the run with States.NoChoiceMatched; the spec needs a default
            failed = self.namer.fresh(f"{step_name(here, self.namer)}-no-match")
            scope.extra.append({"name": failed, "type": "fail", "error": "States.NoChoiceMatched"})
            step["default"] = failed
            self.report.approximated(
                "choice.default",
                here,
                f"no Default: a fail step '{failed}' (error States.NoChoiceMatched) is the "
                "default, its cause differs",
            )
        self._unused(state, here, set(state) - _IGNORED - {"Choices", "Default"})
        return step

    def parallel(self, state: Document, here: str, scope: _Scope, name: str) -> Document:
        self.report.exact("parallel", here)
        branches = []
        for index, branch in enumerate(state.get("Branches") or []):
            where = f"{here}/Branches/{index}"
            start, steps = self.nested(branch, where)
            branches.append({"start": start, "steps": steps})
        step: Document = {"type": "parallel", "branches": branches}
        self._result_path(state, here, step, "parallel", name)
        catch = self.catch(state.get("Catch"), f"{here}/Catch", scope)
        if catch:
            step["catch"] = catch
        self._unused(state, here, set(state) - _IGNORED - {"Branches", "ResultPath", "Catch"})
        step.update(self._flow(state, scope))
        return step

    def map(self, state: Document, here: str, scope: _Scope, name: str) -> Document:
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        processor = state.get(key)
        if not isinstance(processor, dict):
            raise ConfigError(f"{self.report.source}: {here} has no ItemProcessor")
        mode = (processor.get("ProcessorConfig") or {}).get("Mode", "INLINE")
        if mode != "INLINE":
            self.report.approximated(
                "map.distributed", f"{here}/{key}/ProcessorConfig", "runs as an inline map"
            )
        else:
            self.report.exact("map", here)
        items = state.get("ItemsPath", "$")
        if not (isinstance(items, str) and _PATH.match(items)):
            self.report.unsupported(
                "map.itemsPath", f"{here}/ItemsPath", f"'{items}' is not a cpl path: $ used"
            )
            items = "$"
        elif "ItemsPath" in state:
            self.report.exact("map.itemsPath", f"{here}/ItemsPath")
        selector_key = "ItemSelector" if "ItemSelector" in state else "Parameters"
        selector = state.get(selector_key)
        entry: Document | None = None
        if selector is not None:
            entry = self._item_selector(selector, processor)
            if entry is None:
                self.report.unsupported(
                    "map.itemSelector",
                    f"{here}/{selector_key}",
                    "only a selector of the item's own fields, read by the processor's first "
                    "task alone, can be imported: each iteration gets the item as it is",
                )
            else:
                self.report.exact(
                    "map.itemSelector",
                    f"{here}/{selector_key}",
                    "folded into the parameters of the processor's first task",
                )
        start, steps = self.nested(processor, f"{here}/{key}", entry)
        step: Document = {"type": "map", "items": items}
        concurrency = state.get("MaxConcurrency", 0)
        if isinstance(concurrency, int) and concurrency > 0:
            step["maxConcurrency"] = concurrency
            self.report.exact("map.maxConcurrency", f"{here}/MaxConcurrency")
        step["start"] = start
        step["steps"] = steps
        self._result_path(state, here, step, "map", name)
        catch = self.catch(state.get("Catch"), f"{here}/Catch", scope)
        if catch:
            step["catch"] = catch
        known = {key, "ItemsPath", selector_key, "MaxConcurrency", "ResultPath", "Catch"}
        self._unused(state, here, set(state) - _IGNORED - known)
        step.update(self._flow(state, scope))
        return step

    def _item_selector(self, selector: Any, processor: Document) -> Document | None:
        """The selector as parameters of the processor's first task, when that is the same."""
        states = processor.get("States")
        if not isinstance(selector, dict) or not isinstance(states, dict):
            return None
        first = states.get(processor.get("StartAt"))
        if (
            not _foldable_task(first)
            or _references(states, processor["StartAt"]).get(processor["StartAt"], 0) != 1
        ):
            return None
        rewritten = _item_paths(selector)
        if rewritten is None:
            return None
        return self.lossless(rewritten)

    def nested(
        self, machine: Any, where: str, entry: Document | None = None
    ) -> tuple[str, list[Document]]:
        if not isinstance(machine, dict) or not isinstance(machine.get("States"), dict):
            raise ConfigError(f"{self.report.source}: {where} has no States")
        return self.scope(machine["States"], machine.get("StartAt"), where, entry)

    def wait(self, state: Document, here: str, scope: _Scope) -> Document:
        step: Document = {"type": "wait"}
        if isinstance(state.get("Seconds"), int):
            step["duration"] = _duration(state["Seconds"])
            self.report.exact("wait.seconds", f"{here}/Seconds")
        elif isinstance(state.get("TimestampPath"), str) and _PATH.match(state["TimestampPath"]):
            step["until"] = state["TimestampPath"]
            self.report.exact("wait.timestampPath", f"{here}/TimestampPath")
        else:
            # an ending Wait that cannot be imported: the run ends there
            self.report.unsupported("wait", here, "not importable: the run ends without waiting")
            return {"type": "succeed"}
        self._unused(state, here, set(state) - _IGNORED - {"Seconds", "TimestampPath"})
        step.update(self._flow(state, scope))
        return step

    def fail(self, state: Document, here: str) -> Document:
        self.report.exact("fail", here)
        step: Document = {"type": "fail"}
        if isinstance(state.get("Error"), str):
            step["error"] = state["Error"]
        if isinstance(state.get("Cause"), str):
            step["cause"] = state["Cause"]
        if "Error" not in state:
            self.report.approximated(
                "fail.error", here, "no Error: cpl's fail step reports the error 'Failed'"
            )
        self._unused(state, here, set(state) - _IGNORED - {"Error", "Cause"})
        return step

    # -- fields shared by states ------------------------------------------------------------

    def _result_path(
        self, state: Document, here: str, step: Document, kind: str, name: str
    ) -> None:
        if "ResultPath" not in state or state["ResultPath"] == "$":
            return
        value = state["ResultPath"]
        where = f"{here}/ResultPath"
        if value is None:
            kept = f"$.discarded.{name}"
            step["resultPath"] = kept
            self.report.approximated(
                f"{kind}.resultPath",
                where,
                f"null (result discarded): the spec always keeps a result, at {kept}",
            )
        elif isinstance(value, str) and _PATH.match(value):
            step["resultPath"] = value
            self.report.exact(f"{kind}.resultPath", where)
        else:
            self.report.unsupported(
                f"{kind}.resultPath", where, f"'{value}' is not a cpl path: the result replaces $"
            )

    def _unused(self, state: Document, here: str, keys: set[str]) -> None:
        """Report the fields no mapping used (OutputPath, ResultSelector, ...)."""
        for key in sorted(keys & set(state)):
            if key in ("InputPath", "OutputPath") and state[key] == "$":
                continue
            why = _WHY.get(key, "the spec has no equivalent: left out")
            self.report.unsupported(_construct(state["Type"], key), f"{here}/{key}", why)

    def retry(self, retriers: Any, where: str) -> Document | None:
        if not retriers:
            return None
        if not isinstance(retriers, list) or not all(isinstance(r, dict) for r in retriers):
            self.report.unsupported("retry", where, "not a list of retriers: left out")
            return None
        blocking = [r for r in retriers if r.get("MaxAttempts", 3) == 0]
        retrying = [r for r in retriers if r.get("MaxAttempts", 3) != 0]
        non_retryable: list[str] = []
        exact = True
        if blocking and retrying and retriers[: len(blocking)] == blocking:
            for retrier in blocking:
                non_retryable += [_error_name(e) for e in retrier.get("ErrorEquals", [])]
        elif blocking:
            exact = False
        if not retrying:
            self.report.exact("retry", where, "never retries")
            return None
        chosen = retrying[0]
        if len(retrying) > 1 or chosen.get("ErrorEquals") != ["States.ALL"]:
            exact = False
        retry: Document = {"maxAttempts": int(chosen.get("MaxAttempts", 3)) + 1}
        retry["initialInterval"] = _duration(chosen.get("IntervalSeconds", 1))
        retry["backoffRate"] = float(chosen.get("BackoffRate", 2.0))
        if "MaxDelaySeconds" in chosen:
            retry["maxInterval"] = _duration(chosen["MaxDelaySeconds"])
        if "JitterStrategy" in chosen:
            retry["jitter"] = "full" if chosen["JitterStrategy"] == "FULL" else "none"
        if non_retryable:
            retry["nonRetryable"] = non_retryable
        if exact:
            self.report.exact("retry", where)
        else:
            errors = ", ".join(str(e) for e in chosen.get("ErrorEquals", []))
            self.report.approximated(
                "retry",
                where,
                f"one policy for every error: the first retrier's ({errors}) applies to all "
                "errors, the other retriers are left out",
            )
        return retry

    def catch(self, catchers: Any, where: str, scope: _Scope) -> list[Document]:
        result: list[Document] = []
        for index, catcher in enumerate(catchers or []):
            here = f"{where}/{index}"
            errors = [_error_name(e) for e in catcher.get("ErrorEquals", [])]
            entry: Document = {"errors": errors, "next": self.target(catcher["Next"], scope)}
            path = catcher.get("ResultPath", "$")
            if path is None:
                self.report.exact("catch", here)
            elif isinstance(path, str) and _PATH.match(path):
                entry["resultPath"] = path
                self.report.exact("catch", here)
            else:
                self.report.unsupported("catch.resultPath", f"{here}/ResultPath", "left out")
            if "ResultPath" not in catcher:
                # ASL's default replaces the document with the error; cpl's keeps it
                entry["resultPath"] = "$"
            result.append(entry)
        return result

    # -- parameters -------------------------------------------------------------------------

    def parameters(self, value: Document, where: str) -> Document:
        """ASL Parameters as spec parameters: `key.$` paths become `key: $.path`."""
        result: Document = {}
        for key, item in value.items():
            here = f"{where}/{_escape(key)}"
            if key.endswith(".$"):
                converted = self._dynamic(item)
                if converted is None:
                    self.report.unsupported(
                        "parameters.expression",
                        here,
                        f"'{item}' is not a cpl path (nor States.Array of paths): left out",
                    )
                    continue
                result[key[:-2]] = converted
            elif isinstance(item, dict):
                result[key] = self.parameters(item, here)
            elif _has_path_text(item):
                self.report.unsupported(
                    "parameters.literal",
                    here,
                    "a literal that reads as a path in the spec: left out",
                )
                continue
            else:
                result[key] = item
        return result

    def lossless(self, value: Document) -> Document | None:
        """`value` as spec parameters when every key comes over, else None (a fold or an
        unwrap that would lose a key is not made: the state is imported as it is)."""
        before = len(self.report.findings)
        converted = self.parameters(value, "")
        if len(self.report.findings) != before:
            del self.report.findings[before:]
            return None
        return converted

    def _dynamic(self, expression: Any) -> Any:
        if not isinstance(expression, str):
            return None
        if _PATH.match(expression):
            return expression
        match = _ARRAY.match(expression)
        if match is None:
            return None
        values = []
        for argument in _arguments(match.group(1)):
            if _PATH.match(argument):
                values.append(argument)
            elif argument.startswith("'") and argument.endswith("'"):
                text = re.sub(r"\\(.)", r"\1", argument[1:-1])
                if text.startswith("$"):
                    return None
                values.append(text)
            else:
                try:
                    values.append(json.loads(argument))
                except ValueError:
                    return None
        return values

    # -- conditions -------------------------------------------------------------------------

    def condition(self, rule: Document, where: str) -> Document | None:
        """A spec condition holding when the ASL rule does, None when there is none."""
        guarded = _guarded(rule)
        if guarded is not None:
            rule = guarded
        for combinator, key in (("And", "all"), ("Or", "any")):
            if combinator in rule:
                parts = [
                    self.condition(r, f"{where}/{combinator}/{i}")
                    for i, r in enumerate(rule[combinator])
                ]
                return None if any(p is None for p in parts) else {key: parts}
        if "Not" in rule:
            inner = self.condition(rule["Not"], f"{where}/Not")
            return None if inner is None else {"not": inner}
        variable = rule.get("Variable")
        operator = next((k for k in rule if k not in ("Variable", "Next", "Comment")), None)
        if not isinstance(variable, str) or operator is None:
            self.report.unsupported("condition", where, "not a comparison")
            return None
        if not _PATH.match(variable):
            self.report.unsupported(
                "condition.variable", f"{where}/Variable", f"'{variable}' is not a cpl path"
            )
            return None
        converted = _comparison(variable, operator, rule[operator])
        if converted is None:
            self.report.unsupported(
                f"condition.{operator}",
                f"{where}/{operator}",
                "cpl's conditions compare numbers, equal scalars, match globs and test "
                "presence; this operator has no equivalent",
            )
            return None
        self.report.exact(f"condition.{operator}", f"{where}/{operator}")
        return converted


_PASS_EFFECTS = ("Result", "Parameters", "InputPath", "OutputPath", "ResultPath")
_WHY = {
    "OutputPath": "the spec keeps the whole document after a step: left out",
    "ResultSelector": "the spec keeps the whole result: left out",
    "Retry": "only task steps retry in the spec: left out",
    "TimeoutSecondsPath": "timeouts are fixed durations in the spec: left out",
    "HeartbeatSecondsPath": "heartbeats are fixed durations in the spec: left out",
    "Credentials": "the spec has no per-task credentials: left out",
    "ItemReader": "the spec maps over an array of the document: left out",
    "ItemBatcher": "left out (batchSize renders differently)",
    "ResultWriter": "the spec keeps map results in the document: left out",
    "ToleratedFailurePercentage": "a map fails with its first failed item: left out",
    "ToleratedFailureCount": "a map fails with its first failed item: left out",
    "Label": "left out",
}


def step_name(pointer: str, namer: Namer) -> str:
    """The step name of the state a pointer ends at."""
    state = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
    return namer.names.get(state, slug(state))


def _construct(kind: str, key: str) -> str:
    return f"{kind.lower()}.{key[0].lower()}{key[1:]}"


def _comparison(variable: str, operator: str, operand: Any) -> Document | None:
    if operator in _EQUALS:
        expected = _EQUALS[operator]
        if isinstance(operand, bool) and operator != "BooleanEquals":
            return None
        return {"path": variable, "eq": operand} if isinstance(operand, expected) else None
    if operator in _NUMERIC and isinstance(operand, int | float) and not isinstance(operand, bool):
        return {"path": variable, _NUMERIC[operator]: operand}
    if operator == "StringMatches" and isinstance(operand, str):
        regex = _glob_regex(operand)
        return None if regex is None else {"path": variable, "matches": regex}
    if not isinstance(operand, bool):
        return None
    tests: dict[str, Document] = {
        "IsPresent": {"path": variable, "exists": True},
        "IsNull": {"path": variable, "eq": None},
        "IsString": {"path": variable, "matches": ""},
        "IsBoolean": {"path": variable, "in": [True, False]},
        "IsNumeric": {"any": [{"path": variable, "ge": 0}, {"path": variable, "lt": 0}]},
    }
    if operator not in tests:
        return None
    if operator == "IsPresent":
        return {"path": variable, "exists": operand}
    return tests[operator] if operand else {"not": tests[operator]}


def _guarded(rule: Document) -> Document | None:
    """The one comparison of a guarded rule (`IsPresent`, kind test, comparison on one
    variable: how cpl renders a comparison), else None."""
    parts = rule.get("And")
    if isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, dict) for p in parts):
        # `eq: null`: present and null
        first: Document = parts[0]
        second: Document = parts[1]
        if (
            first.get("Variable") == second.get("Variable")
            and first == {"Variable": first.get("Variable"), "IsPresent": True}
            and second == {"Variable": first.get("Variable"), "IsNull": True}
        ):
            return second
        return None
    if not isinstance(parts, list) or len(parts) != 3:
        return None
    if not all(isinstance(p, dict) and len(p) == 2 for p in parts):
        return None
    variables = {p.get("Variable") for p in parts}
    if len(variables) != 1 or parts[0].get("IsPresent") is not True:
        return None
    kind = next((k for k in parts[1] if k != "Variable"), "")
    operator = next((k for k in parts[2] if k != "Variable"), "")
    if parts[1].get(kind) is not True or operator not in _KIND_OF.get(kind, ()):
        return None
    comparison: Document = parts[2]
    return comparison


_SPECIAL = set("\\^$.*+?()[]{}|")


def _glob_regex(glob: str) -> str | None:
    """A StringMatches glob as the regex cpl renders back to it (None: escaped `*`)."""
    if "\\" in glob:
        return None
    pieces = ["".join("\\" + c if c in _SPECIAL else c for c in p) for p in glob.split("*")]
    return "^" + ".*".join(pieces) + "$"


def _error_name(name: Any) -> str:
    return _ERRORS.get(str(name), str(name))


def _duration(seconds: Any) -> str:
    return f"{int(seconds)}s"


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _has_path_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_PATH.match(value))
    if isinstance(value, dict):
        return any(_has_path_text(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_path_text(v) for v in value)
    return False


def _foldable_task(state: Any) -> bool:
    """A task that reads only its input and replaces the document with its result."""
    if not isinstance(state, dict) or state.get("Type") != "Task":
        return False
    if "Parameters" in state or state.get("Catch"):
        return False
    if state.get("InputPath", "$") != "$" or state.get("OutputPath", "$") != "$":
        return False
    return state.get("ResultPath", "$") == "$" and "ResultSelector" not in state


def _references(states: dict[str, Any], start: str) -> dict[str, int]:
    """How many transitions of the scope (and its StartAt) lead to each state."""
    counts: dict[str, int] = {start: 1}
    for state in states.values():
        if not isinstance(state, dict):
            continue
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices") or [] if isinstance(c, dict)]
        targets += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, dict)]
        for target in targets:
            if isinstance(target, str):
                counts[target] = counts.get(target, 0) + 1
    return counts


def _reroot(value: Any, base: str) -> Any:
    """Parameters read relative to InputPath `base`, as paths from the document's root."""
    if isinstance(value, str) and _PATH.match(value):
        return base + value[1:]
    if isinstance(value, dict):
        return {k: _reroot(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_reroot(v, base) for v in value]
    return value


def _item_paths(selector: Document) -> Document | None:
    """An item selector's `$$.Map.Item.Value` paths as paths into the item; None when it
    reads anything else (the map's input, the item's index)."""
    result: Document = {}
    for key, value in selector.items():
        if isinstance(value, dict):
            inner = _item_paths(value)
            if inner is None:
                return None
            result[key] = inner
        elif key.endswith(".$"):
            if not isinstance(value, str) or not value.startswith("$$.Map.Item.Value"):
                return None
            result[key] = "$" + value[len("$$.Map.Item.Value") :]
        else:
            result[key] = value
    return result


def _arguments(text: str) -> list[str]:
    """The comma-separated arguments of an intrinsic function (quotes respected)."""
    arguments: list[str] = []
    current, quoted, escaped = "", False, False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == "'":
            current, quoted = current + char, not quoted
        elif char == "," and not quoted:
            arguments.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        arguments.append(current.strip())
    return arguments
