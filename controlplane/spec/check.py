"""Semantic checks of a schema-valid workflow (SPEC.md §1.2).

Each finding carries a stable code and the JSON pointer of the offending node; the loader
turns pointers into file, line and column. Checks never raise on odd input: every problem
becomes a finding, all of them in one pass.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import jsonschema_rs

from controlplane.spec.model import (
    ApprovalStep,
    ChoiceStep,
    MapStep,
    ParallelStep,
    Retry,
    Step,
    TaskStep,
    WaitStep,
    Workflow,
)

TERMINAL_TYPES = ("succeed", "fail")
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
    top_level: bool

    def step_pointer(self, index: int) -> str:
        return f"{self.pointer}/steps/{index}"


def check_workflow(workflow: Workflow) -> list[Finding]:
    """All semantic problems of one workflow, in document order."""
    findings: list[Finding] = []
    for scope in iter_scopes(workflow):
        findings.extend(_check_scope(scope))
    findings.extend(_check_retries(workflow))
    findings.extend(_check_input_schema(workflow))
    return findings


def iter_scopes(workflow: Workflow) -> Iterator[Scope]:
    """The workflow's scope, then each nested branch and map scope, depth first."""
    yield from _scopes(Scope("/spec", workflow.spec.start, tuple(workflow.spec.steps), True))


def _scopes(scope: Scope) -> Iterator[Scope]:
    yield scope
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        if isinstance(step, ParallelStep):
            for b, branch in enumerate(step.branches):
                yield from _scopes(
                    Scope(f"{pointer}/branches/{b}", branch.start, tuple(branch.steps), False)
                )
        elif isinstance(step, MapStep):
            yield from _scopes(Scope(pointer, step.start, tuple(step.steps), False))


def compensation_targets(steps: tuple[Step, ...] | list[Step]) -> set[str]:
    """Names of the steps that some task names as its `compensation`."""
    return {s.compensation for s in steps if isinstance(s, TaskStep) and s.compensation}


def transitions(step: Step) -> Iterator[tuple[str, str]]:
    """(field pointer suffix, target name) for every state-machine edge out of a step."""
    if step.next:
        yield "next", step.next
    if isinstance(step, ChoiceStep):
        for r, rule in enumerate(step.rules):
            yield f"rules/{r}/next", rule.next
        if step.default:
            yield "default", step.default
    if isinstance(step, ApprovalStep) and step.on_timeout:
        yield "onTimeout", step.on_timeout
    for c, catch in enumerate(getattr(step, "catch", [])):
        yield f"catch/{c}/next", catch.next


def _check_scope(scope: Scope) -> Iterator[Finding]:
    names: dict[str, int] = {}
    for index, step in enumerate(scope.steps):
        if step.name in names:
            yield Finding(
                "CPL-S011",
                f"duplicate step name '{step.name}' (first at step {names[step.name]})",
                f"{scope.step_pointer(index)}/name",
            )
        else:
            names[step.name] = index
    yield from _check_references(scope, names)
    yield from _check_step_fields(scope)
    if scope.start is None:
        yield from _check_dag(scope, names)
    else:
        yield from _check_state_machine(scope, names)


def _unknown(kind: str, name: str, names: dict[str, int]) -> str:
    message = f"{kind} '{name}' names no step in this scope"
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message


def _check_references(scope: Scope, names: dict[str, int]) -> Iterator[Finding]:
    if scope.start is not None and scope.start not in names:
        yield Finding("CPL-S010", _unknown("start", scope.start, names), f"{scope.pointer}/start")
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        for suffix, target in transitions(step):
            if target not in names:
                field = suffix.rsplit("/", 1)[-1]
                yield Finding("CPL-S010", _unknown(field, target, names), f"{pointer}/{suffix}")
        for d, dependency in enumerate(step.depends_on or []):
            if dependency not in names:
                yield Finding(
                    "CPL-S010", _unknown("dependsOn", dependency, names), f"{pointer}/dependsOn/{d}"
                )
        if isinstance(step, TaskStep) and step.compensation:
            target_index = names.get(step.compensation)
            if target_index is None:
                yield Finding(
                    "CPL-S010",
                    _unknown("compensation", step.compensation, names),
                    f"{pointer}/compensation",
                )
            elif not isinstance(scope.steps[target_index], TaskStep):
                yield Finding(
                    "CPL-S017",
                    f"compensation '{step.compensation}' must be a task step, "
                    f"not a {scope.steps[target_index].type}",
                    f"{pointer}/compensation",
                )


