"""The desired state of an environment, computed through the cache and only where needed.

One entry per workflow file (`workflow`: what loading found, and per target the artifact's
digest, names and the part its engine's `share` reads), one per (workflow, target) artifact
(`artifact`), one per workflow's policy results (`policy`: findings located in the file,
before enforcement and waivers), and the rule metadata of a policy bundle (`rules`). Keys
are the digests of everything the value was computed from (`controlplane.cache.keys`):
the file's path and text, the environment, the policy bundle, the change document, what
other workflows' artifacts add to this one's (`share`), and cpl's own code. Waivers,
enforcement and `today` are applied after evaluation (`policy.decision.decide`), so they
are never part of an entry.

With `--base REF`, only the workflow files whose git blob id differs from REF are read at
REF and compared; the policy pass covers the changed workflows and those that share a
resource (a Temporal namespace) with a changed one whose shared part changed. When the
environment file itself changed since REF, every workflow is in scope.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from controlplane.cache import codec
from controlplane.cache.keys import environment_digest, key_of, policy_digest, text_digest
from controlplane.cache.store import Cache
from controlplane.engines import ENGINES, render
from controlplane.engines.names import NameCollision, collision_errors, collisions_of
from controlplane.engines.sharing import share
from controlplane.engines.translator import Artifact
from controlplane.errors import CplError, Diagnostic
from controlplane.policy.change import UNKNOWN, Change, compare
from controlplane.policy.decision import Decision, Located, Subject, decide, locate_findings
from controlplane.policy.engine import open_engine
from controlplane.policy.inputs import PolicyInput, Rendered, build_inputs
from controlplane.policy.library import RuleInfo
from controlplane.policy.shared import isolation_of, shared_documents
from controlplane.spec.environment import Environment, Target
from controlplane.spec.files import SUFFIXES, Source
from controlplane.spec.gitbase import BaseRef, blob_id, changed_files
from controlplane.spec.load import (
    Loaded,
    LoadResult,
    colliding_engine_names,
    duplicate_workflows,
    load_sources,
    parse_yaml,
)
from controlplane.spec.model import Workflow

Materialize = Literal["all", "scope", "none"]
ArtifactKey = tuple[str, str]
WORKFLOWS = "workflows"

SharedOf = Callable[[str, str], list[dict[str, Any]]]
"""`input.shared` of a (workflow, target) (`controlplane.policy.shared`)."""


@dataclass
class Entry:
    """One workflow file: what the cache (or loading it) says about it."""

    source: Source
    digest: str
    key: str | None
    diagnostics: list[Diagnostic]
    targets: list[dict[str, Any]]
    model: Workflow | None = None
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    failures: dict[str, CplError] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the cached pass computed (see `controlplane.pipeline.DesiredState`)."""

    loaded: LoadResult
    decision: Decision
    subjects: list[Subject]
    inputs: list[PolicyInput]
    artifacts: dict[ArtifactKey, Artifact]
    previous: LoadResult | None = None
    changes: dict[str, Change] | None = None
    unchanged: int = 0
    renders: int = 0
    evaluated: int = 0


