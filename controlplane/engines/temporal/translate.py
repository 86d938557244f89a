"""Temporal: the interpreter payload plus the namespace and schedule configuration.

Temporal runs code, not documents: cpl ships one interpreter workflow (`runtime/temporal`)
that executes the normalized spec. Rendering for Temporal therefore generates no code; it

- checks that every construct can run on the interpreter and records how well it maps
  (the per-step methods validate and record Support, and resolve activity bindings),
- publishes the spec version as a `SpecPayload` (normalized document, digest, the
  environment's Temporal activity bindings, the dead-letter queue),
- and describes what "deploying" means on Temporal: the namespace and its retention, the
  search attributes, the schedule (cron, time zone, overlap policy), the interpreter's task
  queue, tracing and the payload codec the key binding names.

The artifact document::

    {"kind": "temporal",
     "namespace": {"name": "cpl-local", "retention": 2592000},      # seconds, or null
     "searchAttributes": {"CplWorkflow": "Keyword", "CplVersion": "Keyword",
                          "CplTenant": "Keyword"},
     "schedule": {"id", "cron", "timezone", "overlap": "SKIP|BUFFER_ONE|ALLOW_ALL",
                  "taskQueue", "workflowType": "cpl-interpreter"} | null,
     "spec": {...SpecPayload...},
     "taskQueue": "cpl-interpreter",
     "tracing": {"enabled": bool, "interceptor": "opentelemetry"},
     "encryption": {"codec": "<key binding>"} | null,
     "limits": {"payloadBytes": 2097152}}

Retention is a property of the *namespace*, not of a workflow: `namespace_conflicts` looks at
all artifacts of a target together (a single render cannot) and reports workflows whose
retentions cannot all be honoured.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from controlplane.engines.temporal.rules import FEATURES as MONITORING_FEATURES
from controlplane.engines.temporal.runtime.payload import (
    INTERPRETER_WORKFLOW,
    ActivityBinding,
    DeadLetterBinding,
    SpecPayload,
)
from controlplane.engines.translator import (
    GOVERNANCE_FEATURES,
    Artifact,
    BindingError,
    Feature,
    RenderContext,
    Translator,
    digest_of,
    record_governance,
)
from controlplane.monitoring.share import without_rules_file
from controlplane.spec.environment import EngineName, Environment, Target
from controlplane.spec.model import (
    AllOf,
    AnyOf,
    ApprovalStep,
    CatchingStep,
    ChoiceStep,
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
from controlplane.spec.normalize import apply_defaults, to_document

PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024
"""Temporal's default limit for one payload (the server rejects larger ones)."""

MIN_RETENTION_SECONDS = 86400
"""Temporal namespaces keep closed histories for at least one day."""

SEARCH_ATTRIBUTES = {"CplWorkflow": "Keyword", "CplVersion": "Keyword", "CplTenant": "Keyword"}
"""Custom search attributes cpl registers on every namespace it deploys to."""

OVERLAP_POLICIES = {"skip": "SKIP", "buffer-one": "BUFFER_ONE", "allow-all": "ALLOW_ALL"}
"""Spec `schedule.overlap` → temporalio.client.ScheduleOverlapPolicy member name."""

DEFAULT_OVERLAP = "skip"
"""Temporal's own default overlap policy (SKIP), used when the spec sets none."""

DEFAULT_TIMEZONE = "UTC"
"""Temporal's schedule time zone when the spec sets none."""

_NAMESPACE_ADVICE = (
    "use a namespace per retention class (one target per namespace, selected by a label), "
    "which is also how regulated workflows are isolated"
)


@dataclass
class TemporalContext(RenderContext):
    """Render state for one workflow: the activity bindings the spec payload carries."""

    activities: dict[str, ActivityBinding] = field(default_factory=dict)


def _ctx(ctx: RenderContext) -> TemporalContext:
    assert isinstance(ctx, TemporalContext)
    return ctx


