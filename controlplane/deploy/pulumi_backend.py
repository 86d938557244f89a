"""The `pulumi` backend: the environment as a Pulumi stack, driven through the Automation API.

The stack (name = environment, project `cpl`) runs the program of `stacks/` *inline*: the
resources declared are exactly the artifacts handed in (the plan's, which the policy gates
passed), one `CplWorkflowResource` per (workflow, target), whose provider is the engine module
(`pulumi_provider.EngineProvider`) — the same create/read/update/delete/diff as the `direct`
backend.

Needs the Pulumi CLI (the engine) on PATH: the `pulumi` package is only the SDK. Without it,
`PulumiBackend(...)` raises a ConfigError that says how to install it.

Where things live (all under the environment's `deploy.state`, default `.cpl/state/<env>`):
- `pulumi/` — the stack's checkpoints: the project backend is `file://<state dir>/pulumi`;
- `pulumi/project/` — the workspace (Pulumi.yaml, Pulumi.<env>.yaml with the secrets salt),
  kept so that every run sees the same stack settings.

Secrets: a file backend encrypts secrets with a passphrase. cpl stores none (the pickled
provider is stateless and not secret), so when neither `PULUMI_CONFIG_PASSPHRASE` nor
`PULUMI_CONFIG_PASSPHRASE_FILE` is set, the backend passes an empty passphrase; set one of them
(the same for every run of the environment) before the first apply to use a real one.

The dynamic provider process must import `controlplane`: the backend runs it with this
interpreter (`PULUMI_PYTHON_CMD`, and the project's `virtualenv` option inside a virtualenv).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.deploy.pulumi_provider import RESOURCE_TYPE, declare, resource_name
from controlplane.deploy.state import ResourceKey, ResourceState, now
from controlplane.engines import ResourceError, engine_client
from controlplane.engines.translator import Artifact
from controlplane.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from pulumi import automation as auto

    from controlplane.deploy.plan import PlannedChange
    from controlplane.spec.environment import Environment

PROJECT = "cpl"
INSTALL_HINT = (
    "the pulumi backend needs the Pulumi CLI (the engine), which is not on PATH: install it "
    "from https://www.pulumi.com/docs/install/ (e.g. `curl -fsSL https://get.pulumi.com | sh`) "
    "or use `--backend direct`"
)

Progress = Callable[[str], None]


def pulumi_cli() -> str:
    """The path of the `pulumi` binary; ConfigError saying how to get it when it is missing."""
    found = shutil.which("pulumi")
    if found is None:
        raise ConfigError(INSTALL_HINT)
    return found


@dataclass(frozen=True)
class ResourceOutcome:
    """What one Pulumi run did (or would do) to one (workflow, target).

    `operation` is Pulumi's step (`create`, `update`, `same`, `delete`, `replace`, ...), or
    `not-run` when the run stopped before reaching the resource; `error` the provider's message
    when the step failed.
    """

    key: ResourceKey
    operation: str
    live_id: str | None = None
    digest: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.operation != "not-run"


@dataclass
class PulumiResult:
    """The outcomes of one `up` or `preview`, per resource, and Pulumi's change summary."""

    outcomes: list[ResourceOutcome] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    def get(self, key: ResourceKey) -> ResourceOutcome | None:
        return next((o for o in self.outcomes if o.key == key), None)


