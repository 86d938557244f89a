"""Every check of docs/validation.md: a failing document, asserting the code, line and pointer."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from controlplane.spec.load import Source, load_sources

HEADER = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: sample
  tenant: acme
  version: 1.0.0
  owner: team-a
spec:
"""  # the spec body starts on line 9


def _diagnostics(body: str, file: str = "workflows/acme/sample.yaml") -> list[tuple[str, int, str]]:
    text = HEADER + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    result = load_sources([Source(file, text)], today=dt.date(2026, 11, 25))
    return [(d.code, d.line, d.path) for d in result.diagnostics]


VALID = """
start: a
steps:
  - {name: a, type: task, activity: x.y, end: true}
"""


def test_a_valid_workflow_has_no_diagnostics() -> None:
    assert _diagnostics(VALID) == []


CASES = {
    "unknown key with a hint": (
        """
        start: a
        steps:
          - name: a
            type: task
            activty: x.y
            end: true
        """,
        ("CPL-S002", 13, "/spec/steps/0/activty"),
    ),
    "missing required field": (
        """
        start: a
        steps:
          - {name: a, type: task, end: true}
        """,
        ("CPL-S003", 11, "/spec/steps/0"),
    ),
    "unknown step type": (
        """
        start: a
        steps:
          - {name: a, type: tsak, end: true}
        """,
        ("CPL-S004", 11, "/spec/steps/0/type"),
    ),
    "dangling next": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: bb}
          - {name: b, type: succeed}
        """,
        ("CPL-S010", 11, "/spec/steps/0/next"),
    ),
    "dangling choice default": (
        """
        start: a
        steps:
          - name: a
            type: choice
            rules: [{when: {path: $.n, gt: 1}, next: b}]
            default: nope
          - {name: b, type: succeed}
        """,
        ("CPL-S010", 14, "/spec/steps/0/default"),
    ),
    "dangling onTimeout": (
        """
        start: a
        steps:
          - {name: a, type: approval, signal: ok, timeout: 1h, onTimeout: late, end: true}
        """,
        ("CPL-S010", 11, "/spec/steps/0/onTimeout"),
    ),
    "dangling catch next": (
        """
        start: a
        steps:
          - name: a
            type: task
            activity: x.y
            end: true
            catch: [{errors: ["*"], next: handler}]
        """,
        ("CPL-S010", 15, "/spec/steps/0/catch/0/next"),
    ),
    "dangling compensation": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, compensation: undo}
        """,
        ("CPL-S010", 11, "/spec/steps/0/compensation"),
    ),
    "dangling dependsOn": (
        """
        steps:
          - {name: a, type: task, activity: x.y}
          - {name: b, type: task, activity: x.y, dependsOn: [a, c]}
        """,
        ("CPL-S010", 11, "/spec/steps/1/dependsOn/1"),
    ),
    "duplicate step name": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: b}
          - {name: b, type: task, activity: x.y, end: true}
          - {name: b, type: succeed}
        """,
        ("CPL-S011", 13, "/spec/steps/2/name"),
    ),
    "unreachable step": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
          - {name: orphan, type: task, activity: x.y, end: true}
        """,
        ("CPL-S012", 12, "/spec/steps/1"),
    ),
    "no terminal step": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: b}
          - {name: b, type: task, activity: x.y, next: a}
        """,
        ("CPL-S013", 9, "/spec/start"),
    ),
    "a loop that can never end": (
        """
        start: a
        steps:
          - name: a
            type: choice
            rules: [{when: {path: $.done, eq: true}, next: fin}]
            default: spin
          - {name: spin, type: wait, duration: 10s, next: spin2}
          - {name: spin2, type: task, activity: x.y, next: spin}
          - {name: fin, type: succeed}
        """,
        ("CPL-S013", 15, "/spec/steps/1"),
    ),
    "dag cycle": (
        """
        steps:
          - {name: a, type: task, activity: x.y, dependsOn: [c]}
          - {name: b, type: task, activity: x.y, dependsOn: [a]}
          - {name: c, type: task, activity: x.y, dependsOn: [b]}
        """,
        ("CPL-S014", 10, "/spec/steps/0/dependsOn"),
    ),
    "choice without default": (
        """
        start: a
        steps:
          - name: a
            type: choice
            rules: [{when: {path: $.n, gt: 1}, next: b}]
          - {name: b, type: succeed}
        """,
        ("CPL-S015", 11, "/spec/steps/0"),
    ),
    "maxInterval shorter than initialInterval": (
        """
        start: a
        steps:
          - name: a
            type: task
            activity: x.y
            end: true
            retry: {maxAttempts: 3, initialInterval: 10s, maxInterval: 2s}
        """,
        ("CPL-S016", 15, "/spec/steps/0/retry/maxInterval"),
    ),
    "compensation on the main path": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: b, compensation: b}
          - {name: b, type: task, activity: x.y, end: true}
        """,
        ("CPL-S017", 12, "/spec/steps/1"),
    ),
    "compensation that is not a task": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, compensation: b}
          - {name: b, type: succeed}
        """,
        ("CPL-S017", 11, "/spec/steps/0/compensation"),
    ),
    "invalid cron": (
        """
        schedule: {cron: "61 * * * *", timezone: UTC, overlap: skip}
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        ("CPL-S018", 9, "/spec/schedule/cron"),
    ),
    "invalid timezone": (
        """
        schedule:
          cron: "0 2 * * *"
          timezone: Europe/Atlantis
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        ("CPL-S019", 11, "/spec/schedule/timezone"),
    ),
    "invalid input JSON Schema": (
        """
        input:
          schema: {type: objekt}
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        ("CPL-S020", 10, "/spec/input/schema/type"),
    ),
    "duration that does not parse": (
        """
        timeout: 2 hours
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        ("CPL-S022", 9, "/spec/timeout"),
    ),
    "size that does not parse": (
        """
        input: {maxInlineBytes: 256KB}
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        ("CPL-S023", 9, "/spec/input/maxInlineBytes"),
    ),
    "wait with both duration and until": (
        """
        start: a
        steps:
          - {name: a, type: wait, duration: 5s, until: $.at, end: true}
        """,
        ("CPL-S024", 11, "/spec/steps/0"),
    ),
    "wait with neither duration nor until": (
        """
        start: a
        steps:
          - {name: a, type: wait, end: true}
        """,
        ("CPL-S024", 11, "/spec/steps/0"),
    ),
    "mixing state machine and DAG": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: b}
          - {name: b, type: task, activity: x.y, end: true, dependsOn: [a]}
        """,
        ("CPL-S025", 12, "/spec/steps/1/dependsOn"),
    ),
    "next in a DAG": (
        """
        steps:
          - {name: a, type: task, activity: x.y, next: b}
          - {name: b, type: task, activity: x.y, dependsOn: [a]}
        """,
        ("CPL-S025", 10, "/spec/steps/0/next"),
    ),
    "invalid data path": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, resultPath: "order.id"}
        """,
        ("CPL-S027", 11, "/spec/steps/0/resultPath"),
    ),
    "step with neither next nor end": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y}
        """,
        ("CPL-S028", 11, "/spec/steps/0"),
    ),
    "nested scope: dangling next inside a parallel branch": (
        """
        start: p
        steps:
          - name: p
            type: parallel
            end: true
            branches:
              - start: one
                steps:
                  - {name: one, type: task, activity: x.y, next: tow}
                  - {name: two, type: succeed}
        """,
        ("CPL-S010", 17, "/spec/steps/0/branches/0/steps/0/next"),
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_check_reports_code_line_and_pointer(case: str) -> None:
    body, expected = CASES[case]
    assert expected in _diagnostics(body)


def test_invalid_semver_points_at_the_version() -> None:
    text = (
        HEADER.replace("version: 1.0.0", "version: v1") + "  " + VALID.strip().replace("\n", "\n  ")
    )
    result = load_sources([Source("workflows/acme/sample.yaml", text)])
    assert [(d.code, d.line, d.path) for d in result.diagnostics] == [
        ("CPL-S021", 6, "/metadata/version")
    ]


def test_unknown_key_suggests_the_closest_field() -> None:
    body = """
    start: a
    steps:
      - {name: a, type: task, activity: x.y, end: true, retyr: {maxAttempts: 2}}
    """
    text = HEADER + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    result = load_sources([Source("w.yaml", text)], expected_kind="Workflow")
    assert "did you mean 'retry'?" in result.diagnostics[0].message


def test_dangling_reference_suggests_the_closest_step() -> None:
    body = """
    start: a
    steps:
      - {name: a, type: task, activity: x.y, next: charge-card}
      - {name: charge-cards, type: succeed}
    """
    text = HEADER + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    result = load_sources([Source("w.yaml", text)], expected_kind="Workflow")
    (dangling,) = [d for d in result.diagnostics if d.code == "CPL-S010"]
    assert "did you mean 'charge-cards'?" in dangling.message


def test_all_problems_of_a_file_are_reported_in_line_order() -> None:
    schema_errors = """
    timeout: soon
    start: a
    steps:
      - {name: a, type: task, activity: x.y, end: true, heartbeat: often}
      - {name: b, type: wait, duration: 5s, end: true, extra: 1}
    """
    assert [(code, line) for code, line, _ in _diagnostics(schema_errors)] == [
        ("CPL-S022", 9),
        ("CPL-S022", 12),
        ("CPL-S002", 13),
    ]
    semantic_errors = """
    start: a
    steps:
      - {name: a, type: task, activity: x.y, next: missing}
      - {name: b, type: wait, end: true}
    """
    assert [(code, line) for code, line, _ in _diagnostics(semantic_errors)] == [
        ("CPL-S013", 9),  # 'missing' is dangling, so no path from start ends
        ("CPL-S010", 11),
        ("CPL-S012", 12),
        ("CPL-S024", 12),
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    text = "apiVersion: cpl.dev/v1\nkind: Workflow\nmetadata: {name: [oops\n"
    result = load_sources([Source("workflows/broken.yaml", text)])
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "CPL-S001"
    assert diagnostic.file == "workflows/broken.yaml"
    assert diagnostic.line >= 3


def test_unknown_kind_and_api_version() -> None:
    bad_kind = "apiVersion: cpl.dev/v1\nkind: Workflw\n"
    bad_version = "apiVersion: cpl.dev/v2\nkind: Workflow\n"
    result = load_sources([Source("a.yaml", bad_kind), Source("b.yaml", bad_version)])
    assert [(d.code, d.line, d.path) for d in result.diagnostics] == [
        ("CPL-S005", 2, "/kind"),
        ("CPL-S005", 1, "/apiVersion"),
    ]
    assert "did you mean 'Workflow'?" in result.diagnostics[0].message


def test_the_same_workflow_in_two_files() -> None:
    text = HEADER + "  " + VALID.strip().replace("\n", "\n  ")
    result = load_sources([Source("workflows/a.yaml", text), Source("workflows/b.yaml", text)])
    assert [(d.code, d.file, d.path) for d in result.diagnostics] == [
        ("CPL-S026", "workflows/b.yaml", "/metadata/name")
    ]


WAIVER = """\
apiVersion: cpl.dev/v1
kind: Waiver
metadata: {name: late-jitter}
spec:
  rule: CPL-P002
  workflows: [acme/sample]
  environments: [prod]
  owner: team-a
  reason: upstream rejects concurrent retries
  expires: {expires}