class TemporalTranslator(Translator[None]):
    """Renders a workflow for a Temporal target: validated spec payload + deployment config."""

    engine: ClassVar[EngineName] = "temporal"
    FEATURES: ClassVar[dict[str, Feature]] = {
        **GOVERNANCE_FEATURES,
        **MONITORING_FEATURES,  # slo and alerts, objective by objective, metric by metric
        "access": Feature(
            "approximated",
            "with spec.identity the interpreter verifies approval and admin signals itself "
            "(token signature, expiry, issuer, audience; approvers.roles and access.admin "
            "roles), and cpl run / cpl signal check access.start/signal/admin with OPA; runs "
            "started by other Temporal clients pass only the namespace's authorizer, and a "
            "just-in-time grant named in an admin signal is checked by cpl signal, not by "
            "the interpreter",
        ),
        "task.circuitBreaker": Feature(
            "exact",
            "a cpl-circuit-breaker workflow per target and activity type, hosted by cpl "
            "worker, shared by every run: open after failureThreshold failed calls, calls fail "
            "with CircuitOpen without reaching the activity, one trial after resetTimeout",
        ),
        "dataDocument": Feature("exact", "the interpreter keeps the JSON data document as is"),
        "dag": Feature("exact", "the interpreter starts each step once its dependsOn are done"),
        "dag.when": Feature("exact", "evaluated by the interpreter; a skipped step writes null"),
        "task": Feature("exact", "an activity on the bound activity type and task queue"),
        "task.timeout": Feature("exact", "activity start-to-close timeout (per attempt)"),
        "task.heartbeat": Feature("exact", "activity heartbeat timeout"),
        "task.idempotencyKey": Feature(
            "exact",
            "the activity id is `<step name>:<resolved key>` on every attempt and in every run "
            "resolving the same key (activity.info().activity_id); the activity deduplicates",
        ),
        "task.compensation": Feature(
            "exact", "the interpreter records compensations and runs them in reverse (saga)"
        ),
        "retry": Feature("exact", "activity RetryPolicy maximum_attempts"),
        "retry.backoff": Feature("exact", "RetryPolicy initial_interval and backoff_coefficient"),
        "retry.maxInterval": Feature("exact", "RetryPolicy maximum_interval"),
        "retry.jitter": Feature(
            "exact",
            "the interpreter schedules each attempt itself and sleeps a durable timer of "
            "uniform(0, backoff ceiling) between them, drawn with workflow.random()",
        ),
        "retry.nonRetryable": Feature("exact", "RetryPolicy non_retryable_error_types"),
        "catch": Feature("exact", "the interpreter matches the ApplicationError type"),
        "choice": Feature("exact", "evaluated by the interpreter"),
        "condition.eq": Feature("exact"),
        "condition.ne": Feature("exact"),
        "condition.gt": Feature("exact"),
        "condition.ge": Feature("exact"),
        "condition.lt": Feature("exact"),
        "condition.le": Feature("exact"),
        "condition.in": Feature("exact"),
        "condition.exists": Feature("exact"),
        "condition.matches": Feature(
            "exact", "Python `re`, the engine `cpl validate` checks the pattern with"
        ),
        "parallel": Feature("exact", "concurrent branches in the interpreter"),
        "map": Feature("exact", "one concurrent iteration per item in the interpreter"),
        "map.maxConcurrency": Feature("exact", "a semaphore bounds the running iterations"),
        "map.batchSize": Feature("exact", "each iteration gets a list of batchSize items"),
        "wait.duration": Feature("exact", "a durable timer"),
        "wait.until": Feature("exact", "a durable timer until the timestamp (workflow time)"),
        "approval": Feature("exact", "a signal named after `signal`, awaited with a timer"),
        "approval.timeout": Feature("exact", "the timer expires into onTimeout"),
        "approval.approvers": Feature(
            "approximated",
            "the interpreter refuses answers whose roles miss approvers.roles, but the roles "
            "are claimed by the signal's sender: Temporal does not authenticate them (restrict "
            "who may signal with namespace authorization)",
        ),
        "succeed": Feature("exact"),
        "fail": Feature("exact", "the run fails with an ApplicationError of type `error`"),
        "timeout": Feature("exact", "workflow execution timeout"),
        "retention": Feature(
            "exact",
            "namespace retention; exact only while every workflow of the namespace asks for "
            "the same retention (see namespace_conflicts)",
        ),
        "retention.minimum": Feature(
            "approximated", "Temporal namespaces keep closed histories for at least 1 day"
        ),
        "schedule": Feature("exact", "a Temporal schedule starting the interpreter"),
        "triggers": Feature(
            "approximated",
            "CloudEvents are received by `cpl serve events`, a cpl-hosted HTTP receiver, not "
            "by Temporal; it starts runs with signal-with-start, one per event id",
        ),
        "schedule.timezone": Feature("exact", "schedule spec time zone"),
        "schedule.overlap": Feature("exact", "ScheduleOverlapPolicy SKIP / BUFFER_ONE / ALLOW_ALL"),
        "onError.deadLetter": Feature(
            "exact",
            "the `cpl.dead_letter` activity hosted by `cpl worker` sends the CloudEvent to SQS "
            "(spec.aws), spooling it locally while the queue cannot be reached",
        ),
        "onError.compensate": Feature("exact", "the interpreter's saga compensation"),
        "input.schema": Feature("exact", "the interpreter validates the input (jsonschema)"),
        "security.encryption": Feature(
            "exact",
            "an AES-GCM envelope payload codec (data keys from KMS or a local key ring) seals "
            "the run's payloads in `cpl worker`, `cpl run` and `cpl signal`; an activity "
            "worker without it cannot read them (encryption.encryption_converter)",
        ),
        "payload.offload": Feature(
            "approximated",
            "a claim-check payload codec keeps payloads above the threshold in the bound S3 "
            "store; `cpl worker` and `cpl run` install it (one threshold per target: the "
            "smallest of its offloading workflows), activity workers of your own must install "
            "it too (codec.claim_check_converter) or they receive references they cannot read",
        ),
        "tracing": Feature(
            "exact",
            "a span per executed step under the span of the run's start (OpenTelemetry, "
            "temporalio's TracingInterceptor on `cpl run`, `cpl signal` and `cpl worker`), "
            "exported where the environment's observability.tracing says",
        ),
    }

    # -- the seam --

    def context(
        self, workflow: Workflow, target: Target, environment: Environment
    ) -> TemporalContext:
        return TemporalContext(workflow, target, environment, dict(self.FEATURES))

    def render(self, workflow: Workflow, target: Target, environment: Environment) -> Artifact:
        """The spec payload and namespace/schedule configuration of `workflow` on `target`.

        Raises BindingError when an activity, the dead-letter queue, the encryption key or
        the offload store has no binding for Temporal in `environment`.
        """
        if target.engine != self.engine:
            raise ValueError(f"target '{target.name}' is a {target.engine} target")
        defaulted = apply_defaults(workflow)
        ctx = self.context(defaulted, target, environment)
        meta = workflow.metadata
        body = defaulted.spec
        resource = f"{meta.tenant}-{meta.name}"

        ctx.record("dataDocument", "/spec")
        for index, _ in enumerate(body.triggers):
            ctx.record("triggers", f"/spec/triggers/{index}")
        if body.is_dag:
            ctx.record("dag", "/spec/steps")
        self._scope(body.steps, "/spec", ctx)
        if body.timeout is not None:
            ctx.record("timeout", "/spec/timeout")
        retention = self._retention(defaulted, ctx)
        dead_letter = self._dead_letter(defaulted, ctx)
        codec = self._sections(defaulted, ctx)

        normalized = to_document(workflow)
        spec: SpecPayload = {
            "workflow": normalized,
            "version": meta.version,
            "digest": digest_of(normalized),
            "activities": dict(sorted(ctx.activities.items())),
            "deadLetter": dead_letter,
            "target": target.name,
        }
        if environment.spec.identity is not None:  # the interpreter verifies signals with it
            spec["identity"] = environment.spec.identity.runtime()  # type: ignore[typeddict-item]
        tracing = environment.tier != "development"
        if tracing:  # a claim only where the runs are traced
            ctx.record("tracing", "/spec")
        document: dict[str, Any] = {
            "kind": "temporal",
            "namespace": {"name": target.namespace, "retention": retention},
            "searchAttributes": dict(SEARCH_ATTRIBUTES),
            "schedule": self._schedule(defaulted, resource, target, ctx),
            "spec": spec,
            "taskQueue": target.task_queue,
            "tracing": {"enabled": tracing, "interceptor": "opentelemetry"},
            "encryption": {"codec": codec} if codec is not None else None,
            "limits": {"payloadBytes": PAYLOAD_LIMIT_BYTES},
        }
        document = json.loads(json.dumps(document))  # plain JSON values only
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

    # -- step types (validate, resolve bindings and record support; nothing to generate) --

    def task(self, step: TaskStep, path: str, ctx: RenderContext) -> None:
        tctx = _ctx(ctx)
        ctx.record("task", path)
        tctx.activities[step.activity] = self._binding(step, tctx)
        if step.timeout is not None:
            ctx.record("task.timeout", f"{path}/timeout")
        if step.heartbeat is not None:
            ctx.record("task.heartbeat", f"{path}/heartbeat")
        if step.idempotency_key is not None:
            ctx.record("task.idempotencyKey", f"{path}/idempotencyKey")
        if step.circuit_breaker is not None:
            ctx.record("task.circuitBreaker", f"{path}/circuitBreaker")
        if step.compensation is not None:
            ctx.record("task.compensation", f"{path}/compensation")
        if step.retry is not None:
            self._retry(step.retry, f"{path}/retry", ctx)
        self._catches(step, path, ctx)
        self._when(step, path, ctx)

    def choice(self, step: ChoiceStep, path: str, ctx: RenderContext) -> None:
        ctx.record("choice", path)
        for index, rule in enumerate(step.rules):
            self._condition(rule.when, f"{path}/rules/{index}/when", ctx)

    def parallel(self, step: ParallelStep, path: str, ctx: RenderContext) -> None:
        ctx.record("parallel", path)
        for index, branch in enumerate(step.branches):
            self._scope(branch.steps, f"{path}/branches/{index}", ctx)
        self._catches(step, path, ctx)
        self._when(step, path, ctx)

    def map(self, step: MapStep, path: str, ctx: RenderContext) -> None:
        ctx.record("map", path)
        if step.max_concurrency is not None:
            ctx.record("map.maxConcurrency", f"{path}/maxConcurrency")
        if step.batch_size is not None:
            ctx.record("map.batchSize", f"{path}/batchSize")
        self._scope(step.steps, path, ctx)
        self._catches(step, path, ctx)
        self._when(step, path, ctx)

    def wait(self, step: WaitStep, path: str, ctx: RenderContext) -> None:
        if step.duration is not None:
            ctx.record("wait.duration", f"{path}/duration")
        if step.until is not None:
            ctx.record("wait.until", f"{path}/until")
        self._catches(step, path, ctx)
        self._when(step, path, ctx)

    def approval(self, step: ApprovalStep, path: str, ctx: RenderContext) -> None:
        ctx.record("approval", path)
        if step.timeout is not None:
            ctx.record("approval.timeout", f"{path}/timeout")
        if step.approvers is not None:
            ctx.record("approval.approvers", f"{path}/approvers")
        self._catches(step, path, ctx)
        self._when(step, path, ctx)

    def succeed(self, step: SucceedStep, path: str, ctx: RenderContext) -> None:
        ctx.record("succeed", path)
        self._when(step, path, ctx)

    def fail(self, step: FailStep, path: str, ctx: RenderContext) -> None:
        ctx.record("fail", path)
        self._when(step, path, ctx)

    # -- helpers --

    def _scope(self, steps: list[Step], pointer: str, ctx: RenderContext) -> None:
        for index, step in enumerate(steps):
            self.step(step, f"{pointer}/steps/{index}", ctx)

    @staticmethod
    def _binding(step: TaskStep, ctx: TemporalContext) -> ActivityBinding:
        raw = ctx.activity(step.activity, step.name)
        activity_type = raw.get("activity")
        if not isinstance(activity_type, str) or not activity_type:
            raise BindingError(
                f"workflow '{ctx.workflow.key}' step '{step.name}' uses activity "
                f"'{step.activity}', whose temporal binding in environment "
                f"'{ctx.environment.name}' names no activity type (set "
                f"spec.bindings.activities.{step.activity}.temporal.activity)"
            )
        binding: ActivityBinding = {"activity": activity_type}
        task_queue = raw.get("taskQueue")
        if task_queue:
            binding["taskQueue"] = str(task_queue)
        return binding

    @staticmethod
    def _retry(retry: Retry, path: str, ctx: RenderContext) -> None:
        ctx.record("retry", path)
        if retry.initial_interval is not None or retry.backoff_rate is not None:
            ctx.record("retry.backoff", path)
        if retry.max_interval is not None:
            ctx.record("retry.maxInterval", f"{path}/maxInterval")
        if retry.jitter == "full":
            ctx.record("retry.jitter", f"{path}/jitter")
        if retry.non_retryable:
            ctx.record("retry.nonRetryable", f"{path}/nonRetryable")

    @staticmethod
    def _catches(step: CatchingStep, path: str, ctx: RenderContext) -> None:
        for index, _ in enumerate(step.catch):
            ctx.record("catch", f"{path}/catch/{index}")

    def _when(self, step: Step, path: str, ctx: RenderContext) -> None:
        if step.when is not None:
            ctx.record("dag.when", f"{path}/when")
            self._condition(step.when, f"{path}/when", ctx)

    def _condition(self, condition: Condition, pointer: str, ctx: RenderContext) -> None:
        for operator, where in _comparisons(condition, pointer):
            ctx.record(f"condition.{operator}", where)

    @staticmethod
    def _retention(workflow: Workflow, ctx: RenderContext) -> int | float | None:
        retention = workflow.spec.retention
        if retention is None:
            return None
        ctx.record("retention", "/spec/retention")
        if retention.seconds < MIN_RETENTION_SECONDS:
            ctx.record("retention.minimum", "/spec/retention")
        seconds: int | float = retention.typed()
        return seconds

    @staticmethod
    def _dead_letter(workflow: Workflow, ctx: RenderContext) -> DeadLetterBinding | None:
        on_error = workflow.spec.on_error
        if on_error is None:
            return None
        if on_error.compensate:
            ctx.record("onError.compensate", "/spec/onError/compensate")
        if on_error.dead_letter is None:
            return None
        ctx.record("onError.deadLetter", "/spec/onError/deadLetter")
        return {"queue": ctx.queue(on_error.dead_letter)}

    @staticmethod
    def _schedule(
        workflow: Workflow, resource: str, target: Target, ctx: RenderContext
    ) -> dict[str, Any] | None:
        schedule = workflow.spec.schedule
        if schedule is None:
            return None
        ctx.record("schedule", "/spec/schedule")
        if schedule.timezone is not None:
            ctx.record("schedule.timezone", "/spec/schedule/timezone")
        if schedule.overlap is not None:
            ctx.record("schedule.overlap", "/spec/schedule/overlap")
        return {
            "id": resource,
            "cron": schedule.cron,
            "timezone": schedule.timezone or DEFAULT_TIMEZONE,
            "overlap": OVERLAP_POLICIES[schedule.overlap or DEFAULT_OVERLAP],
            "taskQueue": target.task_queue,
            "workflowType": INTERPRETER_WORKFLOW,
        }

    @staticmethod
    def _sections(workflow: Workflow, ctx: RenderContext) -> str | None:
        """Support for the spec sections outside the steps; the codec name, if any."""
        body = workflow.spec
        codec: str | None = None
        if body.input is not None and body.input.schema_ is not None:
            ctx.record("input.schema", "/spec/input/schema")
        if body.security is not None and body.security.encryption is not None:
            codec = ctx.key(body.security.encryption.key)
            ctx.record("security.encryption", "/spec/security/encryption")
        if body.payload is not None and body.payload.offload is not None:
            ctx.store(body.payload.offload.store)
            ctx.record("payload.offload", "/spec/payload/offload")
        without_rules_file(ctx.features, ctx.target)  # no rules delivered: no exact alert
        record_governance(workflow, ctx)
        return codec


