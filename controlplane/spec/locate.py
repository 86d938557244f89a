"""Map JSON pointers and pydantic error locations back to YAML file positions.

Parsing uses PyYAML's C loader without marks (fast); positions are recovered by composing
the node tree only for a file that has something to report.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _MarksLoader(_Loader):  # type: ignore[valid-type,misc]
    """Composes nodes for their marks only: tags are never read, so every node gets its kind's
    default tag instead of the resolver's regex matching (most of a compose's time)."""

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        if kind is yaml.ScalarNode:
            return "tag:yaml.org,2002:str"
        return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"


def escape(token: str | int) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(parts: typing.Iterable[str | int]) -> str:
    return "".join("/" + escape(p) for p in parts)


class Positions:
    """Line and column (1-based) of the nodes of one YAML text, by JSON pointer.

    `find` descends the composed tree along one pointer; the table of every node (for
    `duplicate`) is built only when asked for: a check locates a few findings per file.
    """

    def __init__(self, text: str) -> None:
        self._marks: dict[str, tuple[int, int]] | None = None
        self._duplicates: dict[str, tuple[int, int]] = {}
        try:
            self._root: yaml.Node | None = yaml.compose(text, Loader=_MarksLoader)
        except yaml.YAMLError:
            self._root = None

    def _table(self) -> dict[str, tuple[int, int]]:
        if self._marks is None:
            self._marks = {}
            if self._root is not None:
                self._marks[""] = _position(self._root)
                self._walk(self._root, "")
        return self._marks

    def _walk(self, node: yaml.Node, pointer: str) -> None:
        assert self._marks is not None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{pointer}/{escape(key.value)}"
                if child in self._marks:
                    self._duplicates.setdefault(str(key.value), _position(key))
                # A key points at the key itself: that is where users look for a field.
                self._marks[child] = _position(key)
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{pointer}/{index}"
                self._marks[child] = _position(item)
                self._walk(item, child)

    def duplicate(self, key: str) -> tuple[int, int] | None:
        """Where a mapping repeats `key` (its second occurrence), if anywhere."""
        self._table()
        return self._duplicates.get(key)

    def find(self, pointer: str) -> tuple[int, int]:
        """Position of the node, or of its nearest ancestor present in the file."""
        if self._marks is not None or self._root is None:
            return self._find_in_table(pointer)
        node, position = self._root, _position(self._root)
        for token in pointer.split("/")[1:] if pointer else []:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:  # the last of repeated keys, as in the table
                    if escape(key.value) == token:
                        child, position = value, _position(key)
            elif isinstance(node, yaml.SequenceNode) and token.isdigit():
                index = int(token)
                if str(index) == token and index < len(node.value):
                    child = node.value[index]
                    position = _position(child)
            if child is None:
                break
            node = child
        return position

    def _find_in_table(self, pointer: str) -> tuple[int, int]:
        marks = self._table()
        while True:
            if pointer in marks:
                return marks[pointer]
            if not pointer:
                return (1, 1)
            pointer = pointer.rsplit("/", 1)[0]


def _position(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(frozen=True)
class ErrorSite:
    """Where a pydantic error location lies in the document.

    `parts` lead to the deepest node of the location present in the document; `absent` is the
    rest of it (the name of a missing key). `holder` is the model (or other annotation) of
    the object holding the last part, and `union` the plain union (such as `int | float`)
    the location went through, whose member names are not document keys.
    """

    parts: tuple[str | int, ...]
    absent: tuple[str | int, ...]
    holder: Any
    union: Any

    @property
    def pointer(self) -> str:
        return pointer_of(self.parts)

    @property
    def key(self) -> str:
        """The key the location ends at (`steps[0]` for a list item), for messages."""
        if not self.parts:
            return "document"
        last = self.parts[-1]
        if isinstance(last, int) and len(self.parts) > 1:
            return f"{self.parts[-2]}[{last}]"
        return str(last)


def error_site(model: type[BaseModel], data: Any, loc: tuple[str | int, ...]) -> ErrorSite:
    """The document position of a pydantic error location, following the model's types.

    Pydantic puts union tags into locations (a step's `type`, a condition's operator, a
    member type name such as `float`); walking the annotations alongside the data tells a
    tag from a key, even when a key of the same name exists in the data.
    """
    annotation: Any = model
    holder: Any = model
    union: Any = None
    node = data
    parts: list[str | int] = []
    for index, part in enumerate(loc):
        member, tagged, plain = _select_member(annotation, part)
        if tagged:
            union = annotation if plain else union
            annotation = member
            continue
        holder = annotation
        child = _child(node, part)
        if child is _ABSENT:
            return ErrorSite(tuple(parts), tuple(loc[index:]), holder, union)
        parts.append(part)
        node = child
        annotation = _descend(annotation, part)
    return ErrorSite(tuple(parts), (), holder, union)


_ABSENT = object()


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _select_member(annotation: Any, part: str | int) -> tuple[Any, bool, bool]:
    """(member, whether `part` is a union tag, whether the union is a plain one)."""
    members = _raw_union_members(_strip(annotation))
    if not members:
        return annotation, False, False
    for member in members:
        tags = [m.tag for m in get_args(member)[1:] if isinstance(m, Tag)]
        if part in tags:
            return _strip(member), True, False
    for member in map(_strip, members):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for field in member.model_fields.values():
                if get_origin(field.annotation) is Literal and part in get_args(field.annotation):
                    return member, True, False
    for member in map(_strip, members):
        if getattr(member, "__name__", None) == part:
            return member, True, True
    return None, True, True  # a tag this walker cannot name: the rest is read from the data


def allowed_keys(holder: Any) -> list[str]:
    """The document keys a model accepts (none when `holder` is no model)."""
    target = _strip(holder)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def expected_of(annotation: Any) -> str:
    """What a scalar annotation or a union of scalars accepts, in words."""
    words = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    members = [_strip(m) for m in (_raw_union_members(_strip(annotation)) or [annotation])]
    found = [words[m] for m in members if m in words]
    if "a number" in found and "a whole number" in found:
        found.remove("a whole number")  # every whole number is a number
    return " or ".join(dict.fromkeys(found)) or "a valid value"


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _descend(annotation: Any, part: str | int) -> Any:
    """The annotation of child `part` of a value of type `annotation` (None when unknown)."""
    annotation = _strip(annotation)
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


def _raw_union_members(annotation: Any) -> list[Any]:
    """The members of a union (not None), keeping their Annotated tags; [] for no union."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for m in get_args(annotation) if m is not type(None)]
    return []