"""


def test_waiver_expiring_beyond_180_days_is_rejected() -> None:
    today = dt.date(2026, 11, 25)
    ok = WAIVER.replace("{expires}", str(today + dt.timedelta(days=180)))
    far = WAIVER.replace("{expires}", str(today + dt.timedelta(days=181)))
    assert load_sources([Source("waivers/a.yaml", ok)], today=today).diagnostics == []
    result = load_sources([Source("waivers/a.yaml", far)], today=today)
    assert [(d.code, d.line, d.path) for d in result.diagnostics] == [
        ("CPL-S030", 10, "/spec/expires")
    ]


def test_waiver_with_a_wildcard_workflow_is_rejected() -> None:
    text = WAIVER.replace("{expires}", "2027-01-01").replace("acme/sample", "acme/*")
    result = load_sources([Source("waivers/a.yaml", text)], today=dt.date(2026, 11, 25))
    assert [(d.code, d.path) for d in result.diagnostics] == [("CPL-S004", "/spec/workflows")]


def test_duplicate_keys_are_an_error_at_the_second_key() -> None:
    text = HEADER + "  start: a\n  start: b\n  steps: []\n"
    (diagnostic,) = load_sources([Source("w.yaml", text)]).diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("CPL-S001", 10, 3)
    assert "duplicate" in diagnostic.message


def test_two_documents_in_one_file_are_an_error() -> None:
    text = HEADER + "  start: a\n---\napiVersion: cpl.dev/v1\n"
    (diagnostic,) = load_sources([Source("w.yaml", text)]).diagnostics
    assert (diagnostic.code, diagnostic.line) == ("CPL-S001", 10)
    assert "one document per file" in diagnostic.message


def test_unknown_json_schema_dialect_is_reported_without_fetching_it() -> None:
    body = """
    input:
      schema: {$schema: "https://example.com/my-dialect", type: object}
    start: a
    steps:
      - {name: a, type: task, activity: x.y, end: true}
    """
    assert ("CPL-S020", 10, "/spec/input/schema/$schema") in _diagnostics(body)
