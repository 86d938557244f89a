"""Semantic checks of a document that has schema errors: what they still find, and what they
must not report because a schema error already explains it."""

from __future__ import annotations

import copy
import datetime as dt
import textwrap
from typing import Any

import pytest
import yaml
import yaml_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.spec.load import Source, load_repo, load_sources
from controlplane.spec.locate import pointer_of
from controlplane.spec.outline import outline_of, outline_of_data
from tests.conftest import ROOT
from tests.spec.test_fuzz import SEEDS, _nodes, junk

HEADER = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: sample, tenant: acme, version: 1.0.0, owner: team-a}
spec:
"""  # the spec body starts on line 5

# The codes of the semantic checks (check.py); every other code is a schema error.
SEMANTIC = {f"CPL-S0{n}" for n in (10, 11, 12, 13, 14, 15, 16, 17, 20, 24, 25, 28)}


def _diagnostics(body: str) -> list[tuple[str, int, str]]:
    text = HEADER + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    result = load_sources([Source("workflows/acme/sample.yaml", text)], today=dt.date(2026, 1, 1))
    assert not result.workflows, "each case has a schema error"
    return [(d.code, d.line, d.path) for d in result.diagnostics]


# Schema errors that would make a semantic check report something false: only the schema
# error is reported.
CONSEQUENCES = {
    "a misspelled next is not a step without next, nor leaves the next step unreachable": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, nxt: b}
          - {name: b, type: succeed}
        """,
        [("CPL-S002", 7, "/spec/steps/0/nxt")],
    ),
    "a misspelled start does not turn a state machine into a DAG": (
        """
        strat: a
        steps:
          - {name: a, type: task, activity: x.y, end: true}
        """,
        [("CPL-S002", 5, "/spec/strat")],
    ),
    "a step whose name is invalid may be what a reference means": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: charge-card}
          - {name: Charge_Card, type: succeed}
        """,
        [("CPL-S004", 8, "/spec/steps/1/name")],
    ),
    "a next of the wrong type leaves the graph unknown, not broken": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: [b]}
          - {name: b, type: succeed}
        """,
        [("CPL-S004", 7, "/spec/steps/0/next")],
    ),
    "an end that does not parse is not a missing end": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: "yes please"}
        """,
        [("CPL-S004", 7, "/spec/steps/0/end")],
    ),
    "a misspelled compensation does not make the compensation step a dead end": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, compensaton: undo}
          - {name: undo, type: task, activity: x.undo}
        """,
        [("CPL-S002", 7, "/spec/steps/0/compensaton")],
    ),
    "an unknown step type may be the terminal step": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, next: done}
          - {name: done, type: succed}
        """,
        [("CPL-S004", 8, "/spec/steps/1/type")],
    ),
    "a misspelled default is not a choice without default": (
        """
        start: a
        steps:
          - name: a
            type: choice
            rules: [{when: {path: $.n, gt: 1}, next: b}]
            defualt: b
          - {name: b, type: succeed}
        """,
        [("CPL-S002", 10, "/spec/steps/0/defualt")],
    ),
    "a misspelled duration is not a wait without duration": (
        """
        start: a
        steps:
          - {name: a, type: wait, duraton: 5s, end: true}
        """,
        [("CPL-S002", 7, "/spec/steps/0/duraton")],
    ),
    "a choice rule without next leaves its target's reachability unknown": (
        """
        start: a
        steps:
          - name: a
            type: choice
            rules: [{when: {path: $.n, gt: 1}}]
            default: b
          - {name: b, type: succeed}
          - {name: c, type: succeed}
        """,
        [("CPL-S003", 9, "/spec/steps/0/rules/0")],
    ),
    "a compensation whose type is unknown is not said to be no task": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, compensation: undo}
          - {name: undo, type: tsak, activity: x.undo}
        """,
        [("CPL-S004", 8, "/spec/steps/1/type")],
    ),
    "a null catch list does not hide an edge": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, catch: null}
          - {name: handler, type: succeed}
        """,
        [("CPL-S004", 7, "/spec/steps/0/catch")],
    ),
}


@pytest.mark.parametrize("case", list(CONSEQUENCES), ids=list(CONSEQUENCES))
def test_no_semantic_finding_is_a_consequence_of_a_schema_error(case: str) -> None:
    body, expected = CONSEQUENCES[case]
    assert _diagnostics(body) == expected


# Problems independent of the schema errors next to them: all of them in one run.
BESIDE = {
    "the reported case: an unknown step type, and a dangling next in another step": (
        """
        start: a
        steps:
          - {name: a, type: taks, activity: x.y, next: b}
          - {name: b, type: task, activity: x.y, next: nowhere}
        """,
        [("CPL-S004", 7, "/spec/steps/0/type"), ("CPL-S010", 8, "/spec/steps/1/next")],
    ),
    "a bad value in one step leaves the graph whole: unreachable and dead-end steps": (
        """
        start: a
        steps:
          - {name: a, type: task, activity: x.y, end: true, timeout: soon}
          - {name: b, type: task, activity: x.y}
        """,
        [
            ("CPL-S022", 7, "/spec/steps/0/timeout"),
            ("CPL-S012", 8, "/spec/steps/1"),
            ("CPL-S028", 8, "/spec/steps/1"),
        ],
    ),
    "an error inside a parallel branch, and a loop that never ends at the top": (
        """
        start: p
        steps:
          - name: p
            type: parallel
            next: spin
            branches:
              - start: one
                steps:
                  - {name: one, type: task, activity: 5, end: true}
          - {name: spin, type: wait, duration: 1s, next: p}
        """,
        [
            ("CPL-S013", 5, "/spec/start"),
            ("CPL-S004", 13, "/spec/steps/0/branches/0/steps/0/activity"),
        ],
    ),
    "a dependency cycle in a DAG whose other step is broken": (
        """
        steps:
          - {name: a, type: task, activity: x.y, dependsOn: [b]}
          - {name: b, type: task, activity: x.y, dependsOn: [a]}
          - {name: c, type: task}
        """,
        [("CPL-S014", 6, "/spec/steps/0/dependsOn"), ("CPL-S003", 8, "/spec/steps/2")],
    ),
    "a retry policy and an input schema are checked beside an unknown alert metric": (
        """
        input:
          schema: {type: objekt}
        start: a
        steps:
          - name: a
            type: task
            activity: x.y
            end: true
            retry: {initialInterval: 10s, maxInterval: 1s}
        alerts: [{metric: latency, above: 1}]
        """,
        [
            ("CPL-S020", 6, "/spec/input/schema/type"),
            ("CPL-S016", 13, "/spec/steps/0/retry/maxInterval"),
            ("CPL-S004", 14, "/spec/alerts/0/metric"),
        ],
    ),
    "a duplicate step name beside a missing required field": (
        """
        start: a
        steps:
          - {name: a, type: approval, next: a2}
          - {name: a2, type: succeed}
          - {name: a2, type: succeed}
        """,
        [
            ("CPL-S003", 7, "/spec/steps/0"),
            ("CPL-S011", 9, "/spec/steps/2/name"),
        ],
    ),
}


@pytest.mark.parametrize("case", list(BESIDE), ids=list(BESIDE))
def test_semantic_problems_are_reported_beside_schema_errors(case: str) -> None:
    body, expected = BESIDE[case]
    assert _diagnostics(body) == expected


def test_both_outlines_of_every_example_agree() -> None:
    """The outline read from the data of a document equals the one read from its model, so
    the checks see the same facts on either path."""
    result = load_repo(ROOT)
    assert result.workflows
    for loaded in result.workflows:
        data = yaml_rs.loads(result.texts[loaded.file])
        assert outline_of_data(data) == outline_of(loaded.model), loaded.file


@st.composite
def single_mutations(draw: st.DrawFn) -> tuple[Any, tuple[Any, ...], str] | None:
    """One change to a valid example: a value replaced by junk, a key deleted, an unknown key
    added, or a key misspelled (its last letter dropped)."""
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    trail = draw(st.sampled_from(_nodes(document)[1:]))
    parent = document
    for key in trail[:-1]:
        parent = parent[key]
    key = trail[-1]
    action = draw(st.sampled_from(["replace", "delete", "insert", "misspell"]))
    if action == "replace":
        parent[key] = draw(junk)
    elif action == "delete":
        del parent[key]
    elif action == "insert" and isinstance(parent, dict):
        key = "x-" + draw(st.text(min_size=1, max_size=6))
        parent.setdefault(key, draw(junk))
        trail = (*trail[:-1], key)
    elif action == "misspell" and isinstance(key, str) and len(key) > 1 and key[:-1] not in parent:
        parent[key[:-1]] = parent.pop(key)
        trail = (*trail[:-1], key[:-1])
    else:
        return None
    return document, trail, action


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(single_mutations())
def test_a_single_schema_error_in_an_example_adds_no_semantic_finding(
    mutation: tuple[Any, tuple[Any, ...], str] | None,
) -> None:
    """The examples have no semantic problem. When one change makes the changed node a schema
    error, the example is one way to fix it; a semantic finding would have to hold for every
    fix, so there must be none."""
    if mutation is None:
        return
    document, trail, action = mutation
    text = yaml.safe_dump(document, sort_keys=False)
    result = load_sources([Source("workflows/mutated.yaml", text)])
    schema_errors = [d for d in result.diagnostics if d.code not in SEMANTIC]
    changed = pointer_of(trail)
    if action == "delete":
        parent, key = pointer_of(trail[:-1]), trail[-1]
        at_change = [d for d in schema_errors if d.path == parent and f"field '{key}'" in d.message]
    else:
        at_change = [
            d for d in schema_errors if d.path == changed or d.path.startswith(changed + "/")
        ]
    if not at_change:
        return  # the change is valid where it is: it may well be a semantic problem
    assert [d.format() for d in result.diagnostics if d.code in SEMANTIC] == []