class Workspace:
    """The workflow files of one environment, loaded and rendered at most once each."""

    def __init__(self, cache: Cache, environment: Environment):
        self.cache = cache
        self.environment = environment
        self.env_digest = environment_digest(environment)
        self.renders = 0

    def entry(self, source: Source) -> Entry:
        if source.problem is not None:
            return self._load(source, store=False)
        digest = text_digest(source.text)
        data = self.cache.get("workflow", self._workflow_key(source.file, digest))
        if isinstance(data, dict):
            try:
                return Entry(
                    source,
                    digest,
                    data["key"],
                    [codec.diagnostic_of(d) for d in data["diagnostics"]],
                    list(data["targets"]),
                )
            except (KeyError, TypeError, ValueError):
                pass
        return self._load(source, store=True)

    def _workflow_key(self, file: str, digest: str) -> str:
        return key_of("workflow", file, digest, self.env_digest)

    def _artifact_key(self, digest: str, target: str) -> str:
        return key_of("artifact", digest, self.env_digest, target)

    def _load(self, source: Source, *, store: bool) -> Entry:
        digest = text_digest(source.text)
        result = load_sources([source], check_unique=False)
        model = result.workflows[0].model if result.workflows else None
        entry = Entry(source, digest, model.key if model else None, result.diagnostics, [])
        entry.model = model
        if model is not None:
            for target in self.environment.targets_for(model):
                entry.targets.append(self._render(entry, model, target, store=store))
        if store:
            self.cache.put(
                "workflow",
                self._workflow_key(source.file, digest),
                {
                    "key": entry.key,
                    "diagnostics": [codec.diagnostic_json(d) for d in entry.diagnostics],
                    "targets": entry.targets,
                },
            )
        return entry

    def _render(
        self, entry: Entry, model: Workflow, target: Target, *, store: bool
    ) -> dict[str, Any]:
        self.renders += 1
        try:
            artifact = render(model, target, self.environment)
        except CplError as error:
            entry.failures[target.name] = error
            return {"target": target.name, "failure": error.message}
        entry.artifacts[target.name] = artifact
        if store and self.cache.enabled:
            data = codec.artifact_json(artifact)
            if data is not None:
                self.cache.put("artifact", self._artifact_key(entry.digest, target.name), data)
        engine = ENGINES[artifact.engine]
        # The artifact itself is a function of the keyed inputs (the file, the environment,
        # cpl's code): only what depends on other workflows (`share`) is added to keys.
        return {
            "target": target.name,
            "engine": artifact.engine,
            "version": artifact.version,
            "resource": artifact.resource,
            "names": dict(engine.names(artifact)),
            "view": engine.share_view(artifact.document),
            # what other workflows' policy inputs read of this one (`input.shared`)
            "isolation": isolation_of(model),
        }

    def materialize(self, entry: Entry) -> None:
        """Give the entry its workflow model and full (pre-share) artifacts."""
        if entry.key is None:
            return
        if entry.model is None:
            entry.model = _model_of(entry.source)
        if entry.model is None:
            return
        targets = {t.name: t for t in self.environment.spec.targets}
        for summary in entry.targets:
            name = summary["target"]
            if name in entry.artifacts or name in entry.failures:
                continue
            if "failure" in summary:
                entry.failures[name] = CplError(summary["failure"])
                continue
            data = self.cache.get("artifact", self._artifact_key(entry.digest, name))
            artifact = codec.artifact_of(data) if data is not None else None
            if artifact is None:
                self._render(entry, entry.model, targets[name], store=True)
            else:
                entry.artifacts[name] = artifact


def _model_of(source: Source) -> Workflow | None:
    """The workflow of a file whose diagnostics the cache already has: parsed and validated,
    without the checks that only produce diagnostics."""
    data, problem = parse_yaml(source.file, source.text)
    if problem is None and isinstance(data, dict):
        try:
            return Workflow.model_validate(data)
        except ValidationError:
            pass
    result = load_sources([source], check_unique=False)
    return result.workflows[0].model if result.workflows else None


def stubs(entries: list[Entry]) -> list[Artifact]:
    """Each artifact as `share` needs it: its identity and its engine's view of it."""
    return [
        Artifact(
            workflow=entry.key,
            version=t["version"],
            target=t["target"],
            engine=t["engine"],
            resource=t["resource"],
            document=dict(t["view"]),
            support=(),
        )
        for entry in entries
        if entry.key is not None
        for t in entry.targets
        if "failure" not in t
    ]


def share_of(
    entries: list[Entry], environment: Environment
) -> tuple[list[Artifact], dict[ArtifactKey, tuple[Any, ...]]]:
    """The shared artifacts of the environment, and the Support records `share` adds to each
    (workflow, target)."""
    shared: list[Artifact] = []
    extras: dict[ArtifactKey, tuple[Any, ...]] = {}
    for artifact in share(stubs(entries), environment):
        if artifact.shared:
            shared.append(artifact)
        elif artifact.support:
            extras[(artifact.workflow, artifact.target)] = artifact.support
    return shared, extras


