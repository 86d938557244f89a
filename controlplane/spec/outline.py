"""The step graph of a workflow as the semantic checks see it, also when it is half valid.

The checks of `check.py` read an outline, never the raw document: for a valid workflow the
outline comes from the model (`outline_of`); for a document that failed schema validation it
comes from the data (`outline_of_data`), where every field the step graph uses is validated
on its own and one that does not validate stays unknown. A check runs only on facts that are
known, so one run reports the semantic problems next to the schema errors, but never one that
a schema error already reported causes (a reference to a step whose name is invalid, a step
"without next" whose `next` is misspelled).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError

from controlplane.spec.model import (
    ApprovalStep,
    Branch,
    Catch,
    CatchingStep,
    ChoiceRule,
    ChoiceStep,
    FailStep,
    MapStep,
    ParallelStep,
    Retry,
    Step,
    StepBase,
    SucceedStep,
    TaskStep,
    WaitStep,
    Workflow,
    WorkflowBody,
)
from controlplane.spec.types import NAME_PATTERN

Form = Literal["state-machine", "dag"]

STEP_CLASSES: dict[str, type[BaseModel]] = {
    "task": TaskStep,
    "choice": ChoiceStep,
    "parallel": ParallelStep,
    "map": MapStep,
    "wait": WaitStep,
    "approval": ApprovalStep,
    "succeed": SucceedStep,
    "fail": FailStep,
}
# Keys whose presence (a non-null value) some check looks at.
PRESENCE_KEYS = ("next", "end", "dependsOn", "when", "default", "duration", "until")


class StepOutline(NamedTuple):
    """What the checks need of one step. A value is None when absent or when it is invalid.

    A named tuple: one is built for every step of every workflow validated, and a frozen
    dataclass costs several times more to build.

    `exact`: the step has no unknown key, so an absent field is really absent (not misspelled).
    `valid`: the type is known, the step is exact, and every field of the step graph (name,
    next, end, dependsOn, transitions, compensation) is valid: the step's edges are all known.
    """

    pointer: str
    name: str | None
    type: str | None
    exact: bool
    valid: bool
    present: frozenset[str] = frozenset()
    next: str | None = None
    end: bool | None = None
    depends_on: tuple[str, ...] | None = None
    edges: tuple[tuple[str, str], ...] = ()  # (pointer suffix, target) of every transition
    compensation: str | None = None
    compensation_known: bool = True  # False when `compensation` is present but invalid
    retry: Retry | None = None


@dataclass(frozen=True)
class ScopeOutline:
    """One list of sibling steps: the workflow's, a parallel branch's or a map's.

    `form` is None when it cannot be told (no `start`, but an unknown key next to `steps`
    that may be a misspelled `start`); `start` is None in a state machine whose start is
    missing or invalid.
    """

    pointer: str
    form: Form | None
    start: str | None
    steps: tuple[StepOutline, ...]

    def step_pointer(self, index: int) -> str:
        return f"{self.pointer}/steps/{index}"


@dataclass(frozen=True)
class WorkflowOutline:
    """Every scope (depth first), every retry policy with its pointer, the input schema."""

    scopes: tuple[ScopeOutline, ...] = ()
    retries: tuple[tuple[str, Retry], ...] = ()
    input_schema: dict[str, Any] | None = None
    trigger_names: tuple[tuple[str, str], ...] = ()  # (pointer of the name, name)


@dataclass
class _Builder:
    scopes: list[ScopeOutline] = field(default_factory=list)
    retries: list[tuple[str, Retry]] = field(default_factory=list)


# --- from a valid model -------------------------------------------------------------------


def outline_of(workflow: Workflow) -> WorkflowOutline:
    """The outline of a valid workflow: every fact known."""
    builder = _Builder()
    spec = workflow.spec
    if spec.defaults is not None and spec.defaults.retry is not None:
        builder.retries.append(("/spec/defaults/retry", spec.defaults.retry))

    def scope(pointer: str, start: str | None, steps: list[Step]) -> None:
        form: Form = "dag" if start is None else "state-machine"
        outlines = tuple(
            _step_outline(f"{pointer}/steps/{index}", step) for index, step in enumerate(steps)
        )
        builder.scopes.append(ScopeOutline(pointer, form, start, outlines))
        for step, outline in zip(steps, outlines, strict=True):
            step_pointer = outline.pointer
            if outline.retry is not None:
                builder.retries.append((f"{step_pointer}/retry", outline.retry))
            if isinstance(step, ParallelStep):
                for b, branch in enumerate(step.branches):
                    scope(f"{step_pointer}/branches/{b}", branch.start, branch.steps)
            elif isinstance(step, MapStep):
                scope(step_pointer, step.start, step.steps)

    scope("/spec", spec.start, spec.steps)
    schema = spec.input.schema_ if spec.input is not None else None
    names = tuple((f"/spec/triggers/{i}/name", t.name) for i, t in enumerate(spec.triggers))
    return WorkflowOutline(tuple(builder.scopes), tuple(builder.retries), schema, names)


def _step_outline(pointer: str, step: Step) -> StepOutline:
    fields = step.__dict__  # the model's field values: cheaper than getattr for each
    present = frozenset(
        key for key, attribute in _presence_fields(type(step)) if fields[attribute] is not None
    )
    return StepOutline(
        pointer=pointer,
        name=step.name,
        type=step.type,
        exact=True,
        valid=True,
        present=present,
        next=step.next,
        end=step.end,
        depends_on=tuple(step.depends_on) if step.depends_on is not None else None,
        edges=tuple(transitions(step)),
        compensation=step.compensation if isinstance(step, TaskStep) else None,
        retry=step.retry if isinstance(step, TaskStep) else None,
    )


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
    if isinstance(step, CatchingStep):
        for c, catch in enumerate(step.catch):
            yield f"catch/{c}/next", catch.next


@cache
def _presence_fields(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(document key, attribute) of the PRESENCE_KEYS a step class has.

    Asking a pydantic model for an attribute it lacks is slow (an AttributeError inside
    `__getattr__`); this runs for every step of every valid workflow.
    """
    attributes = {info.alias or name: name for name, info in model.model_fields.items()}
    return tuple((key, attributes[key]) for key in PRESENCE_KEYS if key in attributes)