class StepEvents:
    """Collects the engine events of one run into per-resource outcomes (keyed by URN)."""

    def __init__(self) -> None:
        self.operations: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, list[str]] = {}

    def __call__(self, event: auto.EngineEvent) -> None:
        for step in (event.resource_pre_event, event.res_outputs_event):
            if step is not None and step.metadata.type == RESOURCE_TYPE:
                metadata = step.metadata
                self.operations[metadata.urn] = metadata.op.value
                state = metadata.new if metadata.new is not None else metadata.old
                if state is not None:
                    self.outputs[metadata.urn] = {**(state.inputs or {}), **(state.outputs or {})}
        failed = event.res_op_failed_event
        if failed is not None and failed.metadata.type == RESOURCE_TYPE:
            self.errors.setdefault(failed.metadata.urn, [])
        diagnostic = event.diagnostic_event
        if diagnostic is not None and diagnostic.severity == "error" and diagnostic.urn:
            self.errors.setdefault(diagnostic.urn, []).append(diagnostic.message.strip())

    def outcomes(self, declared: dict[str, ResourceKey]) -> list[ResourceOutcome]:
        """One outcome per declared resource and per resource the run deleted."""
        found: dict[ResourceKey, ResourceOutcome] = {}
        for urn in {*self.operations, *self.errors}:
            outputs = self.outputs.get(urn, {})
            name = urn.rsplit("::", 1)[-1]
            key = declared.get(name)
            if key is None and "workflow" in outputs and "target" in outputs:
                key = ResourceKey(str(outputs["workflow"]), str(outputs["target"]))
            if key is None:
                continue
            errors = self.errors.get(urn)
            found[key] = ResourceOutcome(
                key=key,
                operation=self.operations.get(urn, "not-run"),
                live_id=outputs.get("live_id"),
                digest=outputs.get("live_digest") or outputs.get("digest"),
                error=("\n".join(errors) or "the step failed") if errors is not None else None,
            )
        for key in declared.values():
            found.setdefault(key, ResourceOutcome(key=key, operation="not-run"))
        return [found[key] for key in sorted(found)]