def cached_pass(
    repo: Path,
    environment: Environment,
    sources: list[Source],
    extra: LoadResult,
    *,
    cache: Cache,
    base: str | None = None,
    changes: Callable[[Environment, LoadResult], Mapping[str, Change]] | None = None,
    today: dt.date | None = None,
    materialize: Materialize = "all",
) -> Outcome:
    """Load, render, share and decide `sources` (the workflow files) for `environment`;
    `extra` holds the waivers (and their texts and diagnostics)."""
    space = Workspace(cache, environment)
    kind = "base" if base is not None else "changes" if changes is not None else "check"
    cache.open_bundle(key_of("bundle", space.env_digest, kind))
    entries = [space.entry(source) for source in sources]
    texts = {s.file: s.text for s in sources} | extra.texts
    loaded = LoadResult(waivers=list(extra.waivers), texts=texts)
    keys = [(e.key, e.source.file) for e in entries if e.key is not None]
    loaded.diagnostics = [d for e in entries for d in e.diagnostics] + list(extra.diagnostics)
    loaded.diagnostics += duplicate_workflows(keys, loaded.diagnostic)
    loaded.diagnostics += colliding_engine_names(keys, loaded)
    shared, extras = share_of(entries, environment)
    collisions = collisions_of(
        (t["target"], e.key, t["names"])
        for e in entries
        if e.key is not None
        for t in e.targets
        if "failure" not in t
    )
    loaded.diagnostics += collision_diagnostics(collisions, entries, loaded)
    loaded.diagnostics.sort()

    previous: LoadResult | None = None
    base_changes: dict[str, Change] | None = None
    unchanged = 0
    if base is not None:
        scope, inputs_change, base_changes, previous = _since_base(
            repo, base, space, entries, shared, environment
        )
        scoped = [e for e in entries if e.key in scope]
        unchanged = len({e.key for e in entries if e.key is not None} - scope)
    else:
        scoped = [e for e in entries if e.key is not None]
        inputs_change = {}
        if changes is not None:
            for e in scoped:
                space.materialize(e)
            models = LoadResult(
                workflows=[Loaded(e.model, e.source.file) for e in scoped if e.model],
                texts=texts,
            )
            inputs_change = dict(changes(environment, models))

    isolation = {
        e.key: str(t.get("isolation", "standard")) for e in entries if e.key for t in e.targets
    }
    shared_of = shared_documents(shared, isolation, environment)
    subjects, located, inputs, problems, rules, evaluated = _policy(
        repo, environment, space, scoped, inputs_change, extras, loaded, shared_of
    )
    decision = decide(
        subjects,
        located,
        rules,
        environment,
        loaded.waivers,
        today,
        diagnostics=[*loaded.diagnostics, *problems],
    )
    wanted = entries if materialize == "all" else scoped if materialize == "scope" else []
    artifacts: dict[ArtifactKey, Artifact] = {}
    for e in wanted:
        space.materialize(e)
        for name, artifact in e.artifacts.items():
            added = extras.get((artifact.workflow, name), ())
            if added:
                artifact = dataclasses.replace(artifact, support=(*artifact.support, *added))
            artifacts[(artifact.workflow, name)] = artifact
    for artifact in shared:
        artifacts[(artifact.workflow, artifact.target)] = artifact
    loaded.workflows = [Loaded(e.model, e.source.file) for e in entries if e.model is not None]
    cache.save_bundle()
    cache.prune_now()
    return Outcome(
        loaded,
        decision,
        subjects,
        inputs,
        artifacts,
        previous,
        base_changes,
        unchanged,
        space.renders,
        evaluated,
    )


def collision_diagnostics(
    collisions: list[NameCollision], entries: list[Entry], loaded: LoadResult
) -> list[Diagnostic]:
    files = {e.key: e.source.file for e in reversed(entries) if e.key is not None}
    return collision_errors(collisions, files, loaded)


