"""The state machine refuses an input its workflow's `input.schema` refuses, where ASL can tell.

`cpl run` checks the whole schema before starting (`spec/run_input.py`); an execution started
by other means (the console, a schedule, another service) is checked by the state machine
itself: a Choice state before the first step fails the run with `InputInvalid` when a required
property is missing or a property has the wrong scalar type (string, number, integer as
number, boolean, null), recursively through nested object properties. ASL has no test for
objects or arrays, patterns, formats or ranges, so those parts of the schema are checked by
`cpl run` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

State = dict[str, Any]

INPUT_INVALID = "InputInvalid"
MAX_CHECKS = 100
"""Checks rendered at most (a state's size is bounded too)."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KINDS = {"string": "IsString", "number": "IsNumeric", "integer": "IsNumeric"}
_KINDS.update({"boolean": "IsBoolean", "null": "IsNull"})


def _checks(schema: Any, path: str, pointer: str) -> list[tuple[str, str, State]]:
    """(pointer, problem, rule that holds when valid) for the parts ASL can check."""
    if not isinstance(schema, dict):
        return []
    checks: list[tuple[str, str, State]] = []
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and _NAME.match(name):
            rule = {"Variable": f"{path}.{name}", "IsPresent": True}
            checks.append((f"{pointer}/{name}", "is required", rule))
    for name, sub in properties.items():
        if not (isinstance(name, str) and _NAME.match(name) and isinstance(sub, dict)):
            continue
        variable, where = f"{path}.{name}", f"{pointer}/{name}"
        absent: State = {"Variable": variable, "IsPresent": False}
        kinds = sub.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
        tests = [{"Variable": variable, _KINDS[k]: True} for k in kinds if k in _KINDS]
        if tests and len(tests) == len(kinds):
            kind = tests[0] if len(tests) == 1 else {"Or": tests}
            checks.append((where, f"must be {' or '.join(kinds)}", {"Or": [absent, kind]}))
        for inner, problem, rule in _checks(sub, variable, where):
            checks.append((inner, problem, {"Or": [absent, rule]}))
    return checks


def guard(
    scope: dict[str, Any], schema: Any, invent: Callable[[str], str]
) -> tuple[dict[str, Any], bool]:
    """The top scope ({"StartAt", "States"}) with the input check in front of its first
    state, and whether anything could be checked."""
    checks = _checks(schema, "$", "")[:MAX_CHECKS]
    if not checks:
        return scope, False
    check = invent("check-input")
    states: dict[str, State] = {}
    choices = []
    for index, (pointer, problem, rule) in enumerate(checks):
        refused = invent(f"input-invalid-{index + 1}")
        states[refused] = {
            "Type": "Fail",
            "Error": INPUT_INVALID,
            "Cause": f"the run input does not match input.schema: {pointer}: {problem}",
        }
        choices.append({"Not": rule, "Next": refused})
    states[check] = {"Type": "Choice", "Choices": choices, "Default": scope["StartAt"]}
    return {"StartAt": check, "States": {**states, **scope["States"]}}, True
