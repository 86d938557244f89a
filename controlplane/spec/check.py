"""Semantic checks of a workflow (docs/validation.md), beyond what the schema says.

Each finding carries a stable code and the JSON pointer of the offending node; the loader
turns pointers into file, line and column. Checks never raise on odd input: every problem
becomes a finding, all of them in one pass. They read an outline of the step graph
(`outline.py`), so they also run on a document with schema errors, on the facts that
validated.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema_rs

from controlplane.spec.model import (
    TERMINAL_TYPES,
    MapStep,
    ParallelStep,
    Retry,
    Step,
    TaskStep,
    Workflow,
)
from controlplane.spec.outline import (
    ScopeOutline,
    WorkflowOutline,
    outline_of,
    outline_of_data,
    transitions,
)

__all__ = [
    "Finding",
    "Scope",
    "check_outline",
    "check_workflow",
    "check_workflow_data",
    "compensation_targets",
    "iter_scopes",
    "transitions",
]

KNOWN_DIALECTS = (
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    pointer: str


@dataclass(frozen=True)
class Scope:
    """One list of sibling steps: the workflow's, a parallel branch's or a map's."""

    pointer: str  # pointer of the object holding `steps` (and `start`)
    start: str | None
    steps: tuple[Step, ...]

    def step_pointer(self, index: int) -> str:
        return f"{self.pointer}/steps/{index}"


def check_workflow(workflow: Workflow) -> list[Finding]:
    """All semantic problems of one valid workflow."""
    return check_outline(outline_of(workflow))


def check_workflow_data(data: Any) -> list[Finding]:
    """The semantic problems of a workflow document that failed schema validation.

    Only facts that validated are checked (see `outline.py`): the findings are those a
    schema error does not hide or cause.
    """
    return check_outline(outline_of_data(data))


def check_outline(outline: WorkflowOutline) -> list[Finding]:
    """All semantic problems the outline's known facts show."""
    findings: list[Finding] = []
    for scope in outline.scopes:
        findings.extend(_check_scope(scope))
    for pointer, retry in outline.retries:
        findings.extend(_check_retry(retry, pointer))
    findings.extend(_check_input_schema(outline.input_schema))
    findings.extend(_check_trigger_names(outline.trigger_names))
    return findings


def _check_trigger_names(names: tuple[tuple[str, str], ...]) -> Iterator[Finding]:
    seen: set[str] = set()
    for pointer, name in names:
        if name in seen:
            yield Finding("CPL-S011", f"duplicate trigger name '{name}'", pointer)
        seen.add(name)


def iter_scopes(workflow: Workflow) -> Iterator[Scope]:
    """The workflow's scope, then each nested branch and map scope, depth first."""
    yield from _scopes(Scope("/spec", workflow.spec.start, tuple(workflow.spec.steps)))


def _scopes(scope: Scope) -> Iterator[Scope]:
    yield scope
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        if isinstance(step, ParallelStep):
            for b, branch in enumerate(step.branches):
                yield from _scopes(
                    Scope(f"{pointer}/branches/{b}", branch.start, tuple(branch.steps))
                )
        elif isinstance(step, MapStep):
            yield from _scopes(Scope(pointer, step.start, tuple(step.steps)))


def compensation_targets(steps: tuple[Step, ...] | list[Step]) -> set[str]:
    """Names of the steps that some task names as its `compensation`."""
    return {s.compensation for s in steps if isinstance(s, TaskStep) and s.compensation}


def _check_scope(scope: ScopeOutline) -> Iterator[Finding]:
    names: dict[str, int] = {}
    for index, step in enumerate(scope.steps):
        if step.name is None:
            continue
        if step.name in names:
            yield Finding(
                "CPL-S011",
                f"duplicate step name '{step.name}' (first at step {names[step.name]})",
                f"{scope.step_pointer(index)}/name",
            )
        else:
            names[step.name] = index
    # A step whose name is missing or invalid may be what a reference means: a reference is
    # dangling only when every name of the scope is known.
    if all(step.name is not None for step in scope.steps):
        yield from _check_references(scope, names)
    yield from _check_step_fields(scope)
    if scope.form == "dag":
        yield from _check_dag(scope, names)
    elif scope.form == "state-machine":
        yield from _check_state_machine(scope, names)


