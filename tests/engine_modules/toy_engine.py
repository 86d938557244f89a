"""`toy`: a made-up engine, registered by tests only, to show that an engine is one bundle.

It is a documented stand-in, not a fake of a real engine: no such engine exists to run here.
Everything cpl needs is behind the bundle contract (controlplane/engines/base.py):

- a translator with one method per step type and a FEATURES table (`wait` is approximated,
  `approval` unsupported, the rest exact), rendering a small JSON document;
- a live client keeping each resource as a JSON file `<repo>/<target.path>/<resource>.json`
  (`{"document": ..., "marks": {...}}`), with cpl's marks beside the document as tags are
  beside a state machine; like a real engine it adds a field of its own (`writtenAt`), which
  its normalization rules remove before anything is compared;
- no runner, worker or emulator: `cpl run` says how toy runs start instead.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, ClassVar

from controlplane.engines.base import CompatSample, Engine, Limits
from controlplane.engines.live import (
    DIGEST_TAG,
    MANAGED_TAG,
    WORKFLOW_TAG,
    Change,
    LiveResource,
    ResourceError,
    diff_documents,
)
from controlplane.engines.normalize import Rule, apply_rules
from controlplane.engines.translator import (
    GOVERNANCE_FEATURES,
    Artifact,
    Feature,
    RenderContext,
    Translator,
    canonical_json,
    record_governance,
)
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import (
    ApprovalStep,
    ChoiceStep,
    FailStep,
    MapStep,
    ParallelStep,
    Step,
    SucceedStep,
    TaskStep,
    WaitStep,
    Workflow,
)

NAME = "toy"
WAIT_REASON = "the toy engine waits at most one minute, whatever the spec says"
APPROVAL_REASON = "the toy engine has nobody to ask"

Node = dict[str, Any]

RULES = (Rule("/writtenAt"),)
"""What the toy engine adds to a resource on its own: when it was written."""


class ToyTranslator(Translator[Node]):
    """A workflow as `{"kind": "toy", "name", "start", "steps": [...]}`, one node per step."""

    engine: ClassVar[str] = NAME
    FEATURES: ClassVar[dict[str, Feature]] = {
        **GOVERNANCE_FEATURES,
        "wait": Feature("approximated", WAIT_REASON),
        "approval": Feature("unsupported", APPROVAL_REASON),
    }

    def render(self, workflow: Workflow, target: Target, environment: Environment) -> Artifact:
        ctx = self.context(workflow, target, environment)
        resource = f"{workflow.metadata.tenant}-{workflow.metadata.name}"
        steps = self._steps(workflow.spec.steps, "/spec/steps", ctx)
        record_governance(workflow, ctx)
        document = {
            "kind": NAME,
            "name": resource,
            "start": workflow.spec.start or workflow.spec.steps[0].name,
            "steps": steps,
        }
        return Artifact(
            workflow=workflow.key,
            version=workflow.metadata.version,
            target=target.name,
            engine=NAME,
            resource=resource,
            document=document,
            support=tuple(ctx.support),
            write_files=lambda artifact: {
                f"{artifact.resource}.json": canonical_json(artifact.document) + "\n"
            },
        )

    def _steps(self, steps: list[Step], path: str, ctx: RenderContext) -> list[Node]:
        return [self.step(step, f"{path}/{index}", ctx) for index, step in enumerate(steps)]

    def task(self, step: TaskStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("task", path)
        binding = ctx.activity(step.activity, step.name)
        return {"name": step.name, "type": "task", "call": binding["function"], "next": step.next}

    def choice(self, step: ChoiceStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("choice", path)
        targets = [rule.next for rule in step.rules]
        return {"name": step.name, "type": "choice", "to": targets, "default": step.default}

    def parallel(self, step: ParallelStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("parallel", path)
        branches = [
            self._steps(branch.steps, f"{path}/branches/{index}/steps", ctx)
            for index, branch in enumerate(step.branches)
        ]
        return {"name": step.name, "type": "parallel", "branches": branches, "next": step.next}

    def map(self, step: MapStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("map", path)
        body = self._steps(step.steps, f"{path}/steps", ctx)
        return {"name": step.name, "type": "map", "items": step.items, "body": body}

    def wait(self, step: WaitStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("wait", path)
        return {"name": step.name, "type": "wait", "seconds": 60, "next": step.next}

    def approval(self, step: ApprovalStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("approval", path)
        return {"name": step.name, "type": "approval", "next": step.next}

    def succeed(self, step: SucceedStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("succeed", path)
        return {"name": step.name, "type": "succeed"}

    def fail(self, step: FailStep, path: str, ctx: RenderContext) -> Node:
        ctx.record("fail", path)
        return {"name": step.name, "type": "fail", "error": step.error}


class ToyClient:
    """The live toy resources of one target: JSON files under `<repo>/<target.path>/`."""

    engine = NAME

    def __init__(self, target: Target, environment: Environment, root: Path) -> None:
        self.target = target
        self.environment = environment
        self.root = root

    def read(self, artifact: Artifact) -> LiveResource | None:
        return self._load(artifact.resource)

    def create(self, artifact: Artifact) -> LiveResource:
        marks = {
            MANAGED_TAG: "true",
            WORKFLOW_TAG: artifact.workflow,
            DIGEST_TAG: artifact.digest,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        written = dt.datetime.now(dt.UTC).isoformat()
        document = {**artifact.document, "writtenAt": written}
        text = json.dumps({"document": document, "marks": marks}, indent=2)
        self._path(artifact.resource).write_text(text + "\n", encoding="utf-8")
        live = self._load(artifact.resource)
        assert live is not None
        return live

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        return self.create(artifact)

    def delete(self, resource_id: str) -> None:
        (self.root / resource_id).unlink(missing_ok=True)

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        return diff_documents(self.desired_document(artifact, live), live.document)

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        return apply_rules(RULES, artifact.document)

    def list_managed(self) -> list[LiveResource]:
        found = [self._load(path.stem) for path in sorted(self.root.glob("*.json"))]
        return [live for live in found if live is not None and live.tags.get(MANAGED_TAG)]

    def inventory(self, known: set[str]) -> list[LiveResource]:
        return [live for live in self.list_managed() if live.resource not in known]

    def _path(self, resource: str) -> Path:
        return self.root / f"{resource}.json"

    def _load(self, resource: str) -> LiveResource | None:
        path = self._path(resource)
        if not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ResourceError(
                f"toy target '{self.target.name}': cannot read {path}: {error}",
                engine=NAME,
                target=self.target.name,
                resource=resource,
            ) from None
        return LiveResource(
            engine=NAME,
            target=self.target.name,
            resource=resource,
            id=path.name,
            document=apply_rules(RULES, stored["document"]),
            tags=dict(stored.get("marks", {})),
        )


def connect(target: Target, environment: Environment, *, repo: Path | None = None) -> ToyClient:
    return ToyClient(target, environment, (repo or Path.cwd()) / (target.path or "deploy/toy"))


def run_hint(workflow: Workflow) -> str:
    return f"toy runs start when a file named {workflow.metadata.name}.go appears"


ENGINE = Engine(
    name=NAME,
    title="Toy",
    translator=ToyTranslator(),
    limits=Limits(payload_bytes=64 * 1024),
    connect=connect,
    compat=CompatSample(
        target={"path": "compat"},
        activity=lambda activity: {"function": activity.replace(".", "_")},
    ),
    thread_safe_client=True,
    run_hint=run_hint,
)
