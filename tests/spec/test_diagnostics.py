"""What `cpl validate` prints for schema errors: the offending key's line and column, the code,
the message and the JSON pointer."""

from __future__ import annotations

import json

import pytest

from controlplane.cli import run
from tests.conftest import MakeRepo


def _validate(
    repo_files: dict[str, str], make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> tuple[list[str], list[dict[str, object]]]:
    """The diagnostic lines of `cpl validate`, and its JSON diagnostics, for one repo."""
    repo = make_repo(repo_files)
    assert run(["validate", "--repo", str(repo)]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if ": CPL-" in line]
    assert run(["validate", "--repo", str(repo), "--format", "json"]) == 1
    diagnostics: list[dict[str, object]] = json.loads(capsys.readouterr().out)["diagnostics"]
    return lines, diagnostics


STEP = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: orders, tenant: retail, version: 1.0.0, owner: team-orders}
spec:
  steps:
    - {name: a, type: task, activity: x.y, %s}
"""

# One schema error in a step of a DAG: (field text, column, code, message, pointer). The
# step is on line 6; the field under test starts at column 44.
FIELD_ERRORS = {
    "a condition that is no mapping": (
        "when: 5",
        44,
        "CPL-S004",
        "when: a condition is a mapping: {path: $.total, gt: 1000}, {all: [...]}, {any: [...]} "
        "or {not: {...}}",
        "/spec/steps/0/when",
    ),
    "an operand of the wrong type in a condition": (
        "when: {path: $.n, gt: many}",
        62,
        "CPL-S004",
        "gt: expected a number, found 'many'",
        "/spec/steps/0/when/gt",
    ),
    "a condition without an operator, nested": (
        "when: {all: [{path: $.n}]}",
        57,
        "CPL-S004",
        "all[0]: a condition takes exactly one operator of eq ne gt ge lt le in matches exists "
        "(found none)",
        "/spec/steps/0/when/all/0",
    ),
    "an invalid enum value": (
        "retry: {jitter: ful}",
        52,
        "CPL-S004",
        "jitter: 'ful' is not one of none, full; did you mean 'full'?",
        "/spec/steps/0/retry/jitter",
    ),
    "a value below its minimum": (
        "retry: {maxAttempts: 0}",
        52,
        "CPL-S004",
        "maxAttempts: must be at least 1, not 0",
        "/spec/steps/0/retry/maxAttempts",
    ),
    "a mapping where a list belongs": (
        "dependsOn: {a: 1}",
        44,
        "CPL-S004",
        "dependsOn: expected a list, found a mapping",
        "/spec/steps/0/dependsOn",
    ),
    "an empty string": (
        "idempotencyKey: $.id, compensation: ''",
        66,
        "CPL-S004",
        "compensation: '' does not match the pattern ^[a-z][a-z0-9-]{0,62}$",
        "/spec/steps/0/compensation",
    ),
    "an unknown key named like a union tag": (
        "task: {activity: 5}",
        44,
        "CPL-S002",
        "unknown key 'task'",
        "/spec/steps/0/task",
    ),
}


@pytest.mark.parametrize("case", list(FIELD_ERRORS), ids=list(FIELD_ERRORS))
def test_each_kind_of_schema_error_points_at_its_key(
    case: str, make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text, column, code, message, pointer = FIELD_ERRORS[case]
    lines, diagnostics = _validate({"workflows/retail/orders.yaml": STEP % text}, make_repo, capsys)
    assert lines == [f"workflows/retail/orders.yaml:6:{column}: {code} {message}"]
    assert [d["path"] for d in diagnostics] == [pointer]


def test_a_step_that_is_no_mapping_and_a_missing_type(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = STEP.replace("- {name: a, type: task, activity: x.y, %s}", "- 5\n    - {name: b}")
    lines, diagnostics = _validate({"workflows/retail/orders.yaml": text}, make_repo, capsys)
    assert lines == [
        "workflows/retail/orders.yaml:6:7: CPL-S004 steps[0]: expected a mapping, found 5",
        "workflows/retail/orders.yaml:7:7: CPL-S003 missing required field 'type'",
    ]
    assert [d["path"] for d in diagnostics] == ["/spec/steps/0", "/spec/steps/1"]