# --- from the data of a document that failed validation ------------------------------------


def outline_of_data(data: Any) -> WorkflowOutline:
    """The outline of a workflow document as written; what does not validate stays unknown."""
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        return WorkflowOutline()
    builder = _Builder()
    defaults = spec.get("defaults")
    if isinstance(defaults, dict):
        retry = _valid(Retry, defaults.get("retry"))
        if retry is not None:
            builder.retries.append(("/spec/defaults/retry", retry))
    if spec.get("start") is not None:
        form: Form | None = "state-machine"
    elif set(spec) <= _aliases(WorkflowBody):
        form = "dag"
    else:
        form = None  # an unknown key may be a misspelled `start`
    _scope_of_data(builder, "/spec", form, WorkflowBody, spec)
    spec_input = spec.get("input")
    schema = spec_input.get("schema") if isinstance(spec_input, dict) else None
    return WorkflowOutline(
        tuple(builder.scopes),
        tuple(builder.retries),
        schema if isinstance(schema, dict) else None,
        _trigger_names_of_data(spec.get("triggers")),
    )


def _trigger_names_of_data(triggers: Any) -> tuple[tuple[str, str], ...]:
    """The trigger names that validate, with their pointers."""
    if not isinstance(triggers, list):
        return ()
    return tuple(
        (f"/spec/triggers/{i}/name", trigger["name"])
        for i, trigger in enumerate(triggers)
        if isinstance(trigger, dict)
        and isinstance(trigger.get("name"), str)
        and re.match(NAME_PATTERN, trigger["name"])
    )


def _scope_of_data(
    builder: _Builder,
    pointer: str,
    form: Form | None,
    holder: type[BaseModel],
    data: dict[str, Any],
) -> None:
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        return  # `steps` is required and not empty: the schema error says so
    start = _field(holder, "start", data.get("start"))
    outlines = tuple(
        _step_of_data(f"{pointer}/steps/{index}", raw) for index, raw in enumerate(steps)
    )
    builder.scopes.append(
        ScopeOutline(pointer, form, start if start is not _INVALID else None, outlines)
    )
    for index, (raw, outline) in enumerate(zip(steps, outlines, strict=True)):
        step_pointer = f"{pointer}/steps/{index}"
        if outline.retry is not None:
            builder.retries.append((f"{step_pointer}/retry", outline.retry))
        if outline.type == "parallel" and isinstance(raw.get("branches"), list):
            for b, branch in enumerate(raw["branches"]):
                if isinstance(branch, dict):
                    branch_pointer = f"{step_pointer}/branches/{b}"
                    _scope_of_data(builder, branch_pointer, "state-machine", Branch, branch)
        elif outline.type == "map":
            _scope_of_data(builder, step_pointer, "state-machine", MapStep, raw)


