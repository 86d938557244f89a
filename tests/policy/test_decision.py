"""Waivers (`cpl schema --kind Waiver`) and enforcement levels, on real OPA."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.policy.conftest import ENVIRONMENT, TODAY, WORKFLOW, WORKFLOW_FILE, Decide, mutate

NO_JITTER = mutate(WORKFLOW, lambda d: d["spec"]["defaults"]["retry"].update(jitter="none"))


def waiver(
    *,
    name: str = "no-jitter",
    rule: str = "CPL-P002",
    workflows: str = "retail/orders",
    environments: str = "prod",
    path: str | None = None,
    expires: dt.date = TODAY + dt.timedelta(days=90),
) -> dict[str, str]:
    text = f"""
apiVersion: cpl.dev/v1
kind: Waiver
metadata: {{name: {name}}}
spec:
  rule: {rule}
  workflows: [{workflows}]
  environments: [{environments}]
  owner: team
  reason: upstream rejects concurrent retries
  expires: {expires.isoformat()}
""" + (f"  path: {path}\n" if path else "")
    return {f"waivers/{name}.yaml": text}


def test_a_matching_waiver_turns_violations_into_waived(decide: Decide) -> None:
    decision = decide({WORKFLOW_FILE: NO_JITTER}, waivers=waiver())
    assert {(v.rule, v.waived, v.waiver) for v in decision.violations} == {
        ("CPL-P002", True, "no-jitter")
    }
    assert decision.ok and decision.exit_code == 0
    assert decision.summary == {"workflows": 1, "denied": 0, "warnings": 0, "waived": 2}
    assert [w.name for w in decision.waivers.applied] == ["no-jitter"]
    assert not decision.waivers.unused


@pytest.mark.parametrize(
    "options",
    [
        {"rule": "CPL-P001"},
        {"workflows": "retail/other"},
        {"environments": "staging"},
        {"path": "/spec/steps/1"},
        {"path": "/spec/steps/0/ret"},  # a prefix by characters is not a parent node
    ],
    ids=["other-rule", "other-workflow", "other-environment", "other-path", "partial-token"],
)
def test_a_waiver_that_does_not_match_waives_nothing(
    decide: Decide, options: dict[str, str]
) -> None:
    decision = decide({WORKFLOW_FILE: NO_JITTER}, waivers=waiver(**options))  # type: ignore[arg-type]
    assert all(not v.waived for v in decision.violations)
    assert decision.exit_code == 3
    expected_unused = (
        [] if options.get("environments") or options.get("workflows") else ["no-jitter"]
    )
    assert [w.name for w in decision.waivers.unused] == expected_unused


@pytest.mark.parametrize(
    ("path", "waived"),
    [
        ("/spec/steps/0", {"/spec/steps/0/retry/jitter"}),
        ("/spec/defaults/retry", {"/spec/steps/0/retry/jitter", "/spec/steps/2/retry/jitter"}),
    ],
)
def test_a_waiver_path_narrows_it(decide: Decide, path: str, waived: set[str]) -> None:
    decision = decide({WORKFLOW_FILE: NO_JITTER}, waivers=waiver(path=path))
    assert {v.path for v in decision.violations if v.waived} == waived


def test_an_expired_waiver_waives_nothing_and_denies(decide: Decide) -> None:
    expired = waiver(expires=TODAY - dt.timedelta(days=1))
    decision = decide({WORKFLOW_FILE: NO_JITTER}, waivers=expired)
    assert all(not v.waived for v in decision.violations)
    assert [w.name for w in decision.waivers.expired] == ["no-jitter"]
    assert decision.exit_code == 3

    clean = decide(waivers=expired)  # even with nothing to waive, an expired waiver denies
    assert not clean.violations and clean.denied and clean.exit_code == 3


def test_an_unused_waiver_is_listed_but_does_not_deny(decide: Decide) -> None:
    decision = decide(waivers=waiver())
    assert [w.name for w in decision.waivers.unused] == ["no-jitter"]
    assert decision.exit_code == 0


@pytest.mark.parametrize(("days", "soon"), [(14, True), (15, False), (0, True)])
def test_waivers_expiring_within_14_days_are_warnings(
    decide: Decide, days: int, soon: bool
) -> None:
    decision = decide(
        {WORKFLOW_FILE: NO_JITTER}, waivers=waiver(expires=TODAY + dt.timedelta(days=days))
    )
    assert bool(decision.waivers.expiring) is soon
    assert decision.exit_code == 0


def _with_policy(policy: str) -> str:
    return ENVIRONMENT + "  policy:\n" + policy


def test_an_advisory_rule_warns(decide: Decide) -> None:
    decision = decide({WORKFLOW_FILE: NO_JITTER}, _with_policy("    rules: {CPL-P002: advisory}\n"))
    assert {(v.rule, v.enforcement, v.denies) for v in decision.violations} == {
        ("CPL-P002", "advisory", False)
    }
    assert decision.exit_code == 0 and decision.summary["warnings"] == 2


def test_a_disabled_rule_is_not_reported(decide: Decide) -> None:
    decision = decide({WORKFLOW_FILE: NO_JITTER}, _with_policy("    rules: {CPL-P002: disabled}\n"))
    assert not decision.violations and decision.exit_code == 0


def test_advisory_by_default_with_a_mandatory_override(decide: Decide) -> None:
    workflow = mutate(NO_JITTER, lambda d: d["spec"].__setitem__("retention", "400d"))
    policy = "    enforcement: advisory\n    rules: {CPL-P011: mandatory}\n"
    decision = decide({WORKFLOW_FILE: workflow}, _with_policy(policy))
    assert {(v.rule, v.denies) for v in decision.violations} == {
        ("CPL-P002", False),
        ("CPL-P011", True),
    }


def test_unknown_rule_ids_are_warned_about(decide: Decide) -> None:
    decision = decide(environment=_with_policy("    rules: {CPL-P02: advisory}\n"))
    assert [d.code for d in decision.diagnostics] == ["CPL-C004"]
    assert "did you mean" in decision.diagnostics[0].message
    assert decision.exit_code == 0


def test_a_workflow_no_target_selects_is_an_error(decide: Decide) -> None:
    environment = ENVIRONMENT.replace(
        "regulated: true}", "regulated: true, select: {tenants: [x]}}"
    )
    decision = decide(environment=environment)
    assert [d.code for d in decision.diagnostics] == ["CPL-C001"]
    assert decision.exit_code == 1 and not decision.ok


def test_a_missing_binding_is_an_error(decide: Decide) -> None:
    workflow = mutate(WORKFLOW, lambda d: d["spec"]["steps"][0].update(activity="nope.missing"))
    decision = decide({WORKFLOW_FILE: workflow})
    (problem,) = decision.diagnostics
    assert problem.code == "CPL-C002" and "nope.missing" in problem.message
    assert problem.path == "/spec/steps/0/activity" and decision.exit_code == 1