def _comparisons(condition: Condition, pointer: str) -> Iterator[tuple[str, str]]:
    """(operator, pointer) of every comparison in a condition."""
    if isinstance(condition, AllOf):
        for index, item in enumerate(condition.all):
            yield from _comparisons(item, f"{pointer}/all/{index}")
    elif isinstance(condition, AnyOf):
        for index, item in enumerate(condition.any):
            yield from _comparisons(item, f"{pointer}/any/{index}")
    elif isinstance(condition, NotOf):
        yield from _comparisons(condition.not_, f"{pointer}/not")
    else:
        yield condition.operator, pointer


def _write_files(artifact: Artifact) -> dict[str, str]:
    return {f"{artifact.resource}.json": render_json(artifact.document)}


def render_json(document: dict[str, Any]) -> str:
    """Deterministic, diffable JSON text of an artifact document (sorted keys, 2-space indent)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def spec_payload(artifact: Artifact) -> SpecPayload:
    """The published spec version inside a Temporal artifact (what `cpl run` starts)."""
    if artifact.engine != "temporal":
        raise ValueError(f"{artifact.workflow} on {artifact.target} is not a Temporal artifact")
    payload: SpecPayload = artifact.document["spec"]
    return payload


def engine_names(artifact: Artifact) -> dict[str, str]:
    """The ids a workflow's artifact takes in its Temporal namespace: the workflow resource
    (the prefix of its run ids) and its schedule id."""
    if artifact.shared:
        return {}
    namespace = artifact.document["namespace"]["name"]
    names = {"Temporal workflow id prefix": f"{namespace}/{artifact.resource}"}
    schedule = artifact.document.get("schedule")
    if schedule is not None:
        names["Temporal schedule id"] = f"{namespace}/{schedule['id']}"
    return names
