"""Alert thresholds typed by metric (docs/alerts.md): accepted, normalized and rejected."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml

from controlplane.cli import run
from controlplane.spec.load import Source, load_sources
from controlplane.spec.model import Workflow
from controlplane.spec.normalize import to_data, to_document
from controlplane.spec.schema import json_schema
from tests.conftest import ROOT, MakeRepo

DOC = ROOT / "docs" / "alerts.md"
HEADER = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: orders, tenant: retail, version: 1.0.0, owner: team-orders}
spec:
  start: ship
  steps:
    - {name: ship, type: task, activity: orders.ship, end: true}
  alerts:
"""  # alerts start on line 9


def _workflow(alerts: list[str]) -> str:
    return HEADER + "".join(f"    - {alert}\n" for alert in alerts)


def _load(text: str) -> tuple[Workflow | None, list[tuple[str, int, int, str, str]]]:
    result = load_sources([Source("workflows/retail/orders.yaml", text)])
    model = result.workflows[0].model if result.workflows else None
    found = [(d.code, d.line, d.column, d.path, d.message) for d in result.diagnostics]
    return model, found


ACCEPTED = {
    # alert as written: its `above` in the normalized document
    "{metric: failureRate, above: 0.02, window: 15m}": 0.02,
    "{metric: failureRate, above: 2%}": 0.02,
    "{metric: failureRate, above: 0.5%}": 0.005,
    "{metric: failureRate, above: 100%}": 1.0,
    "{metric: failureRate, above: 0}": 0.0,
    "{metric: failureRate, above: 1}": 1.0,
    "{metric: duration, above: 5h}": 18000,
    "{metric: duration, above: 1h30m, window: 1d}": 5400,
    "{metric: duration, above: 500ms}": 0.5,
    "{metric: pendingTasks, above: 200, window: 1h}": 200,
    "{metric: retries, above: 0}": 0,
}


def test_each_metric_takes_its_own_threshold_type() -> None:
    model, diagnostics = _load(_workflow(list(ACCEPTED)))
    assert diagnostics == []
    assert model is not None
    alerts = to_document(model)["spec"]["alerts"]
    assert [alert["above"] for alert in alerts] == list(ACCEPTED.values())
    assert [type(alert["above"]) for alert in alerts] == [type(v) for v in ACCEPTED.values()]
    assert alerts[1] == {"metric": "failureRate", "above": 0.02}
    assert alerts[6] == {"metric": "duration", "above": 18000}
    assert alerts[7]["window"] == 86400


def test_thresholds_round_trip_as_written() -> None:
    model, _ = _load(
        _workflow(["{metric: failureRate, above: 2%}", "{metric: duration, above: 5h}"])
    )
    assert model is not None
    assert [a["above"] for a in to_data(model)["spec"]["alerts"]] == ["2%", "5h"]


# alert as written (line 9): (column, code, message ending)
REJECTED = {
    "{metric: failureRate, above: 5h}": (
        29,
        "CPL-S004",
        "a failureRate alert's threshold is a ratio from 0 to 1 (0.02) or a percentage (2%), "
        "not '5h'",
    ),
    "{metric: failureRate, above: 2}": (29, "CPL-S004", "or a percentage (2%), not 2"),
    "{metric: failureRate, above: 150%}": (29, "CPL-S004", "or a percentage (2%), not '150%'"),
    "{metric: failureRate, above: -0.1}": (29, "CPL-S004", "or a percentage (2%), not -0.1"),
    "{metric: failureRate, above: true}": (29, "CPL-S004", "or a percentage (2%), not true"),
    "{metric: duration, above: 300}": (
        26,
        "CPL-S022",
        "a duration alert's threshold is a duration such as 90s or 5h, not 300",
    ),
    "{metric: duration, above: 2%}": (26, "CPL-S022", "such as 90s or 5h, not '2%'"),
    "{metric: pendingTasks, above: 5h}": (
        30,
        "CPL-S004",
        "a pendingTasks alert's threshold is a count (a whole number, 0 or more), not '5h'",
    ),
    "{metric: retries, above: 2.5}": (25, "CPL-S004", "(a whole number, 0 or more), not 2.5"),
    "{metric: retries, above: -1}": (25, "CPL-S004", "(a whole number, 0 or more), not -1"),
    "{metric: retries, above: '3'}": (25, "CPL-S004", "(a whole number, 0 or more), not '3'"),
}


@pytest.mark.parametrize("alert", list(REJECTED), ids=list(REJECTED))
def test_a_threshold_of_the_wrong_type_is_an_error_at_above(alert: str) -> None:
    column, code, ending = REJECTED[alert]
    _, diagnostics = _load(_workflow([alert]))
    ((found_code, line, found_column, pointer, message),) = diagnostics
    assert (found_code, line, found_column, pointer) == (code, 9, column, "/spec/alerts/0/above")
    assert message.startswith("above: a ") and message.endswith(ending)


def test_an_unknown_metric_suggests_the_closest() -> None:
    _, diagnostics = _load(_workflow(["{metric: failurerate, above: 0.02}"]))
    assert diagnostics == [
        (
            "CPL-S004",
            9,
            8,
            "/spec/alerts/0/metric",
            "unknown metric 'failurerate'; did you mean 'failureRate'? "
            "(one of: failureRate, duration, pendingTasks, retries)",
        )
    ]


def _document(text: str) -> Any:
    return yaml.safe_load(text)


def test_the_json_schema_types_thresholds_alike() -> None:
    """Editors using `cpl schema` accept and reject the same thresholds as `cpl validate`."""
    validator = jsonschema.Draft202012Validator(json_schema("Workflow"))
    assert list(validator.iter_errors(_document(_workflow(list(ACCEPTED))))) == []
    for alert in REJECTED:
        assert list(validator.iter_errors(_document(_workflow([alert])))), alert


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_documented_alerts_are_valid() -> None:
    spec = _blocks("yaml")[0]
    assert spec.startswith("spec:\n")
    text = HEADER.removesuffix("  alerts:\n") + spec.removeprefix("spec:\n")
    model, diagnostics = _load(text)
    assert diagnostics == []
    assert model is not None and len(model.spec.alerts) == 5


def test_the_documented_output_is_what_validate_prints(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow, output = _blocks("yaml")[1], _blocks("text")[0]
    repo = make_repo({"workflows/retail/orders.yaml": workflow})
    assert run(["validate", "--repo", str(repo)]) == 1
    printed = [line for line in capsys.readouterr().out.splitlines() if ": CPL-" in line]
    assert printed == output.strip().splitlines()