def _unknown(kind: str, name: str, names: dict[str, int]) -> str:
    message = f"{kind} '{name}' names no step in this scope"
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message


def _check_references(scope: ScopeOutline, names: dict[str, int]) -> Iterator[Finding]:
    if scope.start is not None and scope.start not in names:
        yield Finding("CPL-S010", _unknown("start", scope.start, names), f"{scope.pointer}/start")
    for step in scope.steps:
        for suffix, target in step.edges:
            if target not in names:
                field = suffix.rsplit("/", 1)[-1]
                yield Finding(
                    "CPL-S010", _unknown(field, target, names), f"{step.pointer}/{suffix}"
                )
        for d, dependency in enumerate(step.depends_on or ()):
            if dependency not in names:
                yield Finding(
                    "CPL-S010",
                    _unknown("dependsOn", dependency, names),
                    f"{step.pointer}/dependsOn/{d}",
                )
        if step.type == "task" and step.compensation:
            target_index = names.get(step.compensation)
            if target_index is None:
                yield Finding(
                    "CPL-S010",
                    _unknown("compensation", step.compensation, names),
                    f"{step.pointer}/compensation",
                )
                continue
            undo = scope.steps[target_index]
            if undo.exact and undo.type is not None and undo.type != "task":
                yield Finding(
                    "CPL-S017",
                    f"compensation '{step.compensation}' must be a task step, not a {undo.type}",
                    f"{step.pointer}/compensation",
                )


def _check_step_fields(scope: ScopeOutline) -> Iterator[Finding]:
    for step in scope.steps:
        if not step.exact:
            continue  # an absent field may be there under a misspelled key
        if step.type == "choice" and "default" not in step.present:
            yield Finding(
                "CPL-S015",
                f"choice '{step.name}' has no default: add `default: <step>`",
                step.pointer,
            )
        has_duration, has_until = "duration" in step.present, "until" in step.present
        if step.type == "wait" and has_duration == has_until:
            which = "both" if has_duration else "neither"
            yield Finding(
                "CPL-S024",
                f"wait '{step.name}' sets {which} of duration and until; set exactly one",
                step.pointer,
            )


def _check_state_machine(scope: ScopeOutline, names: dict[str, int]) -> Iterator[Finding]:
    compensations = {s.compensation for s in scope.steps if s.compensation}
    # Which steps are compensations (and so need neither next nor end) is certain only when
    # no step may hide a `compensation` behind an invalid value or a misspelled key.
    compensations_known = all(s.exact and s.compensation_known for s in scope.steps)
    for step in scope.steps:
        for field in ("dependsOn", "when"):
            if field in step.present:
                yield Finding(
                    "CPL-S025",
                    f"step '{step.name}' uses `{field}` (DAG form) in a state machine with `start`",
                    f"{step.pointer}/{field}",
                )
                break
        if not step.exact or step.type is None:
            continue
        if step.type in TERMINAL_TYPES or step.type == "choice":
            if "next" in step.present or "end" in step.present:
                yield Finding(
                    "CPL-S028",
                    f"a {step.type} step takes neither `next` nor `end` ('{step.name}')",
                    step.pointer,
                )
        elif (
            step.valid
            and compensations_known
            and step.name not in compensations
            and (step.next is None) == (not step.end)
        ):
            problem = "both `next` and `end`" if step.next else "neither `next` nor `end: true`"
            yield Finding("CPL-S028", f"step '{step.name}' has {problem}", step.pointer)

    # Reachability and termination need the whole graph of the scope.
    if scope.start not in names or not compensations_known:
        return
    if not all(step.valid for step in scope.steps):
        return
    graph = {s.name or "": [t for _, t in s.edges if t in names] for s in scope.steps}
    reachable = _reachable(scope.start, graph)
    for step in scope.steps:
        if step.name in compensations:
            if step.name in reachable:
                yield Finding(
                    "CPL-S017",
                    f"compensation step '{step.name}' is on the main path; "
                    "compensations run only when undoing",
                    step.pointer,
                )
        elif step.name not in reachable:
            yield Finding(
                "CPL-S012",
                f"step '{step.name}' is unreachable from start '{scope.start}'",
                step.pointer,
            )
    yield from _check_termination(scope, graph, reachable)