def _check_step_fields(scope: Scope) -> Iterator[Finding]:
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        if isinstance(step, ChoiceStep) and step.default is None:
            yield Finding(
                "CPL-S015", f"choice '{step.name}' has no default: add `default: <step>`", pointer
            )
        if isinstance(step, WaitStep) and (step.duration is None) == (step.until is None):
            which = "both" if step.duration is not None else "neither"
            yield Finding(
                "CPL-S024",
                f"wait '{step.name}' sets {which} of duration and until; set exactly one",
                pointer,
            )


def _check_state_machine(scope: Scope, names: dict[str, int]) -> Iterator[Finding]:
    compensations = compensation_targets(scope.steps)
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        if step.depends_on is not None or step.when is not None:
            field = "dependsOn" if step.depends_on is not None else "when"
            yield Finding(
                "CPL-S025",
                f"step '{step.name}' uses `{field}` (DAG form) in a state machine with `start`",
                f"{pointer}/{field}",
            )
        if step.type in TERMINAL_TYPES or isinstance(step, ChoiceStep):
            if step.next is not None or step.end is not None:
                yield Finding(
                    "CPL-S028",
                    f"a {step.type} step takes neither `next` nor `end` ('{step.name}')",
                    pointer,
                )
        elif step.name not in compensations and (step.next is None) == (not step.end):
            problem = "both `next` and `end`" if step.next else "neither `next` nor `end: true`"
            yield Finding("CPL-S028", f"step '{step.name}' has {problem}", pointer)

    if scope.start not in names:
        return
    graph = {s.name: [t for _, t in transitions(s) if t in names] for s in scope.steps}
    reachable = _reachable(scope.start, graph)
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        if step.name in compensations:
            if step.name in reachable:
                yield Finding(
                    "CPL-S017",
                    f"compensation step '{step.name}' is on the main path; "
                    "compensations run only when undoing",
                    pointer,
                )
        elif step.name not in reachable:
            yield Finding(
                "CPL-S012", f"step '{step.name}' is unreachable from start '{scope.start}'", pointer
            )
    yield from _check_termination(scope, graph, reachable)


def _check_termination(
    scope: Scope, graph: dict[str, list[str]], reachable: set[str]
) -> Iterator[Finding]:
    terminals = {
        s.name for s in scope.steps if s.type in TERMINAL_TYPES or (s.end and s.next is None)
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
    for index, step in enumerate(scope.steps):
        if step.name in reachable and step.name not in can_end:
            yield Finding(
                "CPL-S013",
                f"step '{step.name}' starts a path that can never end (a loop with no exit)",
                scope.step_pointer(index),
            )


def _check_dag(scope: Scope, names: dict[str, int]) -> Iterator[Finding]:
    if not scope.top_level:
        return  # branches and maps always have `start`; the schema requires it
    for index, step in enumerate(scope.steps):
        pointer = scope.step_pointer(index)
        for field in ("next", "end"):
            if getattr(step, field) is not None:
                yield Finding(
                    "CPL-S025",
                    f"step '{step.name}' uses `{field}` (state-machine form) in a DAG; "
                    "set `spec.start` or use dependsOn",
                    f"{pointer}/{field}",
                )
        if isinstance(step, ChoiceStep):
            yield Finding(
                "CPL-S025",
                f"choice '{step.name}' needs the state-machine form; in a DAG use `when`",
                pointer,
            )
    graph = {s.name: [d for d in (s.depends_on or []) if d in names] for s in scope.steps}
    cycle = _find_cycle(graph)
    if cycle:
        first = cycle[0]
        yield Finding(
            "CPL-S014",
            "dependency cycle: " + " -> ".join([*cycle, first]),
            f"{scope.step_pointer(names[first])}/dependsOn",
        )


def _check_retries(workflow: Workflow) -> Iterator[Finding]:
    defaults = workflow.spec.defaults
    if defaults and defaults.retry:
        yield from _check_retry(defaults.retry, "/spec/defaults/retry")
    for scope in iter_scopes(workflow):
        for index, step in enumerate(scope.steps):
            if isinstance(step, TaskStep) and step.retry:
                yield from _check_retry(step.retry, f"{scope.step_pointer(index)}/retry")


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


def _check_input_schema(workflow: Workflow) -> Iterator[Finding]:
    spec_input = workflow.spec.input
    if spec_input is None or spec_input.schema_ is None:
        return
    problem = _schema_problem(json.dumps(spec_input.schema_, sort_keys=True))
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
