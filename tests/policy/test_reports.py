"""Report formats of `cpl check`: JSON shape, SARIF 2.1.0, JUnit, Markdown, text."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from controlplane.cli.policy import check_command
from controlplane.policy.decision import Decision
from controlplane.report.check import check_json, check_text
from controlplane.report.junit import check_junit
from controlplane.report.markdown import MAX_CHARS, check_markdown
from controlplane.report.sarif import check_sarif
from tests.policy.conftest import (
    ENVIRONMENT,
    PROJECT,
    TODAY,
    WORKFLOW,
    WORKFLOW_FILE,
    Decide,
    mutate,
)
from tests.policy.test_decision import NO_JITTER, waiver

SCHEMA = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0-subset.json"


@pytest.fixture
def decision(decide: Decide) -> Decision:
    """Denied, warned, waived and an expiring waiver: every kind of row."""
    workflows = {
        WORKFLOW_FILE: mutate(NO_JITTER, lambda d: d["spec"].update(retention="400d")),
        "workflows/retail/b.yaml": mutate(
            WORKFLOW.replace("name: orders,", "name: b,"), lambda d: d["spec"].pop("slo")
        ),
    }
    environment_with_policy = ENVIRONMENT + "  policy:\n    rules: {CPL-P015: advisory}\n"
    return decide(
        workflows,
        environment_with_policy,
        waiver(path="/spec/defaults/retry", expires=TODAY + dt.timedelta(days=3)),
    )


def test_json_has_the_cli_shape(decision: Decision) -> None:
    report = check_json(decision)
    assert {"ok", "environment", "results", "waivers", "summary"} <= set(report)
    assert report["ok"] is False and report["environment"] == "prod"
    assert set(report["waivers"]) == {"expired", "unused", "expiring"}
    assert set(report["summary"]) == {"workflows", "denied", "warnings", "waived"}
    assert report["summary"] == {"workflows": 2, "denied": 1, "warnings": 2, "waived": 2}
    result = report["results"][0]
    assert set(result) == {"workflow", "target", "file", "violations"}
    violation = result["violations"][0]
    assert {
        "rule",
        "severity",
        "enforcement",
        "message",
        "path",
        "line",
        "column",
        "waived",
        "waiver",
    } <= set(violation)
    assert [w["name"] for w in report["waivers"]["expiring"]] == ["no-jitter"]
    json.dumps(report)


def test_sarif_validates_against_the_schema(decision: Decision) -> None:
    sarif = check_sarif(decision)
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    run = sarif["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["CPL-P011"]["properties"]["severity"] == "high"
    assert rules["CPL-P015"]["defaultConfiguration"]["level"] == "warning"
    levels = {(r["ruleId"], r["level"], "suppressions" in r) for r in run["results"]}
    assert levels == {
        ("CPL-P011", "error", False),
        ("CPL-P015", "warning", False),
        ("CPL-P002", "error", True),
    }
    located = run["results"][0]["locations"][0]["physicalLocation"]
    assert located["artifactLocation"]["uri"].startswith("workflows/retail/")
    assert located["region"]["startLine"] > 1


def test_junit_is_parseable_with_failures_and_skips(decision: Decision) -> None:
    root = ET.fromstring(check_junit(decision))
    assert root.tag == "testsuites" and int(root.get("tests", 0)) == 2 * 22
    cases = {
        (case.get("classname"), case.get("name", "").split()[0]): case
        for case in root.iter("testcase")
    }
    assert cases[("retail/orders", "CPL-P011")].find("failure") is not None
    assert cases[("retail/orders", "CPL-P002")].find("skipped") is not None
    assert cases[("retail/b", "CPL-P015")].find("system-out") is not None
    assert int(root.get("failures", 0)) == 1 and int(root.get("skipped", 0)) == 1


def test_markdown_summarises_and_links(decision: Decision) -> None:
    text = check_markdown(decision, "https://github.com/o/r/blob/abc/")
    assert "cpl check denied" in text and "| 2 | 2 | 1 | 2 | 2 | 0 |" in text
    assert "](https://github.com/o/r/blob/abc/workflows/retail/orders.yaml#L" in text
    assert "<details open>" in text and "### Waivers" in text and "expiring soon" in text
    assert len(text) < MAX_CHARS


def test_markdown_is_truncated_under_the_cap(decide: Decide) -> None:
    many = {
        f"workflows/retail/w{i}.yaml": mutate(
            WORKFLOW.replace("name: orders,", f"name: w{i},"),
            lambda d: (
                d["spec"]["defaults"]["retry"].update(jitter="none"),
                d["spec"]["steps"][0].update(parameters={"password": "x" * 400}),
            ),
        )
        for i in range(300)
    }
    decision = decide(many)
    text = check_markdown(decision)
    assert len(text) <= MAX_CHARS
    assert "**Truncated:** showing" in text and "of 900 findings" in text


def test_text_is_compiler_style(decision: Decision) -> None:
    lines = check_text(decision)
    assert lines[0] == "retail/orders"  # denied workflow first
    assert lines[1].startswith("  workflows/retail/orders.yaml:") and " CPL-P011 " in lines[1]
    assert lines[-1] == "denied"


def test_the_cli_writes_a_report_and_prints_the_summary(tmp_path: Path) -> None:
    output = tmp_path / "cpl.sarif"
    result = CliRunner().invoke(
        check_command,
        [
            "--env",
            "prod",
            "--repo",
            str(PROJECT),
            "--format",
            "sarif",
            "-o",
            str(output),
            "--today",
            TODAY.isoformat(),
        ],
        standalone_mode=False,
    )
    assert result.exception is None, result.output
    assert result.return_value == 3
    assert "environment prod:" in result.output and "denied" in result.output
    jsonschema.validate(json.loads(output.read_text()), json.loads(SCHEMA.read_text()))