def _since_base(
    repo: Path,
    ref: str,
    space: Workspace,
    entries: list[Entry],
    shared: list[Artifact],
    environment: Environment,
) -> tuple[set[str], dict[str, Change], dict[str, Change], LoadResult]:
    """(workflow keys in scope, their change documents, the changes since `ref` that are
    not `none` (deletes included), the workflows read at `ref`)."""
    opened = BaseRef.open(repo, ref)
    sources = [e.source for e in entries]
    changed, deleted = changed_files(opened, WORKFLOWS, sources)
    environment_file = _environment_file(repo, environment)
    everything = environment_file is None or opened.blob(environment_file) != blob_id(
        (repo / environment_file).read_bytes()
    )
    if everything:
        changed = [s.file for s in sources]  # every workflow may render differently
    changed_set = set(changed)
    at_base = opened.sources(sorted({*changed, *deleted}), WORKFLOWS)
    previous = load_sources(at_base, check_unique=False)
    before = {w.model.key: w.model for w in previous.workflows}
    now_entries = [e for e in entries if e.source.file in changed_set and e.key is not None]
    for e in now_entries:
        space.materialize(e)
    now = {e.key: e.model for e in now_entries if e.key is not None and e.model is not None}
    every = {k: compare(before.get(k), now.get(k)) for k in {*before, *now}}
    changes = {k: c for k, c in every.items() if c.action != "none"}
    scope = set(every) if everything else set(changes)

    # Sharing: a changed workflow whose shared part changed pulls in every workflow it
    # shares a resource with, now or at the base.
    base_entries = [space.entry(s) for s in at_base if s.problem is None]
    kept = [e for e in entries if e.source.file not in changed_set]
    base_shared, _ = share_of(kept + base_entries, environment)
    views_now = _views(e for e in now_entries)
    views_base = _views(e for e in base_entries)
    existing = {e.key for e in entries if e.key is not None}
    for key in changes:
        if views_now.get(key, {}) == views_base.get(key, {}):
            continue
        for artifact in [*shared, *base_shared]:
            if key in artifact.shared_by:
                scope.update(k for k in artifact.shared_by if k in existing)
    inputs_change = {k: every[k] for k in scope if k in every}
    for e in entries:
        if e.key in scope and e.key not in inputs_change:
            space.materialize(e)
            if e.model is not None:
                inputs_change[e.key] = compare(e.model, e.model)
    return scope, inputs_change, changes, previous


def _views(entries: Any) -> dict[str, dict[str, Any]]:
    return {
        e.key: {t["target"]: [t.get("view"), t.get("isolation")] for t in e.targets}
        for e in entries
        if e.key is not None
    }


def _environment_file(repo: Path, environment: Environment) -> str | None:
    for suffix in SUFFIXES:
        name = f"environments/{environment.name}{suffix}"
        if (repo / name).is_file():
            return name
    return None


def _policy(
    repo: Path,
    environment: Environment,
    space: Workspace,
    scoped: list[Entry],
    changes: Mapping[str, Change],
    extras: Mapping[ArtifactKey, tuple[Any, ...]],
    loaded: LoadResult,
    shared_of: SharedOf,
) -> tuple[
    list[Subject],
    list[list[Located]],
    list[PolicyInput],
    list[Diagnostic],
    dict[str, RuleInfo],
    int,
]:
    """Policy results of the scoped workflows: from the cache, or evaluated in one batch."""
    cache = space.cache
    bundle = policy_digest(environment, repo)
    found: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for e in scoped:
        if bundle is None:
            continue
        change = changes.get(e.key or "", UNKNOWN)
        keys[e.source.file] = key_of(
            "policy",
            e.source.file,
            e.digest,
            space.env_digest,
            bundle,
            change.to_json(),
            [
                [
                    t["target"],
                    t.get("failure"),
                    [s.to_json() for s in extras.get((e.key or "", t["target"]), ())],
                    shared_of(e.key or "", t["target"]),
                ]
                for t in e.targets
            ],
        )
        data = cache.get("policy", keys[e.source.file])
        if isinstance(data, dict) and "targets" in data and "problems" in data:
            found[e.source.file] = data
    missing = [e for e in scoped if e.source.file not in found]
    rules: dict[str, RuleInfo] | None = None
    inputs: list[PolicyInput] = []
    if missing:
        inputs, places, blocked, rules = _evaluate(
            repo, environment, space, missing, changes, extras, loaded, shared_of
        )
        problems_of: dict[str, list[Diagnostic]] = {}
        for d in blocked:
            problems_of.setdefault(d.file, []).append(d)
        for e in missing:
            data = _entry_of(e, inputs, places, problems_of.get(e.source.file, []))
            found[e.source.file] = data
            if e.source.file in keys:
                cache.put("policy", keys[e.source.file], data)
    if rules is None:
        rules = _rules(repo, environment, cache, bundle)
    elif bundle is not None:
        cache.put("rules", key_of("rules", bundle), [codec.rule_json(r) for r in rules.values()])
    subjects: list[Subject] = []
    located: list[list[Located]] = []
    problems: list[Diagnostic] = []
    for e in scoped:
        data = found[e.source.file]
        for target, places in data["targets"]:
            subjects.append(Subject(e.key or "", target, e.source.file))
            located.append([codec.located_of(p) for p in places])
        problems.extend(codec.diagnostic_of(d) for d in data["problems"])
    return subjects, located, inputs, problems, rules, len(inputs)


