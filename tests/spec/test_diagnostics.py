"""What `cpl validate` prints for schema errors: the offending key's line and column, the code,
the message and the JSON pointer, for workflows, environments and waivers; and one run lists
the schema errors and the semantic problems of a file together."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from controlplane.cli import run
from tests.conftest import MakeRepo

WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: orders
  tenant: retail
  version: 1.0.0
  owner: team-orders
  classification: secret
spec:
  timeout: 2 hours
  start: reserve
  steps:
    - name: reserve
      type: taks
      activity: inventory.reserve
      next: charge
    - name: charge
      type: task
      activty: payments.charge
      retry: {maxAttempts: three}
      end: true
      catch: [{errors: ["*"], next: refund}]
    - name: notify
      type: succeed
      next: charge
    - name: ship
      type: wait
      when: {path: $.paid, eq: true}
      duration: 1h
      end: maybe
"""

# Each line: the key it is about, where that key is, and what is wrong. Lines 14 (an unknown
# step type), 19 (a misspelled key) and 20 (a wrong type) are schema errors; 22 (a dangling
# reference), 23 (a succeed step with `next`) and 28 (`when` in a state machine) are semantic
# problems reported in the same run.
WORKFLOW_OUTPUT = [
    "workflows/retail/orders.yaml:8:3: CPL-S004 classification: 'secret' is not one of "
    "public, internal, confidential, pii, phi, pci",
    "workflows/retail/orders.yaml:10:3: CPL-S022 timeout: '2 hours' is not a duration "
    "(use <n><unit>, units ms s m h d, e.g. 90s)",
    "workflows/retail/orders.yaml:14:7: CPL-S004 unknown step type 'taks'; did you mean 'task'? "
    "(one of: task, choice, parallel, map, wait, approval, succeed, fail)",
    "workflows/retail/orders.yaml:17:7: CPL-S003 missing required field 'activity'",
    "workflows/retail/orders.yaml:19:7: CPL-S002 unknown key 'activty'; did you mean 'activity'?",
    "workflows/retail/orders.yaml:20:15: CPL-S004 maxAttempts: expected a whole number, "
    "found 'three'",
    "workflows/retail/orders.yaml:22:31: CPL-S010 next 'refund' names no step in this scope",
    "workflows/retail/orders.yaml:23:7: CPL-S028 a succeed step takes neither `next` nor `end` "
    "('notify')",
    "workflows/retail/orders.yaml:28:7: CPL-S025 step 'ship' uses `when` (DAG form) in a state "
    "machine with `start`",
    "workflows/retail/orders.yaml:30:7: CPL-S004 end: expected true or false, found 'maybe'",
]
WORKFLOW_POINTERS = [
    "/metadata/classification",
    "/spec/timeout",
    "/spec/steps/0/type",
    "/spec/steps/1",
    "/spec/steps/1/activty",
    "/spec/steps/1/retry/maxAttempts",
    "/spec/steps/1/catch/0/next",
    "/spec/steps/2",
    "/spec/steps/3/when",
    "/spec/steps/3/end",
]


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


def test_one_run_reports_schema_and_semantic_problems_at_their_keys(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, diagnostics = _validate({"workflows/retail/orders.yaml": WORKFLOW}, make_repo, capsys)
    assert lines == WORKFLOW_OUTPUT
    assert [d["path"] for d in diagnostics] == WORKFLOW_POINTERS


ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: staging}
spec:
  tier: prodution
  targets:
    - name: aws
      engine: stepfunctions
      regoin: eu-west-1
    - name: aws
      engine: temporal
      address: 127.0.0.1:7233
      namespace: default
      taskQueue: cpl
      regulated: maybe
"""


def test_environment_errors_point_at_their_keys(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, diagnostics = _validate({"environments/staging.yaml": ENVIRONMENT}, make_repo, capsys)
    assert lines == [
        "environments/staging.yaml:5:3: CPL-S004 tier: 'prodution' is not one of development, "
        "staging, production; did you mean 'production'?",
        "environments/staging.yaml:9:7: CPL-S002 unknown key 'regoin'; did you mean 'region'?",
        # a duplicate target name is found although the document has schema errors
        "environments/staging.yaml:10:7: CPL-S011 duplicate target name 'aws'",
        "environments/staging.yaml:15:7: CPL-S004 regulated: expected true or false, found 'maybe'",
    ]
    assert [d["path"] for d in diagnostics] == [
        "/spec/tier",
        "/spec/targets/0/regoin",
        "/spec/targets/1/name",
        "/spec/targets/1/regulated",
    ]


WAIVER = """
apiVersion: cpl.dev/v1
kind: Waiver
metadata: {name: late-jitter}
spec:
  rule: CPL-P2
  workflows: [acme/sample]
  environments: [prod]
  reason: upstream rejects concurrent retries
  expires: 2099-01-01
"""


def test_waiver_errors_point_at_their_keys(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, diagnostics = _validate({"waivers/late-jitter.yaml": WAIVER}, make_repo, capsys)
    latest = dt.date.today() + dt.timedelta(days=180)
    assert lines == [
        # a missing key: the mapping that lacks it, naming the key
        "waivers/late-jitter.yaml:4:1: CPL-S003 missing required field 'owner'",
        "waivers/late-jitter.yaml:5:3: CPL-S004 rule: 'CPL-P2' does not match the pattern "
        r"^CPL-[A-Z]\d{3}$",
        "waivers/late-jitter.yaml:9:3: CPL-S030 waiver expires 2099-01-01, more than 180 days "
        f"ahead (latest allowed: {latest})",
    ]
    assert [d["path"] for d in diagnostics] == ["/spec", "/spec/rule", "/spec/expires"]


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
