"""The run's data document: paths, parameters and conditions (docs/runtime.md, "Data").

Pure functions over plain JSON values, used inside the workflow sandbox: standard library
only, no side effects. Failures raise `DataError`, which the interpreter turns into the
catchable error `DataPathError`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

_PATH_RE = re.compile(r"^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\]))*$")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "in", "matches", "exists")
_MISSING = object()


class DataError(Exception):
    """A path that does not parse, or does not fit the document."""


def is_path(value: Any) -> bool:
    """Whether a parameter value is a data path (a string such as `$` or `$.a[0].b`)."""
    return isinstance(value, str) and bool(_PATH_RE.match(value))


def parse_path(path: str) -> tuple[str | int, ...]:
    """The keys and indexes of `path` (`$.a[0].b` → ("a", 0, "b"))."""
    if not is_path(path):
        raise DataError(f"{path!r} is not a data path (use $, $.a.b or $.a[0].b)")
    return tuple(key if key else int(index) for key, index in _PATH_PART.findall(path))


def _lookup(document: Any, path: str) -> Any:
    value = document
    for part in parse_path(path):
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return _MISSING
            value = value[part]
        else:
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
    return value


def get_path(document: Any, path: str) -> Any:
    """The value at `path`; DataError when it is absent."""
    value = _lookup(document, path)
    if value is _MISSING:
        raise DataError(f"path {path} is not in the data document")
    return value


def set_path(document: Any, path: str, value: Any) -> Any:
    """A copy of `document` with `value` at `path` (`$` replaces the whole document).

    Missing objects along the path are created; list indexes must exist.
    """
    parts = parse_path(path)
    if not parts:
        return value
    root = copy.deepcopy(document)
    if root is None:
        root = {}
    node = root
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise DataError(f"cannot write {path}: no list item [{part}]")
        elif not isinstance(node, dict):
            raise DataError(f"cannot write {path}: {part!r} is not inside an object")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
    return root


def resolve(template: Any, document: Any) -> Any:
    """`template` with every path string replaced by its value (recursively)."""
    if is_path(template):
        return copy.deepcopy(get_path(document, template))
    if isinstance(template, Mapping):
        return {key: resolve(value, document) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(value, document) for value in template]
    return template


def task_input(step: Mapping[str, Any], document: Any) -> Any:
    """A task's input: its resolved `parameters`, else the whole document."""
    if "parameters" in step:
        return resolve(step["parameters"], document)
    return copy.deepcopy(document)


def chunks(items: list[Any], size: int | None) -> list[Any]:
    """Map iterations: one per item, or lists of `size` items when batching."""
    if not size:
        return list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


def evaluate(condition: Mapping[str, Any], document: Any) -> bool:
    """Whether a structured condition holds for the document.

    `{path, <op>: operand}` with one of `eq ne gt ge lt le in matches exists`, combined with
    `all`, `any`, `not`. A missing path makes every operator false except `exists: false`;
    comparing values of different kinds is false; `matches` is a regular-expression search.
    """
    if "all" in condition:
        return all(evaluate(item, document) for item in condition["all"])
    if "any" in condition:
        return any(evaluate(item, document) for item in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], document)
    operators = [name for name in _OPERATORS if name in condition]
    if "path" not in condition or len(operators) != 1:
        raise DataError(f"condition {dict(condition)!r} needs a path and exactly one operator")
    operator = operators[0]
    operand = condition[operator]
    value = _lookup(document, condition["path"])
    if operator == "exists":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING:
        return False
    return _compare(operator, value, operand)


def _compare(operator: str, value: Any, operand: Any) -> bool:
    if operator == "eq":
        return bool(value == operand and _same_kind(value, operand))
    if operator == "ne":
        return not (value == operand and _same_kind(value, operand))
    if operator == "in":
        return isinstance(operand, list) and any(
            value == item and _same_kind(value, item) for item in operand
        )
    if operator == "matches":
        return isinstance(value, str) and re.search(str(operand), value) is not None
    if not _same_kind(value, operand) or isinstance(value, bool | dict | list | None):
        return False
    try:
        if operator == "gt":
            return bool(value > operand)
        if operator == "ge":
            return bool(value >= operand)
        if operator == "lt":
            return bool(value < operand)
        return bool(value <= operand)
    except TypeError:
        return False


def _same_kind(left: Any, right: Any) -> bool:
    """JSON kinds: numbers compare with numbers (not booleans), strings with strings..."""

    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int | float):
            return "number"
        return type(value).__name__

    return kind(left) == kind(right)