def _evaluate(
    repo: Path,
    environment: Environment,
    space: Workspace,
    missing: list[Entry],
    changes: Mapping[str, Change],
    extras: Mapping[ArtifactKey, tuple[Any, ...]],
    loaded: LoadResult,
    shared_of: SharedOf,
) -> tuple[list[PolicyInput], list[list[Located]], list[Diagnostic], dict[str, RuleInfo]]:
    """Build the inputs of the `missing` workflows and evaluate them in one engine pass:
    (inputs, their located findings, the problems that blocked some inputs, the rules)."""
    for e in missing:
        space.materialize(e)
    subset = LoadResult(
        workflows=[Loaded(e.model, e.source.file) for e in missing if e.model is not None],
        texts=loaded.texts,
    )
    artifacts = {(e.key, name): a for e in missing for name, a in e.artifacts.items()}
    failures = {(e.key, name): f for e in missing for name, f in e.failures.items()}

    def lookup(workflow: Workflow, target: Target, _: Environment) -> Rendered:
        failure = failures.get((workflow.key, target.name))
        if failure is not None:
            raise failure
        artifact = artifacts[(workflow.key, target.name)]
        support = [*artifact.support, *extras.get((workflow.key, target.name), ())]
        return Rendered(dict(artifact.document), [s.to_json() for s in support])

    inputs, problems = build_inputs(subset, environment, None, render=lookup)
    inputs = [
        dataclasses.replace(i, document={**i.document, "change": changes[i.workflow].to_json()})
        if i.workflow in changes
        else i
        for i in inputs
    ]
    inputs = [
        dataclasses.replace(i, document={**i.document, "shared": shared})
        if (shared := shared_of(i.workflow, i.target))
        else i
        for i in inputs
    ]
    engine = open_engine(environment, repo)
    try:
        outcomes = engine.evaluate([i.document for i in inputs])
        rules = dict(engine.rules)
    finally:
        engine.close()
    return inputs, locate_findings(inputs, outcomes, loaded.locate), problems, rules


def _entry_of(
    entry: Entry,
    inputs: list[PolicyInput],
    located: list[list[Located]],
    problems: list[Diagnostic],
) -> dict[str, Any]:
    """The `policy` entry of one workflow file: its targets' located findings, in input
    order, and the problems that kept some of its targets from an input."""
    return {
        "targets": [
            [item.target, [codec.located_json(p) for p in places]]
            for item, places in zip(inputs, located, strict=True)
            if item.file == entry.source.file
        ],
        "problems": [codec.diagnostic_json(d) for d in problems],
    }


def _rules(
    repo: Path, environment: Environment, cache: Cache, bundle: str | None
) -> dict[str, RuleInfo]:
    """The rule metadata of the environment's policy bundle (loading the engine only when
    the cache does not have it)."""
    if bundle is not None:
        data = cache.get("rules", key_of("rules", bundle))
        if isinstance(data, list):
            try:
                return {r.id: r for r in (codec.rule_of(d) for d in data)}
            except (KeyError, TypeError):
                pass
    engine = open_engine(environment, repo)
    try:
        rules = dict(engine.rules)
    finally:
        engine.close()
    if bundle is not None:
        cache.put("rules", key_of("rules", bundle), [codec.rule_json(r) for r in rules.values()])
    return rules
