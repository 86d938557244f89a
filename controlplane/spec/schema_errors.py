"""Pydantic validation errors as diagnostics: the offending key and what is wrong with it.

Every error points at the key it is about (`/spec/steps/0/type` for an unknown step type,
`/spec/alerts/1/above` for a threshold of the wrong type), or, for a missing key, at the
mapping that lacks it, naming the key. Messages speak YAML (a mapping, a list, a whole
number), never Python class names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from controlplane.spec.locate import ErrorSite, allowed_keys, did_you_mean, error_site, expected_of
from controlplane.spec.types import shown

_QUOTED = re.compile(r"'([^']*)'")

# What a pydantic type error expected, in the words of a YAML author.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "mapping_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD)",
}
_BOUNDS = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
}


@dataclass(frozen=True)
class SchemaProblem:
    """One schema error: a stable code, a message and the JSON pointer it is about."""

    code: str
    message: str
    pointer: str


def schema_problems(
    model: type[BaseModel], data: Any, error: ValidationError
) -> Iterator[SchemaProblem]:
    """Every problem of one failed validation, once each, in pydantic's order."""
    seen: set[SchemaProblem] = set()
    for details in error.errors():
        site = error_site(model, data, tuple(details["loc"]))
        problem = _describe(details, site)
        if problem not in seen:  # the members of `int | float` fail alike: say it once
            seen.add(problem)
            yield problem


def _describe(error: Any, site: ErrorSite) -> SchemaProblem:
    kind: str = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    pointer = site.pointer
    label = site.key
    if kind.startswith("CPL-"):  # the models' own checks (durations, cron, semver, ...)
        return SchemaProblem(kind, f"{label}: {error['msg']}", pointer)
    if kind == "extra_forbidden":
        key = label
        hint = did_you_mean(key, allowed_keys(site.holder))
        return SchemaProblem("CPL-S002", f"unknown key '{key}'{hint}", pointer)
    if kind == "missing":
        key = str(site.absent[-1]) if site.absent else label
        return SchemaProblem("CPL-S003", f"missing required field '{key}'", pointer)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _union_tag(kind, ctx, site)
    if kind == "literal_error":
        allowed = _QUOTED.findall(str(ctx.get("expected", "")))
        hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
        message = f"{label}: {shown(value)} is not one of {', '.join(allowed)}{hint}"
        return SchemaProblem("CPL-S004", message, pointer)
    if site.union is not None and kind in _EXPECTED:
        expected = expected_of(site.union)
        return SchemaProblem(
            "CPL-S004", f"{label}: expected {expected}, found {shown(value)}", pointer
        )
    if kind in _EXPECTED:
        message = f"{label}: expected {_EXPECTED[kind]}, found {shown(value)}"
        return SchemaProblem("CPL-S004", message, pointer)
    return SchemaProblem("CPL-S004", f"{label}: {_constraint(kind, ctx, value, error)}", pointer)


def _union_tag(kind: str, ctx: dict[str, Any], site: ErrorSite) -> SchemaProblem:
    """An unknown or missing discriminator (a step's `type`, an alert's `metric`)."""
    key = str(ctx.get("discriminator", "")).strip("'")
    pointer = site.pointer
    if kind == "union_tag_not_found":
        return SchemaProblem("CPL-S003", f"missing required field '{key}'", pointer)
    tag = str(ctx.get("tag", ""))
    expected = _QUOTED.findall(str(ctx.get("expected_tags", "")))
    what = "step type" if key == "type" else key
    message = (
        f"unknown {what} '{tag}'"
        + did_you_mean(tag, expected)
        + f" (one of: {', '.join(expected)})"
    )
    return SchemaProblem("CPL-S004", message, f"{pointer}/{key}" if key else pointer)


def _constraint(kind: str, ctx: dict[str, Any], value: Any, error: Any) -> str:
    """A broken constraint (pattern, length, bound) in words, with the value found."""
    if kind == "string_pattern_mismatch":
        return f"{shown(value)} does not match the pattern {ctx.get('pattern')}"
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        if kind == "string_too_short" and least == 1:
            return "must not be empty"
        unit = "character" if kind == "string_too_short" else "item"
        return f"needs at least {least} {unit}{'s' if least != 1 else ''}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind].format(**ctx)}, not {shown(value)}"
    return str(error["msg"])
