"""Amazon States Language and the state machine's configuration, from one neutral spec.

One method per step type renders that step's state; the FEATURES table says how well each
construct maps. Shapes that need more than one ASL state (a batched map, a merged DAG
layer, the saga's compensation chain and dead-letter hand-off) add their helper states next
to the step's own state. A state is named after its step, so the execution history reads
as the spec's trace; helper states carry invented names (see `lowering.fresh_name`).

Data flow follows docs/runtime.md exactly where ASL allows it: Lambda tasks use the function ARN
as `Resource` (the result *is* the function's return value; the `lambda:invoke`
integration would wrap it in an envelope that JSONPath-mode ASL cannot unwrap into an
arbitrary `ResultPath`), conditions are guarded so that a missing path or a value of
another kind is false instead of a runtime error, and a `catch` without `resultPath` keeps
the document (`ResultPath: null`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from controlplane.engines.lowering import (
    WRITING_TYPES,
    DagPlan,
    SagaPlan,
    fresh_name,
    plan_dag,
    plan_saga,
    step_names,
)
from controlplane.engines.stepfunctions import calls, iam, input_checks
from controlplane.engines.stepfunctions.alarms import ALARM_FEATURES, record_alarms
from controlplane.engines.stepfunctions.dead_letter import dead_letter_state
from controlplane.engines.stepfunctions.triggers import render_rules
from controlplane.engines.translator import (
    GOVERNANCE_FEATURES,
    Artifact,
    BindingError,
    Feature,
    RenderContext,
    Translator,
    record_governance,
)
from controlplane.spec.check import compensation_targets
from controlplane.spec.environment import EngineName, Environment, Target
from controlplane.spec.model import (
    REGULATED_CLASSES,
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
from controlplane.spec.types import DataPath, Duration, is_path

State = dict[str, Any]

PAYLOAD_LIMIT_BYTES = 256 * 1024
"""Step Functions' limit for a state's input or output (and the execution input)."""

EXECUTION_HISTORY_DAYS = 90
"""Standard workflows keep their execution history for a fixed 90 days."""

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""The values CloudWatch Logs accepts for `retentionInDays`."""

ERROR_PATH = "$.cplError"
"""Where the saga's catchers keep the unhandled error ({Error, Cause}) on its way out."""

_FALLIBLE = frozenset({"task", "parallel", "map", "approval"})
_LAYER = "@layer"  # scope marker: a branch of a lowered DAG layer (pointers by step name)

_NEVER: State = {"Variable": "$$.Execution.Id", "IsNull": True}
"""A choice rule that never holds (for conditions ASL cannot express)."""

_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[^:]+:\d{12}:function:[^:]+(:[^:]+)?$")
_ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[^:]+:\d{12}:activity:.+$")
_ERROR_NAMES = {"*": "States.ALL", "Timeout": "States.Timeout"}
_NUMERIC = {
    "gt": "GreaterThan",
    "ge": "GreaterThanEquals",
    "lt": "LessThan",
    "le": "LessThanEquals",
}


# --- per-render state ------------------------------------------------------------------


@dataclass
class _Frame:
    """One ASL scope being rendered: each step's state name, the state a transition to it
    enters (its entry: a helper state for a batched map), and the scope's states."""

    names: dict[str, str]
    entry: dict[str, str]
    states: dict[str, State] = field(default_factory=dict)
    top: bool = False


@dataclass
class _StepFunctionsContext(RenderContext):
    """RenderContext plus what this translator tracks while rendering one workflow."""

    plan: DagPlan | None = None
    saga: SagaPlan | None = None
    handler: dict[str, str] = field(default_factory=dict)  # main-path step -> failure entry
    reserved: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)
    frames: list[_Frame] = field(default_factory=list)
    pointers: dict[str, str] = field(default_factory=dict)
    chains: dict[tuple[str, ...], str] = field(default_factory=dict)  # chain suffix -> state
    tail: str = ""  # the dead-letter state, else the final Fail state
    failed: str = ""  # the final Fail state of an unhandled failure

    def invent(self, base: str) -> str:
        """A new state name for a helper state, clashing with no step and no state."""
        name = fresh_name(base, self.reserved | self.taken)
        self.taken.add(name)
        return name

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]


def _own(ctx: RenderContext) -> _StepFunctionsContext:
    assert isinstance(ctx, _StepFunctionsContext), "StepFunctionsTranslator renders its context"
    return ctx


