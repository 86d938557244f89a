"""Map JSON pointers and pydantic error locations back to YAML file positions.

Parsing uses PyYAML's C loader without marks (fast); positions are recovered by composing
the node tree only for a file that has something to report.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def escape(token: str | int) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(parts: typing.Iterable[str | int]) -> str:
    return "".join("/" + escape(p) for p in parts)


class Positions:
    """Line and column (1-based) of every node of one YAML text, by JSON pointer."""

    def __init__(self, text: str) -> None:
        self._marks: dict[str, tuple[int, int]] = {}
        self._duplicates: dict[str, tuple[int, int]] = {}
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._marks[""] = (root.start_mark.line + 1, root.start_mark.column + 1)
            self._walk(root, "")

    def _walk(self, node: yaml.Node, pointer: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{pointer}/{escape(key.value)}"
                if child in self._marks:
                    self._duplicates.setdefault(
                        str(key.value), (key.start_mark.line + 1, key.start_mark.column + 1)
                    )
                # A key points at the key itself: that is where users look for a field.
                self._marks[child] = (key.start_mark.line + 1, key.start_mark.column + 1)
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{pointer}/{index}"
                self._marks[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
                self._walk(item, child)

    def duplicate(self, key: str) -> tuple[int, int] | None:
        """Where a mapping repeats `key` (its second occurrence), if anywhere."""
        return self._duplicates.get(key)

    def find(self, pointer: str) -> tuple[int, int]:
        """Position of the node, or of its nearest ancestor present in the file."""
        while True:
            if pointer in self._marks:
                return self._marks[pointer]
            if not pointer:
                return (1, 1)
            pointer = pointer.rsplit("/", 1)[0]


def pointer_for_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str, list[str | int]]:
    """The JSON pointer of a pydantic error location, skipping union tags.

    Returns the pointer and the parts of `loc` that did not exist in the data (a missing
    field, or an unknown key's name, stays in the pointer only if present in the data).
    """
    parts: list[str | int] = []
    node = data
    rest: list[str | int] = []
    for part in loc:
        if isinstance(node, dict) and part in node:
            parts.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(part)
            node = node[part]
        else:
            rest.append(part)  # a union tag (e.g. 'task') or a key that is absent
    return pointer_of(parts), rest


def allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The document keys accepted at the object that holds the last element of `loc`."""
    current: Any = model
    for part in loc[:-1]:
        current = _descend(current, part)
        if current is None:
            return []
    target = _strip(current)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _descend(annotation: Any, part: str | int) -> Any:
    annotation = _strip(annotation)
    members = _union_members(annotation)
    if members:
        return _member_for_tag(members, part)  # the part is a union tag: it selects a member
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = get_origin(annotation)
    if origin in (list, tuple) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None


def _strip(annotation: Any) -> Any:
    """Remove Annotated wrappers and Optional."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [m for m in get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _union_members(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [_strip(m) for m in get_args(annotation) if m is not type(None)]
    return []


def _member_for_tag(members: list[Any], tag: str | int) -> Any:
    """The union member a pydantic location tag names: a step `type` or a condition key."""
    for member in members:
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        type_field = member.model_fields.get("type")
        if type_field is not None and tag in get_args(type_field.annotation):
            return member
        aliases = {f.alias or n for n, f in member.model_fields.items()}
        if tag in aliases and (tag != "path" or "path" in member.model_fields):
            return member
    return None
