"""Policy input documents (controlplane/policies/README.md), one per (workflow, target) of an
environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from controlplane.engines import render
from controlplane.errors import CplError, Diagnostic
from controlplane.policy.change import UNKNOWN, compare
from controlplane.spec.check import iter_scopes
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import LoadResult
from controlplane.spec.model import TaskStep, Workflow
from controlplane.spec.normalize import to_data, to_document

NO_TARGET = "CPL-C001"
MISSING_BINDING = "CPL-C002"
RENDER_FAILED = "CPL-C003"

Locate = Callable[[str, str], tuple[int, int]]


@dataclass(frozen=True)
class PolicyInput:
    """One input document and what it is about."""

    workflow: str  # tenant/name
    target: str
    file: str
    document: dict[str, Any] = field(repr=False)
    source: Workflow | None = field(default=None, repr=False, compare=False)

    def origin(self, pointer: str) -> str:
        """Where the node at `pointer` comes from in the file: a task's `timeout`,
        `heartbeat` or `retry` that only exists because of `spec.defaults` comes from
        `/spec/defaults/...` (so waivers and locations can name the defaults)."""
        return origin(self.source, pointer) if self.source is not None else pointer


@dataclass(frozen=True)
class Rendered:
    """What a translator produced for one target: `input.rendered` and `input.compat`."""

    document: dict[str, Any]
    compat: list[dict[str, Any]]


def build_inputs(
    loaded: LoadResult,
    environment: Environment,
    previous: LoadResult | None = None,
    *,
    render: Callable[[Workflow, Target, Environment], Rendered] | None = None,
) -> tuple[list[PolicyInput], list[Diagnostic]]:
    """Inputs for every (workflow, selected target), and the problems that block some.

    With `previous` (the workflows at `--base`), each input carries its `change` document
    and unchanged workflows are left out (the check covers what the change touches).
    A workflow that no target selects, or that uses a logical name the environment does
    not bind for a target's engine, is an error diagnostic and gets no input there.
    """
    render = render or rendered
    before = {w.model.key: w.model for w in previous.workflows} if previous else {}
    inputs: list[PolicyInput] = []
    diagnostics: list[Diagnostic] = []
    environment_doc = {"name": environment.name, "tier": environment.tier}
    # Shared by the inputs of one call (read-only for the policies): the documents of the
    # targets and of the activity bindings are dumped once, not once per input.
    target_docs = {target.name: target_document(target) for target in environment.spec.targets}
    activity_docs: dict[str, dict[str, Any]] = {}
    for item in loaded.workflows:
        workflow = item.model
        change = compare(before.get(workflow.key), workflow) if previous is not None else UNKNOWN
        if previous is not None and change.action == "none":
            continue
        targets = environment.targets_for(workflow)
        if not targets:
            diagnostics.append(
                loaded.diagnostic(
                    item.file,
                    NO_TARGET,
                    f"no target of environment '{environment.name}' selects workflow "
                    f"'{workflow.key}' ({_selectors(environment)})",
                    "/metadata",
                )
            )
            continue
        document = change.current or to_document(workflow)
        for target in targets:
            missing = list(_missing_bindings(workflow, target, environment))
            if missing:
                diagnostics.extend(
                    loaded.diagnostic(item.file, MISSING_BINDING, message, pointer)
                    for pointer, message in missing
                )
                continue
            try:
                artifact = render(workflow, target, environment)
            except CplError as exc:
                diagnostics.append(
                    loaded.diagnostic(
                        item.file,
                        RENDER_FAILED,
                        f"cannot render for target '{target.name}': {exc.message}",
                        "",
                    )
                )
                continue
            inputs.append(
                PolicyInput(
                    workflow.key,
                    target.name,
                    item.file,
                    {
                        "workflow": document,
                        "file": item.file,
                        "environment": environment_doc,
                        "target": target_docs.get(target.name) or target_document(target),
                        "rendered": artifact.document,
                        "compat": artifact.compat,
                        "change": change.to_json(),
                        "bindings": used_bindings(workflow, environment, activity_docs),
                    },
                    workflow,
                )
            )
    return inputs, diagnostics


def rendered(workflow: Workflow, target: Target, environment: Environment) -> Rendered:
    """The seam to the translators: the rendered document and Support records of one artifact
    (on its own; `controlplane.pipeline` adds what workflows share)."""
    artifact = render(workflow, target, environment)
    return Rendered(dict(artifact.document), [support.to_json() for support in artifact.support])


def target_document(target: Target) -> dict[str, Any]:
    """`input.target`: every setting of the target except its selector."""
    document: dict[str, Any] = target.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"select"}
    )
    document.setdefault("regulated", target.regulated)
    return document


def _activities(workflow: Workflow) -> Iterator[tuple[str, str]]:
    """(pointer of the task, activity name) for every task at any depth."""
    for scope in iter_scopes(workflow):
        for index, step in enumerate(scope.steps):
            if isinstance(step, TaskStep):
                yield scope.step_pointer(index), step.activity


def used_bindings(
    workflow: Workflow,
    environment: Environment,
    dumped: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`input.bindings`: only the bindings this workflow refers to.

    `dumped` memoizes the JSON of each activity binding across the inputs of one environment.
    """
    bindings = environment.spec.bindings
    dumped = {} if dumped is None else dumped
    spec = workflow.spec
    activities = {name for _, name in _activities(workflow)}
    queue = spec.on_error.dead_letter if spec.on_error else None
    key = spec.security.encryption.key if spec.security and spec.security.encryption else None
    store = spec.payload.offload.store if spec.payload and spec.payload.offload else None
    return {
        "activities": {
            name: _activity_document(name, environment, dumped)
            for name in sorted(activities)
            if name in bindings.activities
        },
        "queues": {queue: dict(bindings.queues[queue])} if queue in bindings.queues else {},
        "keys": {key: dict(bindings.keys[key])} if key in bindings.keys else {},
        "stores": (
            {store: bindings.stores[store].model_dump(mode="json")}
            if store in bindings.stores
            else {}
        ),
    }


