"""The desired state of an environment, computed in one place.

load → select → render → shared resources → policy inputs → one batched policy pass.
`cpl check`, `plan`, `apply`, `drift` (and `drift --sync`), `report` and `compat` all call
this module, so they see the same artifacts, the same shared resources and the same findings
for the same repo and environment. Nothing here prints: the CLI formats what it returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from controlplane.cache.desired import Materialize, cached_pass
from controlplane.cache.store import open_cache
from controlplane.engines import render
from controlplane.engines.names import collision_errors, name_collisions
from controlplane.engines.sharing import share
from controlplane.engines.translator import Artifact
from controlplane.errors import ConfigError, CplError, Diagnostic
from controlplane.policy.change import Change
from controlplane.policy.decision import Decision, Subject, evaluate
from controlplane.policy.engine import open_engine
from controlplane.policy.inputs import PolicyInput, Rendered, build_inputs
from controlplane.policy.shared import with_shared
from controlplane.spec.environment import Environment, Target
from controlplane.spec.files import read_tree
from controlplane.spec.load import (
    LoadResult,
    load_environment,
    load_repo,
    load_workflows,
)
from controlplane.spec.model import Workflow

ArtifactKey = tuple[str, str]
"""(workflow key, target name)."""

ChangeSource = Callable[[Environment, LoadResult], Mapping[str, Change]]


def render_all(workflows: Iterable[Workflow], environment: Environment) -> list[Artifact]:
    """Every (workflow, target) artifact of an environment, with its shared resources.

    A workflow that cannot be rendered for a target (an unbound name) raises its error; use
    `desired_state` to collect such problems as diagnostics instead.
    """
    artifacts = [
        render(workflow, target, environment)
        for workflow in workflows
        for target in environment.targets_for(workflow)
    ]
    return share(artifacts, environment)


@dataclass(frozen=True)
class DesiredState:
    """Everything one pass over an environment loaded, rendered and decided.

    `artifacts` are the environment's artifacts by (workflow, target), with their shared
    resources (all of them, or those `materialize` asked for); `subjects` the (workflow,
    target) pairs of the policy pass (all, or those in scope since `--base`); `inputs` the
    policy input documents built by this run (those the cache did not have); `previous` the
    workflows read at `--base` (the changed files only); `changes` the changes since
    `--base` (deletes included, `none` left out); `unchanged` how many workflows `--base`
    left out; `renders` and `evaluated` what this run rendered and evaluated.
    """

    environment: Environment
    loaded: LoadResult
    inputs: list[PolicyInput]
    decision: Decision
    artifacts: dict[ArtifactKey, Artifact] = field(default_factory=dict)
    previous: LoadResult | None = None
    subjects: tuple[Subject, ...] = ()
    changes: dict[str, Change] | None = None
    unchanged: int = 0
    renders: int = 0
    evaluated: int = 0

    @property
    def workflows(self) -> list[Workflow]:
        return [w.model for w in self.loaded.workflows]

    def in_scope(self) -> list[Artifact]:
        """What check and plan cover: the artifacts whose workflows have a policy input (all,
        or those changed since `--base`), and the shared resources those workflows use."""
        wanted = {(i.workflow, i.target) for i in self.subjects}
        wanted.update((i.workflow, i.target) for i in self.inputs)
        workflows = {workflow for workflow, _ in wanted}
        return [
            artifact
            for key, artifact in self.artifacts.items()
            if key in wanted or workflows.intersection(artifact.shared_by)
        ]


def desired_state(
    repo: Path,
    env_name: str,
    base: str | None = None,
    today: dt.date | None = None,
    *,
    changes: ChangeSource | None = None,
    ref: str | None = None,
    use_cache: bool = True,
    materialize: Materialize = "all",
) -> DesiredState:
    """Load, render, share, build inputs and evaluate them in one batched pass.

    With `base`, only the workflows changed since that git ref (and those sharing a changed
    resource with them) are in the policy pass, with their change document. Without it,
    `changes` (when given) supplies each workflow's change document, e.g. against the
    version last applied to the environment. `ref` loads the workflows from a git ref
    instead of the working tree. Results come from the repo's cache (`.cpl/cache/`) where
    their inputs are unchanged; `use_cache=False` bypasses it. `materialize` says which
    artifacts the result carries: all, the policy pass's, or none (shared ones always).
    """
    if ref is not None:
        return _desired_at_ref(repo, env_name, ref, base, today, changes=changes)
    environment = load_environment(repo, env_name)
    if not (repo / "workflows").is_dir():
        raise ConfigError(f"no workflows/ in {repo}: nothing to check")
    waivers = repo / "waivers"
    extra = load_repo(repo, [waivers]) if waivers.is_dir() else LoadResult()
    outcome = cached_pass(
        repo,
        environment,
        read_tree(repo, ["workflows"]),
        extra,
        cache=open_cache(repo, enabled=use_cache),
        base=base,
        changes=changes,
        today=today,
        materialize=materialize,
    )
    return DesiredState(
        environment,
        outcome.loaded,
        outcome.inputs,
        outcome.decision,
        outcome.artifacts,
        outcome.previous,
        tuple(outcome.subjects),
        outcome.changes,
        outcome.unchanged,
        outcome.renders,
        outcome.evaluated,
    )


def _desired_at_ref(
    repo: Path,
    env_name: str,
    ref: str,
    base: str | None,
    today: dt.date | None,
    *,
    changes: ChangeSource | None,
) -> DesiredState:
    """`desired_state` of the workflows at a git ref (uncached: the working tree's cache
    keys are its files)."""
    environment = load_environment(repo, env_name)
    loaded = load_specs(repo, ref)
    previous = load_workflows(repo, ref=base) if base else None
    rendered, failures = _render_environment(loaded, environment)

    def lookup(workflow: Workflow, target: Target, _: Environment) -> Rendered:
        failure = failures.get((workflow.key, target.name))
        if failure is not None:
            raise failure
        artifact = rendered[(workflow.key, target.name)]
        return Rendered(dict(artifact.document), [s.to_json() for s in artifact.support])

    inputs, problems = build_inputs(loaded, environment, previous, render=lookup)
    if previous is None and changes is not None:
        known = changes(environment, loaded)
        inputs = [
            replace(i, document={**i.document, "change": known[i.workflow].to_json()})
            if i.workflow in known
            else i
            for i in inputs
        ]
    # the shared resources (Temporal namespaces) each workflow lives in (CPL-P010 isolation)
    inputs = with_shared(
        inputs, rendered.values(), [w.model for w in loaded.workflows], environment
    )
    engine = open_engine(environment, repo)
    try:
        decision = evaluate(
            inputs,
            environment,
            loaded.waivers,
            today,
            engine=engine,
            locate=loaded.locate,
            diagnostics=[
                *loaded.diagnostics,
                *problems,
                *name_collision_diagnostics(loaded, rendered),
            ],
        )
    finally:
        engine.close()
    return DesiredState(environment, loaded, inputs, decision, rendered, previous)


def load_specs(repo: Path, ref: str | None = None) -> LoadResult:
    """The workflows (at `ref`, or in the working tree) and the waivers of a control repo."""
    if ref is None and not (repo / "workflows").is_dir():
        raise ConfigError(f"no workflows/ in {repo}: nothing to check")
    waivers = repo / "waivers"
    if ref is None:
        return load_repo(repo, [repo / "workflows", *([waivers] if waivers.is_dir() else [])])
    loaded = load_workflows(repo, ref=ref)
    if waivers.is_dir():
        extra = load_repo(repo, [waivers])
        loaded.waivers.extend(extra.waivers)
        loaded.diagnostics.extend(extra.diagnostics)
        loaded.texts.update(extra.texts)
    return loaded


def name_collision_diagnostics(
    loaded: LoadResult, artifacts: Mapping[ArtifactKey, Artifact]
) -> list[Diagnostic]:
    """An error on each of two workflows whose artifacts of one target derive an equal engine
    name (they would overwrite and delete each other's live objects), unless loading already
    reported the pair (CPL-S029 on both files)."""
    files = {item.model.key: item.file for item in reversed(loaded.workflows)}
    return collision_errors(name_collisions(artifacts.values()), files, loaded)


def _render_environment(
    loaded: LoadResult, environment: Environment
) -> tuple[dict[ArtifactKey, Artifact], dict[ArtifactKey, CplError]]:
    """Render every (workflow, target) once; failures are kept for the policy inputs to
    report as diagnostics (with the file and line of the workflow)."""
    artifacts: list[Artifact] = []
    failures: dict[ArtifactKey, CplError] = {}
    for item in loaded.workflows:
        workflow = item.model
        for target in environment.targets_for(workflow):
            try:
                artifacts.append(render(workflow, target, environment))
            except CplError as error:
                failures[(workflow.key, target.name)] = error
    shared = share(artifacts, environment)
    return {(a.workflow, a.target): a for a in shared}, failures
