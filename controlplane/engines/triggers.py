"""Engine-neutral meaning of `spec.triggers` (docs/triggers.md): whether a CloudEvent matches
a trigger, and the run input it maps to.

An event is the structured form of a CloudEvent as a mapping: its attributes at the top
(`id`, `source`, `type`, `subject`, extensions such as `channel`) and its payload under
`data`. Engines that match events themselves (EventBridge, Argo Events) render the same
semantics into their own pattern languages; `cpl serve events` uses these functions directly.
"""

from __future__ import annotations

from typing import Any

from controlplane.spec.model import PrefixMatch, Trigger
from controlplane.spec.types import parse_path

_MISSING = object()


def event_value(event: dict[str, Any], path: str) -> Any:
    """The value at a trigger path (`$.data.id`, `$.subject`, `channel`), or `_MISSING`."""
    parts = parse_path(path) if path.startswith("$") else (path,)
    node: Any = event
    for part in parts:
        if isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        else:
            return _MISSING
    return node


def matches(trigger: Trigger, event: dict[str, Any]) -> bool:
    """Whether `event` has the trigger's source and type and passes every filter."""
    if event.get("source") != trigger.source or event.get("type") != trigger.type:
        return False
    return all(
        _matches(matcher, event_value(event, key)) for key, matcher in trigger.filters.items()
    )


def _matches(matcher: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(matcher, PrefixMatch):
        return isinstance(value, str) and value.startswith(matcher.prefix)
    choices = matcher if isinstance(matcher, list) else [matcher]
    # `True == 1` in Python; an event's `1` must not match a filter's `true`.
    return any(type(value) is type(choice) and value == choice for choice in choices) or any(
        _number(value) and _number(choice) and value == choice for choice in choices
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_input(trigger: Trigger, event: dict[str, Any]) -> Any:
    """The run's input: the mapped fields (a path the event lacks maps to null), or the data."""
    if trigger.input is None:
        data = event.get("data")
        return data if data is not None else {}
    result: dict[str, Any] = {}
    for name, path in trigger.input.items():
        value = event_value(event, path.text)
        result[name] = None if value is _MISSING else value
    return result