def _step_of_data(pointer: str, raw: Any) -> StepOutline:
    if not isinstance(raw, dict):
        return StepOutline(pointer, name=None, type=None, exact=False, valid=False)
    step_type = raw.get("type") if isinstance(raw.get("type"), str) else None
    cls = STEP_CLASSES.get(step_type or "")
    # A step of unknown type is read as a StepBase: only the fields every step has.
    model = cls or StepBase
    exact = set(raw) <= (_aliases(cls) if cls else _ALL_STEP_KEYS)
    known = cls is not None and exact
    values: dict[str, Any] = {}
    for key in ("name", "next", "end", "dependsOn"):
        value = _field(model, key, raw.get(key))
        known = known and value is not _INVALID
        values[key] = None if value is _INVALID else value
    edges, edges_known = _edges_of_data(model, raw)
    compensation = _field(TaskStep, "compensation", raw.get("compensation"))
    if cls is not None and cls is not TaskStep and "compensation" in raw:
        compensation = None  # not a task's field: an unknown key, reported as such
    retry = _valid(Retry, raw.get("retry")) if cls is TaskStep else None
    depends_on = values["dependsOn"]
    return StepOutline(
        pointer=pointer,
        name=values["name"],
        type=step_type if cls is not None else None,
        exact=exact,
        valid=known and edges_known and compensation is not _INVALID,
        present=frozenset(key for key in PRESENCE_KEYS if raw.get(key) is not None),
        next=values["next"],
        end=values["end"],
        depends_on=tuple(depends_on) if depends_on is not None else None,
        edges=edges,
        compensation=None if compensation is _INVALID else compensation,
        compensation_known=compensation is not _INVALID,
        retry=retry,
    )


def _edges_of_data(
    model: type[BaseModel], raw: dict[str, Any]
) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The valid transitions of a step, in the order of `check.transitions`, and whether
    every transition the step declares is valid."""
    edges: list[tuple[str, str]] = []
    known = True

    def add(suffix: str, owner: type[BaseModel], key: str, value: Any) -> None:
        nonlocal known
        target = _field(owner, key, value)
        if target is _INVALID:
            known = False
        elif target is not None:
            edges.append((suffix, target))

    add("next", model, "next", raw.get("next"))
    fields = _aliases(model)
    if "rules" in fields:
        for index, rule in _items(raw, "rules", required=True):
            if rule is None:
                known = False
            else:
                add(f"rules/{index}/next", ChoiceRule, "next", rule.get("next"))
        add("default", model, "default", raw.get("default"))
    if "onTimeout" in fields:
        add("onTimeout", model, "onTimeout", raw.get("onTimeout"))
    if "catch" in fields:
        for index, catch in _items(raw, "catch", required=False):
            if catch is None:
                known = False
            else:
                add(f"catch/{index}/next", Catch, "next", catch.get("next"))
    return tuple(edges), known


def _items(raw: dict[str, Any], key: str, required: bool) -> Iterator[tuple[int, Any]]:
    """The mappings of list field `key`; (index, None) marks something unusable.

    An absent optional list is empty; null, a non-list or a missing required list is unusable.
    """
    if key not in raw and not required:
        return
    value = raw.get(key)
    if not isinstance(value, list) or (required and not value):
        yield 0, None
        return
    for index, item in enumerate(value):
        yield index, item if isinstance(item, dict) else None


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_INVALID: Any = _Sentinel("invalid")


def _field(model: type[BaseModel], key: str, value: Any) -> Any:
    """`value` validated as field `key` of `model`, or _INVALID.

    An absent key is passed as None: valid for an optional field, invalid for a required one.
    """
    try:
        return _adapter(model, key).validate_python(value)
    except ValidationError:
        return _INVALID


def valid_field(model: type[BaseModel], key: str, value: Any) -> Any:
    """`value` validated as field `key` of `model`, or None when it does not validate."""
    checked = _field(model, key, value)
    return None if checked is _INVALID else checked


def _valid(model: type[BaseModel], value: Any) -> Any:
    """`value` validated as a `model`, or None when absent or invalid."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


@cache
def _adapter(model: type[BaseModel], key: str) -> TypeAdapter[Any]:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            # The field's own constraints (a `Field(pattern=...)`) live in its metadata.
            annotation: Any = info.annotation
            if info.metadata:
                annotation = Annotated[(annotation, *info.metadata)]
            return TypeAdapter(annotation)
    raise KeyError(f"{model.__name__} has no field {key}")


@cache
def _aliases(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(info.alias or name for name, info in model.model_fields.items())


_ALL_STEP_KEYS = frozenset().union(*(_aliases(cls) for cls in STEP_CLASSES.values()))