def _check_termination(
    scope: ScopeOutline, graph: dict[str, list[str]], reachable: set[str]
) -> Iterator[Finding]:
    terminals = {
        s.name or "" for s in scope.steps if s.type in TERMINAL_TYPES or (s.end and s.next is None)
    }
    if not terminals & reachable:
        yield Finding(
            "CPL-S013",
            "no path from start ends the run: add `end: true` or a succeed/fail step",
            f"{scope.pointer}/start",
        )
        return
    reverse: dict[str, list[str]] = {name: [] for name in graph}
    for source, targets in graph.items():
        for target in targets:
            reverse[target].append(source)
    can_end = _reachable_from(terminals, reverse)
    for step in scope.steps:
        if step.name in reachable and step.name not in can_end:
            yield Finding(
                "CPL-S013",
                f"step '{step.name}' starts a path that can never end (a loop with no exit)",
                step.pointer,
            )


def _check_dag(scope: ScopeOutline, names: dict[str, int]) -> Iterator[Finding]:
    for step in scope.steps:
        for field in ("next", "end"):
            if field in step.present:
                yield Finding(
                    "CPL-S025",
                    f"step '{step.name}' uses `{field}` (state-machine form) in a DAG; "
                    "set `spec.start` or use dependsOn",
                    f"{step.pointer}/{field}",
                )
        if step.type == "choice" and step.exact:
            yield Finding(
                "CPL-S025",
                f"choice '{step.name}' needs the state-machine form; in a DAG use `when`",
                step.pointer,
            )
    # A cycle among the known dependencies stays a cycle whatever the unknown ones are.
    graph = {
        s.name: [d for d in (s.depends_on or ()) if d in names]
        for s in scope.steps
        if s.name is not None
    }
    cycle = _find_cycle(graph)
    if cycle:
        first = cycle[0]
        yield Finding(
            "CPL-S014",
            "dependency cycle: " + " -> ".join([*cycle, first]),
            f"{scope.step_pointer(names[first])}/dependsOn",
        )


def _check_retry(retry: Retry, pointer: str) -> Iterator[Finding]:
    if (
        retry.initial_interval
        and retry.max_interval
        and retry.max_interval < retry.initial_interval
    ):
        yield Finding(
            "CPL-S016",
            f"maxInterval {retry.max_interval} is shorter than initialInterval "
            f"{retry.initial_interval}",
            f"{pointer}/maxInterval",
        )


def _check_input_schema(schema: dict[str, Any] | None) -> Iterator[Finding]:
    if schema is None:
        return
    problem = _schema_problem(json.dumps(schema, sort_keys=True))
    if problem:
        message, where = problem
        yield Finding(
            "CPL-S020",
            f"input.schema is not a valid JSON Schema: {message}",
            "/spec/input/schema" + where,
        )


@lru_cache(maxsize=4096)
def _schema_problem(schema_text: str) -> tuple[str, str] | None:
    """Why a JSON Schema is invalid against its meta-schema, and where (a pointer suffix).

    jsonschema-rs: the pure-Python meta-schema check costs ~10 ms a schema, which would
    dominate validating thousands of workflows.
    """
    schema = json.loads(schema_text)
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is not None and dialect.rstrip("#") not in KNOWN_DIALECTS:
        return f"unknown $schema {dialect!r} (use one of {', '.join(KNOWN_DIALECTS)})", "/$schema"
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        where = "".join(f"/{part}" for part in exc.instance_path)
        return exc.message, where
    except jsonschema_rs.ReferencingError as exc:
        return str(exc), ""
    return None


def _reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    return _reachable_from({start}, graph)


def _reachable_from(roots: set[str], graph: dict[str, list[str]]) -> set[str]:
    seen = set(roots)
    stack = list(roots)
    while stack:
        for target in graph.get(stack.pop(), []):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as a list of names, or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in graph:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return path[path.index(child) :]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(graph[child])))
    return None