def _activity_document(
    name: str, environment: Environment, dumped: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    document = dumped.get(name)
    if document is None:
        binding = environment.spec.bindings.activities[name]
        document = dumped[name] = binding.model_dump(mode="json", exclude_none=True)
    return document


def _missing_bindings(
    workflow: Workflow, target: Target, environment: Environment
) -> Iterator[tuple[str, str]]:
    bindings = environment.spec.bindings
    engine = target.engine
    where = f"environment '{environment.name}' (target '{target.name}', {engine})"
    reported: set[str] = set()
    for pointer, name in _activities(workflow):
        binding = bindings.activities.get(name)
        if (binding is None or getattr(binding, engine, None) is None) and name not in reported:
            reported.add(name)
            yield (
                f"{pointer}/activity",
                f"activity '{name}' has no binding in {where}: add "
                f"spec.bindings.activities.{name}.{engine}",
            )
    spec = workflow.spec
    if spec.on_error and spec.on_error.dead_letter:
        queue = spec.on_error.dead_letter
        if engine not in bindings.queues.get(queue, {}):
            yield (
                "/spec/onError/deadLetter",
                f"queue '{queue}' has no binding in {where}: "
                f"add spec.bindings.queues.{queue}.{engine}",
            )
    if spec.security and spec.security.encryption:
        key = spec.security.encryption.key
        if engine not in bindings.keys.get(key, {}):
            yield (
                "/spec/security/encryption/key",
                f"key '{key}' has no binding in {where}: add spec.bindings.keys.{key}.{engine}",
            )
    if spec.payload and spec.payload.offload:
        store = spec.payload.offload.store
        if store not in bindings.stores:
            yield (
                "/spec/payload/offload/store",
                f"store '{store}' has no binding in {where}: add spec.bindings.stores.{store}.url",
            )


def _selectors(environment: Environment) -> str:
    parts = []
    for target in environment.spec.targets:
        select = target.select.model_dump(exclude_defaults=True)
        parts.append(f"{target.name}: {select or 'all'}")
    return "targets " + "; ".join(parts)


def origin(workflow: Workflow, pointer: str) -> str:
    """The pointer of the node the user wrote for the normalized node at `pointer`."""
    node: Any = to_data(workflow)
    tokens = pointer.split("/")[1:] if pointer else []
    for depth, token in enumerate(tokens):
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            defaults = (to_data(workflow).get("spec") or {}).get("defaults") or {}
            inherited = key in _INHERITED and isinstance(node, dict) and node.get("type") == "task"
            if inherited and key in defaults:
                return "/".join(["", "spec", "defaults", *tokens[depth:]])
            return pointer
    return pointer


_INHERITED = ("timeout", "heartbeat", "retry")