class StepFunctionsTranslator(Translator[State]):
    """Workflow spec → ASL definition + state machine configuration (+ schedule)."""

    engine: ClassVar[EngineName] = "stepfunctions"
    FEATURES: ClassVar[dict[str, Feature]] = {
        **GOVERNANCE_FEATURES,
        **ALARM_FEATURES,
        "access": Feature(
            "approximated",
            "with spec.identity cpl run checks access.start with OPA on a verified token; "
            "approvals are task-token callbacks (SendTaskSuccess) and executions started by "
            "other AWS clients, which only IAM authorizes: cpl verifies no principal there",
        ),
        "task": Feature("exact"),
        "task.lambda": Feature("exact"),
        "task.service": Feature(
            "approximated", "a service integration's result is its response envelope"
        ),
        "task.timeout": Feature("exact"),
        "task.heartbeat": Feature("exact"),
        "task.heartbeat.lambda": Feature(
            "approximated",
            "a Lambda function cannot send heartbeats; only TimeoutSeconds bounds the call",
        ),
        "task.parameters": Feature("exact"),
        "task.parameters.nested-path": Feature(
            "unsupported", "ASL resolves paths inside lists only as flat States.Array arguments"
        ),
        "task.idempotencyKey": Feature(
            "exact",
            "lambda:invoke passes the resolved key in the ClientContext "
            "(custom.idempotencyKey); the event stays the task input",
        ),
        "task.idempotencyKey.service": Feature(
            "approximated",
            "only a Lambda invocation carries the key: a service integration or an activity "
            "gets the task input alone",
        ),
        "task.circuitBreaker": Feature(
            "exact",
            "DynamoDB conditional updates around the call, shared by the target's runs "
            "(table circuitTable, item <target>/<activity>)",
        ),
        "retry": Feature("exact"),
        "retry.jitter": Feature("exact"),
        "retry.maxInterval": Feature("exact"),
        "retry.nonRetryable": Feature("exact"),
        "duration.rounded": Feature(
            "approximated", "Step Functions counts whole seconds: rounded up"
        ),
        "catch": Feature("exact"),
        "catch.DataPathError": Feature(
            "approximated", "a path error is States.Runtime on Step Functions, not catchable"
        ),
        "catch.Timeout.resultPath": Feature(
            "approximated",
            "a caught timeout is written at resultPath as {Error: States.Timeout} (the engine's "
            "name), not Timeout; routing on it is exact",
        ),
        "choice": Feature("exact"),
        "condition": Feature("exact"),
        "condition.eq.structured": Feature(
            "unsupported", "ASL compares only strings, numbers, booleans and null"
        ),
        "condition.matches": Feature("exact"),
        "condition.matches.regex": Feature(
            "unsupported", "StringMatches knows only the * wildcard; the rule never matches"
        ),
        "parallel": Feature("exact"),
        "map": Feature("exact"),
        "map.maxConcurrency": Feature("exact"),
        "map.batchSize": Feature(
            "approximated",
            "inline Map over States.ArrayPartition chunks (ItemBatcher is Distributed-Map only)"
            "; a helper Pass state computes the chunks",
        ),
        "wait": Feature("exact"),
        "wait.catch": Feature("unsupported", "an ASL Wait state cannot catch errors"),
        "approval": Feature(
            "approximated",
            "an events:putEvents.waitForTaskToken task; `cpl signal` answers with "
            "SendTaskSuccess (approved) or SendTaskFailure ApprovalRejected",
        ),
        "approval.approvers": Feature(
            "approximated", "roles are checked by `cpl signal` before it answers, not by the engine"
        ),
        "approval.onTimeout": Feature("exact"),
        "succeed": Feature("exact"),
        "fail": Feature("exact"),
        "dag": Feature("exact"),
        "dag.layer": Feature(
            "approximated",
            "a layer runs as one Parallel state: the next layer waits for the slowest step",
        ),
        "dag.when": Feature("exact"),
        "dag.when.layer": Feature(
            "approximated", "a skipped step inside a parallel layer writes null at its resultPath"
        ),
        "dag.catch": Feature("unsupported", "a DAG step has no transition to catch into"),
        "workflow.timeout": Feature("exact"),
        "retention": Feature(
            "approximated",
            f"exact for the log group; execution history is kept a fixed "
            f"{EXECUTION_HISTORY_DAYS} days",
        ),
        "schedule": Feature("exact"),
        "schedule.timezone": Feature("exact"),
        "schedule.cron": Feature(
            "approximated",
            "AWS cron cannot restrict both day-of-month and day-of-week; day-of-week dropped",
        ),
        "schedule.overlap": Feature(
            "approximated", "EventBridge Scheduler has no overlap control: every firing starts"
        ),
        "triggers": Feature(
            "approximated",
            "an EventBridge rule per trigger: the CloudEvent travels as the event's detail; "
            "EventBridge delivers at least once and does not deduplicate by event id",
        ),
        "security.encryption": Feature("exact"),
        "classification": Feature("exact"),
        "input.schema": Feature(
            "approximated",
            "cpl run validates the whole schema before starting; the state machine itself "
            "fails with InputInvalid on missing required properties and wrong scalar types "
            "only: patterns, formats, ranges, objects and arrays cannot be checked in ASL",
        ),
        "payload.limit": Feature(
            "approximated",
            f"checked against Step Functions' documented {PAYLOAD_LIMIT_BYTES}-byte limit when "
            "rendering; the emulator cpl is tested on does not enforce the limit",
        ),
        "payload.limit.exceeded": Feature(
            "unsupported", f"Step Functions payloads are limited to {PAYLOAD_LIMIT_BYTES} bytes"
        ),
        "payload.offload": Feature(
            "unsupported",
            "Step Functions checks its 256 KiB limit on every state's input and result before "
            "a later state could move the data to S3 (an S3 state in ASL could only move data "
            "already below the limit), so cpl renders no claim check: a function must write "
            "data above the threshold to the bound store itself and return a reference "
            "(docs/runtime.md, Payload offload)",
        ),
        "onError.deadLetter": Feature(
            "approximated",
            "an sqs:sendMessage state sends the CloudEvent; its trace is null (ASL cannot "
            "compute it): cpl dlq show reads it from the execution history",
        ),
        "onError.compensate": Feature(
            "approximated",
            "compensations run on the document as of the failure, not as of the undone step",
        ),
        "onError.compensate.ambiguous": Feature(
            "approximated",
            "reached with different compensations on different paths: the longest chain runs",
        ),
        "onError.compensate.nested": Feature(
            "unsupported", "compensations inside parallel branches or maps are not run"
        ),
        "state.renamed": Feature(
            "approximated", "ASL state names are global: a nested duplicate step was renamed"
        ),
    }

    # -- the artifact ---------------------------------------------------------------------

    def context(
        self, workflow: Workflow, target: Target, environment: Environment
    ) -> _StepFunctionsContext:
        return _StepFunctionsContext(workflow, target, environment, dict(self.FEATURES))

    def render(self, workflow: Workflow, target: Target, environment: Environment) -> Artifact:
        """The state machine for `target`: ASL, configuration, log group and schedule."""
        ctx = self.context(workflow, target, environment)
        definition = self.definition(workflow, ctx)
        meta = workflow.metadata
        resource = f"{meta.tenant}-{meta.name}"
        document: dict[str, Any] = {
            "kind": "stepfunctions",
            "name": resource,
            "definition": definition,
            "configuration": self._configuration(workflow, ctx),
            "logGroup": self._log_group(workflow, ctx),
        }
        schedule = self._schedule(workflow, resource, ctx)
        if schedule is not None:
            document["schedule"] = schedule
        if workflow.spec.triggers:
            document["triggers"] = self._triggers(workflow, resource, ctx)
        alarms = record_alarms(workflow, resource, _machine_arn(resource, ctx.target), ctx)
        if alarms:
            document["alarms"] = alarms
        self._role(document, resource, ctx)
        self._record_workflow(workflow, ctx)
        return Artifact(
            workflow=workflow.key,
            version=meta.version,
            target=target.name,
            engine=self.engine,
            resource=resource,
            document=document,
            support=tuple(ctx.support),
            write_files=write_files,
        )

    def definition(self, workflow: Workflow, ctx: RenderContext) -> dict[str, Any]:
        """The ASL state machine of `workflow` (defaults applied, DAG lowered, saga woven)."""
        own = _own(ctx)
        original = apply_defaults(workflow)
        own.pointers = {s.name: f"/spec/steps/{i}" for i, s in enumerate(original.spec.steps)}
        if original.spec.is_dag:
            own.record("dag", "/spec/steps")
            own.plan = plan_dag(original)
            lowered = own.plan.workflow
        else:
            lowered = original
        own.reserved = step_names(lowered)
        self._prepare_failure_handling(lowered, own)
        spec = lowered.spec
        assert spec.start is not None
        main = self._scope(spec.start, spec.steps, "/spec", own, top=True)
        if spec.input is not None and spec.input.schema_ is not None:
            main, _ = input_checks.guard(main, spec.input.schema_, own.invent)
        definition: dict[str, Any] = {
            "Comment": f"{workflow.key} {workflow.metadata.version} (rendered by cpl)",
            **main,
        }
        if spec.timeout is not None:
            own.record("workflow.timeout", "/spec/timeout")
            definition["TimeoutSeconds"] = self._seconds(spec.timeout, "/spec/timeout", own)
        return definition

    # -- scopes ---------------------------------------------------------------------------

    def _scope(
        self,
        start: str,
        steps: list[Step],
        pointer: str,
        ctx: _StepFunctionsContext,
        top: bool = False,
    ) -> dict[str, Any]:
        """{"StartAt", "States"} of one state machine: the workflow, a branch or a map."""
        excluded = compensation_targets(steps) if top else set()
        names: dict[str, str] = {}
        entry: dict[str, str] = {}
        for step in steps:
            if step.name in excluded:
                continue
            name = step.name
            if name in ctx.taken:
                name = ctx.invent(f"{pointer.rsplit('/', 1)[-1]}-{step.name}")
                ctx.record("state.renamed", self._pointer(step, pointer, steps, ctx))
            ctx.taken.add(name)
            names[step.name] = entry[step.name] = name
            if isinstance(step, MapStep) and step.batch_size:
                entry[step.name] = ctx.invent(f"{name}-batches")
        frame = _Frame(names=names, entry=entry, top=top)
        ctx.frames.append(frame)
        for step in steps:
            if step.name in excluded:
                continue
            state = self.step(step, self._pointer(step, pointer, steps, ctx), ctx)
            frame.states[names[step.name]] = state
        if top:
            self._failure_states(steps, frame, ctx)
        ctx.frames.pop()
        return {"StartAt": frame.entry[start], "States": dict(frame.states)}

    def _pointer(
        self, step: Step, scope: str, steps: list[Step], ctx: _StepFunctionsContext
    ) -> str:
        in_layer = scope in ("/spec", _LAYER)
        if ctx.plan is not None and in_layer and step.name in ctx.pointers:
            return ctx.pointers[step.name]
        if ctx.plan is not None and step.name in ctx.plan.synthetic:
            return "/spec/steps"
        index = next(i for i, s in enumerate(steps) if s is step)
        return f"{scope}/steps/{index}"

    def _transition(self, target: str, ctx: _StepFunctionsContext) -> str:
        return ctx.frame.entry[target]

    def _next(self, step: Step, ctx: _StepFunctionsContext) -> State:
        if step.next:
            return {"Next": self._transition(step.next, ctx)}
        return {"End": True}

    # -- step types -----------------------------------------------------------------------

    def task(self, step: TaskStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        own.record("task", path)
        binding = own.activity(step.activity, step.name)
        resource = binding.get("resource")
        if not isinstance(resource, str) or not resource:
            raise BindingError(
                f"workflow '{own.workflow.key}' step '{step.name}': the stepfunctions binding "
                f"of activity '{step.activity}' in environment '{own.environment.name}' has "
                "no `resource` (add spec.bindings.activities."
                f"{step.activity}.stepfunctions.resource)"
            )
        lambda_task = bool(_LAMBDA_ARN.match(resource))
        if lambda_task:
            own.record("task.lambda", f"{path}/activity")
        elif not _ACTIVITY_ARN.match(resource):
            own.record("task.service", f"{path}/activity")
        state: State = {"Type": "Task", "Resource": resource}
        if step.parameters is not None:
            own.record("task.parameters", f"{path}/parameters")
            state["Parameters"] = self._parameters(step.parameters, f"{path}/parameters", own)
        state["ResultPath"] = _result_path(step.result_path)
        if step.timeout is not None:
            own.record("task.timeout", f"{path}/timeout")
            state["TimeoutSeconds"] = self._seconds(step.timeout, f"{path}/timeout", own)
        if step.heartbeat is not None:
            if lambda_task:
                own.record("task.heartbeat.lambda", f"{path}/heartbeat")
            else:
                heartbeat = self._seconds(step.heartbeat, f"{path}/heartbeat", own)
                if heartbeat < state.get("TimeoutSeconds", heartbeat + 1):
                    own.record("task.heartbeat", f"{path}/heartbeat")
                    state["HeartbeatSeconds"] = heartbeat
                else:
                    own.record(
                        "task.heartbeat", f"{path}/heartbeat", "not below the timeout: dropped"
                    )
        if step.retry is not None:
            retriers = self._retry(step.retry, f"{path}/retry", own)
            if retriers:
                state["Retry"] = retriers
        return calls.finish(
            state,
            step,
            path,
            own,
            lambda_task=lambda_task,
            seconds=lambda duration, at: self._seconds(duration, at, own),
            with_catch=lambda done: self._with_catch(done, step, path, own),
        )

    def choice(self, step: ChoiceStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        when_of = None
        if own.plan is not None and step.name in own.plan.synthetic:
            when_of = own.pointers.get(step.rules[0].next, path) + "/when"
            own.record("dag.when", when_of)
        else:
            own.record("choice", path)
        choices = []
        for index, rule in enumerate(step.rules):
            where = when_of or f"{path}/rules/{index}/when"
            condition = self.condition(rule.when, where, own)
            choices.append({**condition, "Next": self._transition(rule.next, own)})
        state: State = {"Type": "Choice", "Choices": choices}
        if step.default:
            state["Default"] = self._transition(step.default, own)
            if when_of is not None:
                state["Default"] = self._skipped(step, state["Default"], own)
        return state

    def _skipped(self, when: ChoiceStep, after: str, ctx: _StepFunctionsContext) -> str:
        """Where a DAG step skipped by its `when` goes: a Pass state writing null at its
        resultPath on the way to the next layer (docs/runtime.md: its result is null). Inside a
        parallel layer the branch's `-skipped` state returns that null instead."""
        assert ctx.plan is not None
        if when.default in ctx.plan.skips:
            return after
        skipped = next(s for s in ctx.plan.workflow.spec.steps if s.name == when.rules[0].next)
        if skipped.type not in WRITING_TYPES:
            return after
        name = ctx.invent(f"{skipped.name}-skipped")
        ctx.frame.states[name] = {
            "Type": "Pass",
            "Result": None,
            "ResultPath": _result_path(getattr(skipped, "result_path", None)),
            "Next": after,
        }
        return name

    def parallel(self, step: ParallelStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        if own.plan is not None and step.name in own.plan.merges:
            return self._layer(step, path, own)
        own.record("parallel", path)
        branches = [
            self._scope(branch.start, branch.steps, f"{path}/branches/{index}", own)
            for index, branch in enumerate(step.branches)
        ]
        state: State = {"Type": "Parallel", "Branches": branches}
        state["ResultPath"] = _result_path(step.result_path)
        return self._with_catch({**state, **self._next(step, own)}, step, path, own, linked=True)

    def map(self, step: MapStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        own.record("map", path)
        processor = self._scope(step.start, step.steps, path, own)
        state: State = {
            "Type": "Map",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **processor},
        }
        if step.max_concurrency is not None:
            own.record("map.maxConcurrency", f"{path}/maxConcurrency")
        state["MaxConcurrency"] = step.max_concurrency or 0
        if not step.batch_size:
            state["ItemsPath"] = step.items.text
            state["ResultPath"] = _result_path(step.result_path)
            return self._with_catch(state, step, path, own)
        # Batching: a Pass state (the step's entry) partitions the items and keeps the
        # document beside the chunks; the Map iterates the chunks and restores the document.
        own.record("map.batchSize", f"{path}/batchSize")
        partition = own.frame.entry[step.name]
        own.frame.states[partition] = {
            "Type": "Pass",
            "Parameters": {
                "batches.$": f"States.ArrayPartition({step.items.text}, {step.batch_size})",
                "document.$": "$",
            },
            "Next": own.frame.names[step.name],
        }
        state["ItemsPath"] = "$.batches"
        state["ResultPath"] = _nested("$.document", step.result_path)
        state["OutputPath"] = "$.document"
        state = self._with_catch(state, step, path, own)
        for catcher in state.get("Catch", []):
            # a catcher sees the {batches, document} input: unwrap it before moving on
            unwrap = own.invent(f"{step.name}-caught")
            own.frame.states[unwrap] = {
                "Type": "Pass",
                "InputPath": "$.document",
                "Next": catcher["Next"],
            }
            catcher["Next"] = unwrap
            result = catcher["ResultPath"]
            catcher["ResultPath"] = None if result is None else _nested("$.document", result)
        return state

    def wait(self, step: WaitStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        own.record("wait", path)
        state: State = {"Type": "Wait"}
        if step.duration is not None:
            state["Seconds"] = self._seconds(step.duration, f"{path}/duration", own)
        elif step.until is not None:
            state["TimestampPath"] = step.until.text
        for index, _ in enumerate(step.catch):
            own.record("wait.catch", f"{path}/catch/{index}")
        return {**state, **self._next(step, own)}

    def approval(self, step: ApprovalStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        own.record("approval", path)
        roles = step.approvers.roles if step.approvers else []
        if step.approvers is not None:
            own.record("approval.approvers", f"{path}/approvers")
        detail = {
            "workflow": own.workflow.key,
            "version": own.workflow.metadata.version,
            "step": step.name,
            "signal": step.signal,
            "approvers": list(roles),
            "executionId.$": "$$.Execution.Id",
            "taskToken.$": "$$.Task.Token",
        }
        state: State = {
            "Type": "Task",
            "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
            "Parameters": {
                "Entries": [
                    {"Source": "cpl", "DetailType": "cpl.approval.requested", "Detail": detail}
                ]
            },
            "ResultPath": None,
        }
        if step.timeout is not None:
            state["TimeoutSeconds"] = self._seconds(step.timeout, f"{path}/timeout", own)
        state = self._with_catch(state, step, path, own)
        if step.on_timeout is not None:
            own.record("approval.onTimeout", f"{path}/onTimeout")
            timeout = {
                "ErrorEquals": ["States.Timeout"],
                "ResultPath": None,
                "Next": self._transition(step.on_timeout, own),
            }
            state["Catch"] = [timeout, *state.get("Catch", [])]
        return state

    def succeed(self, step: SucceedStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        if own.plan is not None and step.name in own.plan.skips:
            # a skipped DAG step inside a parallel layer: its "result" is null
            return {"Type": "Pass", "Result": None, "End": True}
        own.record("succeed", path)
        return {"Type": "Succeed"}

    def fail(self, step: FailStep, path: str, ctx: RenderContext) -> State:
        own = _own(ctx)
        own.record("fail", path)
        error = {"Error": step.error or "Failed", "Cause": step.cause or ""}
        if own.frame.top and step.name in own.handler:
            # unhandled failure with a saga/dead letter: record the error, then compensate
            return {
                "Type": "Pass",
                "Result": error,
                "ResultPath": ERROR_PATH,
                "Next": own.handler[step.name],
            }
        state: State = {"Type": "Fail", "Error": error["Error"]}
        if step.cause:
            state["Cause"] = step.cause
        return state

    # -- conditions -----------------------------------------------------------------------

    def condition(self, condition: Condition, path: str, ctx: RenderContext) -> State:
        """An ASL choice rule (without Next) holding exactly when the spec condition does."""
        own = _own(ctx)
        if isinstance(condition, AllOf):
            return {
                "And": [
                    self.condition(c, f"{path}/all/{i}", own) for i, c in enumerate(condition.all)
                ]
            }
        if isinstance(condition, AnyOf):
            return {
                "Or": [
                    self.condition(c, f"{path}/any/{i}", own) for i, c in enumerate(condition.any)
                ]
            }
        if isinstance(condition, NotOf):
            return {"Not": self.condition(condition.not_, f"{path}/not", own)}
        return self._comparison(condition, path, own)

    def _comparison(self, cmp: Comparison, path: str, ctx: _StepFunctionsContext) -> State:
        variable = cmp.path.text
        operator, operand = cmp.operator, cmp.operand
        present: State = {"Variable": variable, "IsPresent": True}
        if operator == "exists":
            ctx.record("condition", path)
            return {"Variable": variable, "IsPresent": bool(operand)}
        if operator in _NUMERIC:
            ctx.record("condition", path)
            return _guarded(variable, "IsNumeric", f"Numeric{_NUMERIC[operator]}", operand)
        if operator in ("eq", "ne", "in"):
            values = list(operand) if operator == "in" else [operand]
            if any(isinstance(v, dict | list) for v in values):
                ctx.record("condition.eq.structured", path)
            else:
                ctx.record("condition", path)
            rules = [_equals(variable, value) for value in values]
            rule = dict(_NEVER) if not rules else rules[0] if len(rules) == 1 else {"Or": rules}
            if operator == "ne":
                return {"And": [present, {"Not": rule}]}
            return rule
        assert operator == "matches"
        patterns = _glob_patterns(str(operand))
        if patterns is None:
            ctx.record("condition.matches.regex", path)
            return dict(_NEVER)
        ctx.record("condition.matches", path)
        rules = [
            _guarded(variable, "IsString", "StringMatches" if glob else "StringEquals", text)
            for text, glob in patterns
        ]
        return rules[0] if len(rules) == 1 else {"Or": rules}

    # -- retry, catch, parameters, durations ----------------------------------------------

    def _retry(self, retry: Retry, path: str, ctx: _StepFunctionsContext) -> list[State]:
        if retry.max_attempts <= 1:
            return []
        ctx.record("retry", path)
        retrier: State = {"ErrorEquals": ["States.ALL"], "MaxAttempts": retry.max_attempts - 1}
        interval = retry.initial_interval
        retrier["IntervalSeconds"] = (
            self._seconds(interval, f"{path}/initialInterval", ctx) if interval else 1
        )
        retrier["BackoffRate"] = float(retry.backoff_rate or 2.0)
        if retry.max_interval is not None:
            ctx.record("retry.maxInterval", f"{path}/maxInterval")
            retrier["MaxDelaySeconds"] = self._seconds(
                retry.max_interval, f"{path}/maxInterval", ctx
            )
        if retry.jitter is not None:
            ctx.record("retry.jitter", f"{path}/jitter")
            retrier["JitterStrategy"] = "FULL" if retry.jitter == "full" else "NONE"
        retriers = [retrier]
        if retry.non_retryable:
            ctx.record("retry.nonRetryable", f"{path}/nonRetryable")
            errors = [_error_name(e) for e in retry.non_retryable]
            retriers.insert(0, {"ErrorEquals": errors, "MaxAttempts": 0})
        return retriers

    def _with_catch(
        self,
        state: State,
        step: TaskStep | ParallelStep | MapStep | ApprovalStep,
        path: str,
        ctx: _StepFunctionsContext,
        linked: bool = False,
    ) -> State:
        """The state with its Next/End, the step's catchers and, on the main path, the
        saga's catch-all that hands an unhandled failure to the failure handler."""
        catchers: list[State] = []
        catches_all = False
        for index, catch in enumerate(step.catch):
            catchers.append(self._catcher(catch, f"{path}/catch/{index}", ctx))
            catches_all = catches_all or "*" in catch.errors
        if ctx.frame.top and step.name in ctx.handler and not catches_all:
            catchers.append(
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": ERROR_PATH,
                    "Next": ctx.handler[step.name],
                }
            )
        result = dict(state)
        if catchers:
            result["Catch"] = catchers
        if not linked:
            result.update(self._next(step, ctx))
        return result

    def _catcher(self, catch: Catch, path: str, ctx: _StepFunctionsContext) -> State:
        ctx.record("catch", path)
        if "DataPathError" in catch.errors:
            ctx.record("catch.DataPathError", f"{path}/errors")
        if catch.result_path is not None and {"Timeout", "*"} & set(catch.errors):
            ctx.record("catch.Timeout.resultPath", f"{path}/resultPath")
        errors = ["States.ALL"] if "*" in catch.errors else [_error_name(e) for e in catch.errors]
        return {
            "ErrorEquals": errors,
            "ResultPath": _result_path(catch.result_path, default=None),
            "Next": self._transition(catch.next, ctx),
        }

    def _parameters(
        self, value: dict[str, Any], path: str, ctx: _StepFunctionsContext
    ) -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        for key, item in value.items():
            if is_path(item):
                rendered[f"{key}.$"] = item
            elif isinstance(item, dict):
                rendered[key] = self._parameters(item, f"{path}/{key}", ctx)
            elif isinstance(item, list) and _contains_path(item):
                if all(not isinstance(v, dict | list) for v in item):
                    arguments = ", ".join(_intrinsic_argument(v) for v in item)
                    rendered[f"{key}.$"] = f"States.Array({arguments})"
                else:
                    ctx.record("task.parameters.nested-path", f"{path}/{key}")
                    rendered[key] = item
            else:
                rendered[key] = item
        return rendered

    def _seconds(self, duration: Duration, path: str, ctx: _StepFunctionsContext) -> int:
        seconds = max(1, math.ceil(duration.seconds))
        if seconds != duration.seconds:
            ctx.record("duration.rounded", path)
        return seconds

    # -- DAG layers -----------------------------------------------------------------------

    def _layer(self, step: ParallelStep, path: str, ctx: _StepFunctionsContext) -> State:
        """A DAG layer: branches share the document, so each branch returns only its
        step's result, an extra branch passes the document through, and Pass states write
        every result back at its step's `resultPath`."""
        assert ctx.plan is not None
        ctx.record("dag.layer", path)
        owner = ctx.frame.entry[step.name]
        identity = ctx.invent(f"{owner}-input")
        branches: list[dict[str, Any]] = [
            {"StartAt": identity, "States": {identity: {"Type": "Pass", "End": True}}}
        ]
        writes: list[tuple[int, DataPath | None]] = []
        for index, branch in enumerate(step.branches):
            dag_step = ctx.plan.merges[step.name][index]
            steps = list(branch.steps)
            for position, inner in enumerate(steps):
                if inner.name == dag_step and inner.type in WRITING_TYPES:
                    writes.append((index + 1, getattr(inner, "result_path", None)))
                    steps[position] = inner.model_copy(update={"result_path": DataPath("$")})
                if inner.name in ctx.plan.skips:
                    ctx.record("dag.when.layer", ctx.pointers.get(dag_step, path) + "/when")
            branches.append(self._scope(branch.start, steps, _LAYER, ctx))
        selector = {"document.$": "$[0]"}
        selector.update({f"result{i}.$": f"$[{i}]" for i, _ in writes})
        state: State = {
            "Type": "Parallel",
            "Branches": branches,
            "ResultSelector": selector,
            "ResultPath": "$",
        }
        state = self._with_catch(state, step, path, ctx, linked=True)
        after = self._next(step, ctx)
        if not writes:
            return {**state, "OutputPath": "$.document", **after}
        names = [ctx.invent(f"{owner}-merge-{n}") for n in range(1, len(writes) + 1)]
        state["Next"] = names[0]
        for position, (index, result_path) in enumerate(writes):
            merge: State = {
                "Type": "Pass",
                "InputPath": f"$.result{index}",
                "ResultPath": _nested("$.document", result_path),
            }
            if position + 1 < len(writes):
                merge["Next"] = names[position + 1]
            else:
                merge.update({"OutputPath": "$.document", **after})
            ctx.frame.states[names[position]] = merge
        return state

    # -- saga and dead letter -------------------------------------------------------------

    def _prepare_failure_handling(self, workflow: Workflow, ctx: _StepFunctionsContext) -> None:
        """Plan the failure entry of every main-path step: its compensation chain's head,
        else the dead-letter state, else nothing (the failure ends the run as is)."""
        on_error = workflow.spec.on_error
        if on_error is None or not (on_error.compensate or on_error.dead_letter):
            return
        ctx.saga = plan_saga(workflow) if on_error.compensate else SagaPlan({}, frozenset())
        if on_error.compensate:
            ctx.record("onError.compensate", "/spec/onError/compensate")
            for name in sorted(ctx.saga.ambiguous):
                ctx.record("onError.compensate.ambiguous", ctx.pointers.get(name, "/spec/steps"))
            self._record_nested_compensations(workflow, ctx)
        if on_error.dead_letter:
            ctx.tail = ctx.invent("dead-letter")
            ctx.failed = ctx.invent("run-failed")
        else:
            ctx.tail = ctx.failed = ctx.invent("run-failed")
        fallible = self._main_path(workflow)
        if not fallible:
            return
        used = [ctx.saga.chains.get(name, ()) for name in fallible]
        suffixes = sorted(
            {chain[i:] for chain in used for i in range(len(chain))},
            key=lambda suffix: (-len(suffix), suffix),
        )
        for suffix in suffixes:
            # a compensation runs in one chain state per distinct tail; the first keeps its name
            if suffix[0] in ctx.taken:
                ctx.chains[suffix] = ctx.invent(f"{suffix[0]}-undo")
            else:
                ctx.chains[suffix] = suffix[0]
                ctx.taken.add(suffix[0])
        for name in fallible:
            chain = ctx.saga.chains.get(name, ())
            ctx.handler[name] = ctx.chains[chain] if chain else ctx.tail

    def _main_path(self, workflow: Workflow) -> list[str]:
        """Main-path steps whose failure reaches the failure handler (no catch-all)."""
        targets = compensation_targets(workflow.spec.steps)
        names = []
        for step in workflow.spec.steps:
            if step.name in targets:
                continue
            catches_all = any("*" in c.errors for c in getattr(step, "catch", []))
            if step.type == "fail" or (step.type in _FALLIBLE and not catches_all):
                names.append(step.name)
        return names

    def _record_nested_compensations(self, workflow: Workflow, ctx: _StepFunctionsContext) -> None:
        top = {id(s) for s in workflow.spec.steps}
        merged = set(ctx.plan.merges) if ctx.plan else set()

        def visit(steps: list[Step], pointer: str) -> None:
            for index, step in enumerate(steps):
                here = f"{pointer}/steps/{index}"
                if isinstance(step, TaskStep) and step.compensation and id(step) not in top:
                    ctx.record("onError.compensate.nested", f"{here}/compensation")
                if isinstance(step, ParallelStep) and step.name not in merged:
                    for b, branch in enumerate(step.branches):
                        visit(branch.steps, f"{here}/branches/{b}")
                elif isinstance(step, MapStep):
                    visit(step.steps, here)

        visit(workflow.spec.steps, "/spec")

    def _failure_states(self, steps: list[Step], frame: _Frame, ctx: _StepFunctionsContext) -> None:
        """The compensation chains, the dead-letter hand-off and the final Fail state."""
        on_error = ctx.workflow.spec.on_error
        if not ctx.handler or on_error is None:
            return
        by_name = {s.name: s for s in steps}
        pointers = {s.name: f"/spec/steps/{i}" for i, s in enumerate(ctx.workflow.spec.steps)}
        for suffix, name in sorted(ctx.chains.items()):
            compensation = by_name[suffix[0]]
            assert isinstance(compensation, TaskStep)
            follow = ctx.chains[suffix[1:]] if len(suffix) > 1 else ctx.tail
            unlinked = compensation.model_copy(update={"next": None, "end": True, "catch": []})
            ctx.frames.append(_Frame(names={}, entry={}))
            state = self.task(unlinked, pointers.get(compensation.name, "/spec/steps"), ctx)
            ctx.frames.pop()
            state.pop("End", None)
            # its result is dropped (as on Temporal): the document keeps the error to report
            state["ResultPath"] = None
            state.pop("OutputPath", None)
            # a failing compensation does not stop the others (as on Temporal)
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": follow}]
            state["Next"] = follow
            frame.states[name] = state
        if on_error.dead_letter:
            ctx.record("onError.deadLetter", "/spec/onError/deadLetter")
            queue = ctx.queue(on_error.dead_letter, "onError.deadLetter")
            frame.states[ctx.tail] = self._dead_letter(queue, ctx.failed, ctx)
        frame.states[ctx.failed] = {
            "Type": "Fail",
            "ErrorPath": f"{ERROR_PATH}.Error",
            "CausePath": f"{ERROR_PATH}.Cause",
        }

    def _dead_letter(self, queue: str, failed: str, ctx: _StepFunctionsContext) -> State:
        return dead_letter_state(
            ctx.workflow, ctx.target, ctx.environment, queue, ERROR_PATH, failed
        )

    # -- configuration --------------------------------------------------------------------

    def _configuration(self, workflow: Workflow, ctx: _StepFunctionsContext) -> dict[str, Any]:
        meta = workflow.metadata
        target = ctx.target
        regulated_data = meta.classification in REGULATED_CLASSES
        ctx.record("classification", "/metadata/classification")
        level = "ALL" if meta.compliance or ctx.environment.tier != "production" else "ERROR"
        configuration: dict[str, Any] = {
            "type": "STANDARD",
            "roleArn": target.role_arn,
            "loggingConfiguration": {
                "level": level,
                "includeExecutionData": not regulated_data,
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": self._log_group_arn(workflow, ctx)}}
                ],
            },
            "tracingConfiguration": {"enabled": ctx.environment.tier in ("production", "staging")},
            "tags": {
                "cpl:managed": "true",
                "cpl:workflow": workflow.key,
                "cpl:version": meta.version,
                "cpl:owner": meta.owner,
                "cpl:classification": meta.classification,
                "cpl:environment": ctx.environment.name,
                "cpl:target": target.name,
            },
        }
        security = workflow.spec.security
        if security is not None and security.encryption is not None:
            ctx.record("security.encryption", "/spec/security/encryption")
            configuration["encryptionConfiguration"] = {
                "type": "CUSTOMER_MANAGED_KMS_KEY",
                "kmsKeyId": ctx.key(security.encryption.key),
            }
        else:
            configuration["encryptionConfiguration"] = {"type": "AWS_OWNED_KEY"}
        return configuration

    def _log_group(self, workflow: Workflow, ctx: _StepFunctionsContext) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self._log_group_name(workflow, ctx)}
        retention = workflow.spec.retention
        if retention is not None:
            ctx.record("retention", "/spec/retention")
            group["retentionInDays"] = log_retention_days(retention.seconds)
        return group

    def _log_group_name(self, workflow: Workflow, ctx: _StepFunctionsContext) -> str:
        meta = workflow.metadata
        return f"/cpl/{ctx.environment.name}/{meta.tenant}/{meta.name}"

    def _log_group_arn(self, workflow: Workflow, ctx: _StepFunctionsContext) -> str:
        region = ctx.target.region or "us-east-1"
        account = _account(ctx.target)
        return f"arn:aws:logs:{region}:{account}:log-group:{self._log_group_name(workflow, ctx)}:*"

    def _schedule(
        self, workflow: Workflow, resource: str, ctx: _StepFunctionsContext
    ) -> dict[str, Any] | None:
        schedule = workflow.spec.schedule
        if schedule is None:
            return None
        ctx.record("schedule", "/spec/schedule")
        expression, exact = aws_cron(schedule.cron)
        if not exact:
            ctx.record("schedule.cron", "/spec/schedule/cron")
        if schedule.timezone is not None:
            ctx.record("schedule.timezone", "/spec/schedule/timezone")
        ctx.record("schedule.overlap", "/spec/schedule/overlap")
        region = ctx.target.region or "us-east-1"
        machine = f"arn:aws:states:{region}:{_account(ctx.target)}:stateMachine:{resource}"
        return {
            "Name": resource,
            "GroupName": "default",
            "ScheduleExpression": f"cron({expression})",
            "ScheduleExpressionTimezone": schedule.timezone or "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {"Arn": machine, "RoleArn": ctx.target.role_arn, "Input": "{}"},
        }

    def _triggers(
        self, workflow: Workflow, resource: str, ctx: _StepFunctionsContext
    ) -> list[dict[str, Any]]:
        for index, _ in enumerate(workflow.spec.triggers):
            ctx.record("triggers", f"/spec/triggers/{index}")
        machine = _machine_arn(resource, ctx.target)
        return render_rules(workflow, resource, machine, ctx.target.role_arn)

    def _role(self, document: dict[str, Any], resource: str, ctx: _StepFunctionsContext) -> None:
        """The workload identity (stepfunctions/iam.py): a role of its own unless the target
        names one."""
        target = ctx.target
        region, account = target.region or "us-east-1", _account(target)
        managed = not target.role_arn
        role = iam.render_role(
            document,
            resource=resource,
            region=region,
            account=account,
            machine_arn=f"arn:aws:states:{region}:{account}:stateMachine:{resource}",
            managed=managed,
            provided=target.role_arn,
        )
        arn = iam.role_arn(account, resource) if managed else target.role_arn
        iam.with_role(document, role, arn)

    def _record_workflow(self, workflow: Workflow, ctx: _StepFunctionsContext) -> None:
        spec = workflow.spec
        record_governance(workflow, ctx, monitoring=False)  # alarms.record_alarms did
        if spec.input is not None:
            if spec.input.schema_ is not None:
                ctx.record("input.schema", "/spec/input/schema")
            limit = spec.input.max_inline_bytes
            if limit is not None:
                exceeded = limit.bytes > PAYLOAD_LIMIT_BYTES
                feature = "payload.limit.exceeded" if exceeded else "payload.limit"
                ctx.record(feature, "/spec/input/maxInlineBytes")
        if spec.payload is not None and spec.payload.offload is not None:
            ctx.record("payload.offload", "/spec/payload/offload")
        if workflow.spec.is_dag:
            for index, step in enumerate(spec.steps):
                for c, _ in enumerate(getattr(step, "catch", [])):
                    ctx.record("dag.catch", f"/spec/steps/{index}/catch/{c}")


# --- helpers ----------------------------------------------------------------------------


def write_files(artifact: Artifact) -> dict[str, str]:
    """`<resource>.asl.json` (the definition) and `<resource>.config.json` (the rest)."""
    document = artifact.document
    config = {key: value for key, value in document.items() if key != "definition"}
    return {
        f"{artifact.resource}.asl.json": pretty_json(document["definition"]),
        f"{artifact.resource}.config.json": pretty_json(config),
    }


def pretty_json(value: Any) -> str:
    """Deterministic, human-diffable JSON (sorted keys, 2-space indent, final newline)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def log_retention_days(seconds: float) -> int:
    """The smallest CloudWatch retention that keeps logs at least `seconds` long."""
    days = max(1, math.ceil(seconds / 86400))
    return next((d for d in LOG_RETENTION_DAYS if d >= days), LOG_RETENTION_DAYS[-1])


def aws_cron(expression: str) -> tuple[str, bool]:
    """A 5-field cron as AWS's 6-field form (minutes hours dom month dow year), and whether
    the conversion is exact. AWS numbers weekdays 1-7 from Sunday and needs `?` in one of
    day-of-month/day-of-week; when both are restricted, day-of-week is dropped."""
    minute, hour, dom, month, dow = expression.split()
    exact = True
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        dow = _aws_weekdays(dow)
    else:
        dow, exact = "?", False
    return f"{minute} {hour} {dom} {month} {dow} *", exact


def _aws_weekdays(field: str) -> str:
    """Cron weekday numbers (0-7, Sunday 0 or 7) as AWS's (1-7, Sunday 1); steps kept."""
    parts = []
    for part in field.split(","):
        values, _, step = part.partition("/")
        values = re.sub(r"\d+", lambda m: str(int(m.group()) % 7 + 1), values)
        parts.append(f"{values}/{step}" if step else values)
    return ",".join(parts)


def _machine_arn(resource: str, target: Target) -> str:
    region = target.region or "us-east-1"
    return f"arn:aws:states:{region}:{_account(target)}:stateMachine:{resource}"


def _account(target: Target) -> str:
    if target.account:
        return target.account
    if target.role_arn and target.role_arn.count(":") >= 5:
        return target.role_arn.split(":")[4]
    return "000000000000"


def _result_path(path: DataPath | None, default: str | None = "$") -> str | None:
    return path.text if path is not None else default


def _nested(base: str, path: DataPath | str | None) -> str:
    """`path` (relative to `$`) re-rooted under `base`: ($.a, $.document) → $.document.a."""
    text = path.text if isinstance(path, DataPath) else (path or "$")
    return base + text[1:]


def _guarded(variable: str, kind: str, operator: str, operand: Any) -> State:
    """Present, of the right kind, and compared: false (not an error) otherwise."""
    return {
        "And": [
            {"Variable": variable, "IsPresent": True},
            {"Variable": variable, kind: True},
            {"Variable": variable, operator: operand},
        ]
    }


def _equals(variable: str, value: Any) -> State:
    """`eq` of one scalar value; a structured value never matches."""
    if value is None:
        return {
            "And": [
                {"Variable": variable, "IsPresent": True},
                {"Variable": variable, "IsNull": True},
            ]
        }
    if isinstance(value, bool):
        return _guarded(variable, "IsBoolean", "BooleanEquals", value)
    if isinstance(value, int | float):
        return _guarded(variable, "IsNumeric", "NumericEquals", value)
    if isinstance(value, str):
        return _guarded(variable, "IsString", "StringEquals", value)
    return dict(_NEVER)


def _error_name(name: str) -> str:
    return _ERROR_NAMES.get(name, name)


def _contains_path(value: Any) -> bool:
    if is_path(value):
        return True
    if isinstance(value, dict):
        return any(_contains_path(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_path(v) for v in value)
    return False


def _intrinsic_argument(value: Any) -> str:
    if is_path(value):
        return str(value)
    if isinstance(value, str):
        escaped = re.sub(r"([\\'{}])", r"\\\1", value)
        return f"'{escaped}'"
    return json.dumps(value)


_LITERAL = re.compile(r"(?:[^\\^$.*+?()\[\]{}|]|\\[\\^$.*+?()\[\]{}|/-])*")


def _glob_patterns(regex: str) -> list[tuple[str, bool]] | None:
    """A regex search as StringEquals/StringMatches alternatives, when it is that simple.

    Returns (text, is_glob) pairs, or None. Understood: literals, `.*`, `^`/`$` anchors and
    one top-level group of literal alternatives, e.g. `^(EUR|GBP|USD)$` or `^INV-.*`.
    """
    anchored_start = regex.startswith("^")
    anchored_end = regex.endswith("$") and not regex.endswith("\\$")
    body = regex[1 if anchored_start else 0 : len(regex) - (1 if anchored_end else 0)]
    group = re.fullmatch(r"\((?:\?:)?([^()]*)\)", body)
    alternatives = group.group(1).split("|") if group else [body]
    patterns: list[tuple[str, bool]] = []
    for alternative in alternatives:
        pieces = alternative.split(".*")
        if not all(_LITERAL.fullmatch(piece) for piece in pieces):
            return None
        literals = [re.sub(r"\\(.)", r"\1", piece) for piece in pieces]
        if any("*" in lit or "\\" in lit for lit in literals):
            return None
        text = "*".join(literals)
        glob = len(pieces) > 1
        if not anchored_start:
            text, glob = "*" + text, True
        if not anchored_end:
            text, glob = text + "*", True
        patterns.append((text.replace("**", "*"), glob))
    return patterns


def engine_names(artifact: Artifact) -> dict[str, str]:
    """The names a state machine artifact takes in AWS: machine, log group, schedule."""
    document = artifact.document
    names = {"state machine": str(document["name"]), "log group": str(document["logGroup"]["name"])}
    if "schedule" in document:
        names["EventBridge schedule"] = str(document["schedule"]["Name"])
    for rule in document.get("triggers", []):
        names[f"EventBridge rule {rule['Name']}"] = str(rule["Name"])
    for alarm in document.get("alarms", {}):
        names[f"CloudWatch alarm {alarm}"] = str(alarm)
    return names