class PulumiBackend:
    """The environment's Pulumi stack: `converge` (one `up` of everything), `preview`, and
    `apply_change` (the `Backend` contract: one targeted `up` per change)."""

    name = "pulumi"

    def __init__(
        self, environment: Environment, *, repo: Path, on_output: Progress | None = None
    ) -> None:
        self.cli = pulumi_cli()
        self.environment = environment
        self.repo = repo.resolve()
        self.on_output = on_output
        self.state_dir = environment.state_dir(self.repo) / "pulumi"
        self._lock = threading.Lock()  # one update of a stack at a time (Pulumi locks it too)

    # -- whole-environment runs ------------------------------------------------------------

    def converge(
        self,
        artifacts: Sequence[Artifact],
        delete: Iterable[tuple[ResourceKey, str]] = (),
        *,
        on_output: Progress | None = None,
    ) -> PulumiResult:
        """`pulumi up` with exactly `artifacts` declared: Pulumi creates, updates and deletes
        (what its stack holds but `artifacts` lack) through the engine modules.

        `delete` lists (key, live id) pairs to remove; the ones Pulumi does not manage (e.g.
        created by the `direct` backend) are deleted through their engine module directly.
        A failed resource is an outcome with an `error`, not an exception.
        """
        from pulumi import automation as auto

        events = StepEvents()
        declared = {resource_name(a.workflow, a.target): _key(a) for a in artifacts}
        with self._lock:
            stack = self._stack(artifacts)
            try:
                stack.up(on_output=on_output or self.on_output, on_event=events, color="never")
            except auto.errors.CommandError as error:
                if not events.errors:  # not a resource's failure: the run itself broke
                    raise EngineError(
                        f"pulumi up of stack '{self.environment.name}' failed: {error}"
                    ) from error
        result = PulumiResult(outcomes=events.outcomes(declared))
        deleted = {o.live_id for o in result.outcomes if o.operation == "delete" and o.ok}
        for key, live_id in delete:
            if live_id not in deleted:
                result.outcomes.append(self._delete_unmanaged(key, live_id))
        result.summary = _summary(result.outcomes)
        return result

    def preview(
        self, artifacts: Sequence[Artifact], *, on_output: Progress | None = None
    ) -> PulumiResult:
        """`pulumi preview` with exactly `artifacts` declared: the step per resource."""
        events = StepEvents()
        declared = {resource_name(a.workflow, a.target): _key(a) for a in artifacts}
        with self._lock:
            self._stack(artifacts).preview(
                on_output=on_output or self.on_output, on_event=events, color="never"
            )
        outcomes = events.outcomes(declared)
        return PulumiResult(outcomes=outcomes, summary=_summary(outcomes))

    # -- the Backend contract --------------------------------------------------------------

    def apply_change(self, change: PlannedChange) -> ResourceState | None:
        """One change as a targeted `pulumi up` (only this resource's URN).

        Serialized per backend: Pulumi runs one update of a stack at a time.
        """
        key = change.key
        urn = self._urn(key)
        artifacts = [change.artifact] if change.artifact is not None else []
        if change.action == "delete":
            artifacts = []  # a targeted resource missing from the program is deleted
        events = StepEvents()
        with self._lock:
            try:
                self._stack(artifacts).up(
                    target=[urn], on_output=self.on_output, on_event=events, color="never"
                )
            except Exception as error:  # CommandError and its kinds, with the CLI's output
                message = "\n".join(events.errors.get(urn, [])) or str(error)
                raise self._error(key, message, transient=_is_concurrent(error)) from error
        declared = {resource_name(key.workflow, key.target): key} if artifacts else {}
        outcome = next((o for o in events.outcomes(declared) if o.key == key), None)
        if change.action == "delete":
            if outcome is None or outcome.operation != "delete":  # not in the stack
                live_id = change.resource_id or change.resource
                self._delete_unmanaged(key, live_id, raise_errors=True)
            return None
        if change.artifact is None:
            raise ValueError(f"{change.action} of {key} without an artifact")
        if outcome is None or not outcome.ok:
            reason = outcome.error if outcome else None
            raise self._error(key, reason or "pulumi up did not reach the resource")
        return ResourceState(
            workflow=key.workflow,
            target=key.target,
            engine=change.engine,
            resource_id=outcome.live_id or change.resource_id or change.resource,
            artifact_digest=outcome.digest or change.artifact.digest,
            spec_version=change.artifact.version,
            applied_at=now(),
            status="applied",
        )

    def close(self) -> None:
        """Nothing to release: each run's workspace ends with the run."""

    # -- internals -------------------------------------------------------------------------

    def _stack(self, artifacts: Sequence[Artifact]) -> auto.Stack:
        from pulumi import automation as auto

        environment, repo = self.environment.name, self.repo
        work_dir = self.state_dir / "project"
        work_dir.mkdir(parents=True, exist_ok=True)
        runtime: dict[str, Any] = {}
        if sys.prefix != sys.base_prefix:  # the provider process must see controlplane
            runtime["virtualenv"] = sys.prefix
        settings = auto.ProjectSettings(
            name=PROJECT,
            runtime=auto.ProjectRuntimeInfo("python", runtime or None),
            backend=auto.ProjectBackend(f"file://{self.state_dir}"),
            description=f"cpl environment {environment}",
        )
        env_vars = {
            "PULUMI_PYTHON_CMD": sys.executable,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_BACKEND_URL": f"file://{self.state_dir}",
        }
        if not {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} & set(os.environ):
            env_vars["PULUMI_CONFIG_PASSPHRASE"] = ""  # no secrets in the stack: see the docstring
        chosen = list(artifacts)

        def program() -> None:
            declare(chosen, environment, repo)

        stack = auto.create_or_select_stack(
            stack_name=environment,
            project_name=PROJECT,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(work_dir),
                project_settings=settings,
                env_vars=env_vars,
            ),
        )
        stack.set_all_config(
            {
                "cpl:repo": auto.ConfigValue(str(repo)),
                "cpl:environment": auto.ConfigValue(environment),
            }
        )
        return stack

    def _urn(self, key: ResourceKey) -> str:
        name = resource_name(key.workflow, key.target)
        return f"urn:pulumi:{self.environment.name}::{PROJECT}::{RESOURCE_TYPE}::{name}"

    def _delete_unmanaged(
        self, key: ResourceKey, live_id: str, *, raise_errors: bool = False
    ) -> ResourceOutcome:
        """Delete a resource the stack does not hold, through its engine module."""
        target = self.environment.target(key.target)
        client = engine_client(target, self.environment, repo=self.repo)
        try:
            client.delete(live_id)
        except ResourceError as error:
            if raise_errors:
                raise
            return ResourceOutcome(key, "delete", live_id, error=error.message)
        finally:
            close = getattr(client, "close", None)
            if callable(close):
                close()
        return ResourceOutcome(key, "delete", live_id)

    def _error(self, key: ResourceKey, message: str, *, transient: bool = False) -> ResourceError:
        target = self.environment.target(key.target)
        return ResourceError(
            f"pulumi: {key}: {message}",
            engine=target.engine,
            target=key.target,
            resource=resource_name(key.workflow, key.target),
            transient=transient,
        )


def _key(artifact: Artifact) -> ResourceKey:
    return ResourceKey(artifact.workflow, artifact.target)


def _is_concurrent(error: Exception) -> bool:
    return type(error).__name__ == "ConcurrentUpdateError"


def _summary(outcomes: Iterable[ResourceOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        label = "failed" if outcome.error is not None else outcome.operation
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))
