"""A run's input checked against its workflow's `input.schema` before any run starts.

Engine-neutral: `cpl run` calls `check_run_input` for every engine, so an input the schema
refuses never reaches an engine. Each problem is reported with the JSON pointer of the value
concerned and the schema keyword it fails, never the value itself (inputs may hold personal
data).
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.errors import ConfigError
from controlplane.spec.model import Workflow

MAX_PROBLEMS = 20
"""Problems reported at most (the rest are counted)."""


def _pointer(parts: list[Any]) -> str:
    escaped = [str(part).replace("~", "~0").replace("/", "~1") for part in parts]
    return "/" + "/".join(escaped) if escaped else "/"


def _describe(error: Any) -> tuple[str, str]:
    """(pointer, text) of one jsonschema error, naming the keyword and the schema's value."""
    parts = list(error.absolute_path)
    keyword = str(error.validator)
    if keyword == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        name = missing[0] if missing else ""
        return _pointer([*parts, name]), "is required"
    if keyword == "additionalProperties":
        return _pointer(parts), "has properties the schema does not allow"
    expected = json.dumps(error.validator_value, ensure_ascii=False)
    if len(expected) > 80:
        expected = expected[:77] + "..."
    return _pointer(parts), f"does not satisfy {keyword}: {expected}"


def input_problems(workflow: Workflow, run_input: Any) -> list[str]:
    """Each way `run_input` fails the workflow's `input.schema` ("<pointer>: <problem>"),
    sorted by pointer; empty when it passes or the workflow has no schema."""
    body = workflow.spec.input
    schema = body.schema_ if body is not None else None
    if schema is None:
        return []
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    problems = sorted({"{}: {}".format(*_describe(e)) for e in validator.iter_errors(run_input)})
    if len(problems) > MAX_PROBLEMS:
        hidden = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"... and {hidden} more"]
    return problems


def check_run_input(workflow: Workflow, run_input: Any) -> None:
    """ConfigError listing every problem when `run_input` fails the workflow's input schema."""
    problems = input_problems(workflow, run_input)
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise ConfigError(
            f"--input does not match the input.schema of {workflow.key}; no run started:\n{lines}"
        )
