"""`cpl import FILE`: the files it writes, the bindings it adds, the report it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import run
from controlplane.importing.asl import import_asl
from controlplane.importing.bindings import BindingPlan, add_bindings
from tests.importing.conftest import CORPUS


def cpl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_writes_a_valid_spec_and_adds_bindings_in_place(
    control_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = control_repo / "environments" / "dev.yaml"
    before = env_file.read_text("utf-8")
    code, out, err = cpl(
        capsys,
        "import",
        str(CORPUS / "order-fulfillment.asl.json"),
        "--env",
        "dev",
        "--tenant",
        "shop",
        "--repo",
        str(control_repo),
        "--format",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["written"] is True
    assert result["file"] == "workflows/shop/order-fulfillment.yaml"
    assert result["fidelity"]["fidelity"] == "exact"
    spec = yaml.safe_load((control_repo / result["file"]).read_text("utf-8"))
    assert spec["metadata"]["labels"] == {"runtime": "stepfunctions"}  # the sfn target selects it
    assert spec["spec"]["start"] == "reserve-inventory"
    # existing text is kept byte for byte (comments, quoting), new bindings are appended
    after = env_file.read_text("utf-8")
    assert after.startswith(before)
    bindings = yaml.safe_load(after)["spec"]["bindings"]["activities"]
    assert bindings["reserve-inventory"] == {
        "stepfunctions": {
            "resource": "arn:aws:lambda:us-east-1:123456789012:function:reserve-inventory"
        }
    }
    # charge-card is bound to the same function already: reused, not duplicated
    assert "charge-card" in result["bindings"]["reused"]
    # ship-order is bound to another account's function: never overwritten, reported
    assert bindings["ship-order"]["stepfunctions"]["resource"].startswith(
        "arn:aws:lambda:us-east-1:999999999999"
    )
    conflict = result["bindings"]["conflicts"][0]
    assert (conflict["activity"], conflict["boundAs"]) == ("ship-order", "ship-order-2")
    assert any(s.get("activity") == "ship-order-2" for s in spec["spec"]["steps"])
    code, out, err = cpl(capsys, "validate", "--repo", str(control_repo))
    assert code == 0, out + err


def test_import_refuses_to_overwrite_unless_forced(
    control_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(CORPUS / "claim-routing.asl.json")
    common = ["--env", "dev", "--tenant", "shop", "--repo", str(control_repo)]
    assert cpl(capsys, "import", source, *common)[0] == 0
    path = control_repo / "workflows" / "shop" / "claim-routing.yaml"
    path.write_text(path.read_text("utf-8") + "# edited\n", "utf-8")
    code, _, err = cpl(capsys, "import", source, *common)
    assert code == 1
    assert "already exists" in err and "--force" in err
    assert path.read_text("utf-8").endswith("# edited\n")
    assert cpl(capsys, "import", source, *common, "--force")[0] == 0
    assert not path.read_text("utf-8").endswith("# edited\n")


def test_dry_run_writes_nothing_and_shows_the_spec(
    control_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_before = (control_repo / "environments" / "dev.yaml").read_text("utf-8")
    code, out, err = cpl(
        capsys,
        "import",
        str(CORPUS / "audit-export.asl.json"),
        "--env",
        "dev",
        "--tenant",
        "shop",
        "--name",
        "audits",
        "--dry-run",
        "--repo",
        str(control_repo),
    )
    assert code == 0, err
    assert not (control_repo / "workflows" / "shop").exists()
    assert (control_repo / "environments" / "dev.yaml").read_text("utf-8") == env_before
    # the text report: a summary line, then what is not exact with its JSON pointer
    assert "audit-export.asl.json (stepfunctions): unsupported" in out
    assert "/States/Stamp" in out and "/States/Label/Parameters/title.$" in out
    assert "/States/Archive/ResultPath" in out and "$.discarded.archive" in out
    assert "name: audits" in out


def test_bad_input_is_a_clear_error(
    control_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": true}}}')
    code, _, err = cpl(
        capsys,
        "import",
        str(broken),
        "--env",
        "dev",
        "--tenant",
        "shop",
        "--repo",
        str(control_repo),
    )
    assert code == 1
    assert "/States/A/Type 'Teleport' is not an ASL state" in err
    assert "Traceback" not in err
    code, _, _ = cpl(capsys, "import", "--env", "dev", "--tenant", "shop")
    assert code == 2


def _choice(*rules: dict[str, Any], default: bool = True) -> dict[str, Any]:
    states: dict[str, Any] = {
        "Pick": {"Type": "Choice", "Choices": [{**r, "Next": "Yes"} for r in rules]},
        "Yes": {"Type": "Succeed"},
        "No": {"Type": "Succeed"},
    }
    if default:
        states["Pick"]["Default"] = "No"
    return {"StartAt": "Pick", "States": states}


def test_conditions_cpl_cannot_express_are_reported_and_never_hold() -> None:
    imported = import_asl(
        _choice(
            {"Variable": "$.name", "StringLessThan": "m"},
            {"Variable": "$.at", "TimestampEquals": "2024-01-01T00:00:00Z"},
            {"Variable": "$.a", "NumericEqualsPath": "$.b"},
            {"Variable": "$.a", "IsTimestamp": True},
            {"Variable": "$.items[*].id", "IsPresent": True},
            {
                "And": [
                    {"Variable": "$.ok", "BooleanEquals": True},
                    {"Variable": "$.s", "StringGreaterThanEquals": "b"},
                ]
            },
        ),
        "choices.json",
    )
    unsupported = {f.source for f in imported.report.findings if f.fidelity == "unsupported"}
    for index, operator in [
        (0, "StringLessThan"),
        (1, "TimestampEquals"),
        (2, "NumericEqualsPath"),
        (3, "IsTimestamp"),
        (5, "And/1/StringGreaterThanEquals"),
    ]:
        assert f"/States/Pick/Choices/{index}/{operator}" in unsupported
    assert "/States/Pick/Choices/4/Variable" in unsupported
    rules = imported.spec["steps"][0]["rules"]
    assert all(rule["when"] == {"path": "$", "exists": False} for rule in rules)


def test_every_expressible_operator_is_exact() -> None:
    imported = import_asl(
        _choice(
            {"Variable": "$.a", "StringEquals": "x"},
            {"Variable": "$.a", "NumericEquals": 1},
            {"Variable": "$.a", "BooleanEquals": False},
            {"Variable": "$.a", "NumericLessThan": 1},
            {"Variable": "$.a", "NumericLessThanEquals": 1},
            {"Variable": "$.a", "NumericGreaterThan": 1},
            {"Variable": "$.a", "NumericGreaterThanEquals": 1},
            {"Variable": "$.a", "StringMatches": "log-*.txt"},
            {"Variable": "$.a", "IsNull": False},
            {"Variable": "$.a", "IsPresent": False},
            {
                "Not": {
                    "Or": [
                        {"Variable": "$.a", "IsNumeric": True},
                        {"Variable": "$.a", "IsBoolean": True},
                    ]
                }
            },
        ),
        "choices.json",
    )
    assert imported.report.fidelity == "exact", imported.report.text()
    whens = [rule["when"] for rule in imported.spec["steps"][0]["rules"]]
    assert whens[7] == {"path": "$.a", "matches": r"^log-.*\.txt$"}
    assert whens[8] == {"not": {"path": "$.a", "eq": None}}


def test_a_choice_without_default_fails_like_asl() -> None:
    imported = import_asl(_choice({"Variable": "$.a", "IsPresent": True}, default=False), "c")
    steps = {s["name"]: s for s in imported.spec["steps"]}
    fallback = steps[steps["pick"]["default"]]
    assert fallback == {
        "name": fallback["name"],
        "type": "fail",
        "error": "States.NoChoiceMatched",
    }
    assert [f.construct for f in imported.report.not_exact()] == ["choice.default"]


def test_fields_the_spec_cannot_hold_are_reported_with_their_pointer() -> None:
    imported = import_asl(
        {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
                    "ResultSelector": {"id.$": "$.id"},
                    "OutputPath": "$.out",
                    "HeartbeatSeconds": 10,
                    "TimeoutSeconds": 60,
                    "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 5}],
                    "Next": "Later",
                },
                "Later": {"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z", "Next": "Fan"},
                "Fan": {
                    "Type": "Map",
                    "ItemSelector": {"outer.$": "$.config"},
                    "ItemProcessor": {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Task",
                                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:g",
                                "End": True,
                            }
                        },
                    },
                    "Retry": [{"ErrorEquals": ["States.ALL"]}],
                    "End": True,
                },
            },
        },
        "fields.json",
    )
    findings = {f.source: f for f in imported.report.not_exact()}
    assert findings["/States/Call/ResultSelector"].fidelity == "unsupported"
    assert findings["/States/Call/OutputPath"].fidelity == "unsupported"
    assert findings["/States/Call/HeartbeatSeconds"].fidelity == "approximated"
    assert "Lambda.ServiceException" in findings["/States/Call/Retry"].detail
    assert findings["/States/Later"].construct == "wait.Timestamp"
    assert findings["/States/Fan/ItemSelector"].fidelity == "unsupported"
    assert findings["/States/Fan/Retry"].fidelity == "unsupported"
    steps = {s["name"]: s for s in imported.spec["steps"]}
    assert steps["call"]["next"] == "fan"  # the unimportable wait is skipped, never silently
    assert steps["call"]["retry"]["maxAttempts"] == 6


def test_a_workflow_defined_in_another_file_is_never_duplicated(
    control_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(CORPUS / "image-thumbnails.asl.json")
    common = ["--env", "dev", "--tenant", "media", "--name", "thumbs", "--repo", str(control_repo)]
    assert cpl(capsys, "import", source, *common)[0] == 0
    folder = control_repo / "workflows" / "media"
    (folder / "thumbs.yaml").rename(folder / "thumbnails.yaml")
    code, _, err = cpl(capsys, "import", source, *common, "--force")
    assert code == 1
    assert "media/thumbs is already defined in workflows/media/thumbnails.yaml" in err
    assert not (folder / "thumbs.yaml").exists()


def test_a_fold_that_would_lose_a_key_is_not_made() -> None:
    lam = "arn:aws:lambda:us-east-1:123456789012:function:f"
    imported = import_asl(
        {
            "StartAt": "Build",
            "States": {
                "Build": {
                    "Type": "Pass",
                    "Parameters": {"id.$": "$.id", "at.$": "$$.State.EnteredTime", "price": "$5"},
                    "Next": "Call",
                },
                "Call": {"Type": "Task", "Resource": lam, "End": True},
            },
        },
        "fold.json",
    )
    findings = {f.source: f for f in imported.report.not_exact()}
    # the Pass is reported as not importable, the task keeps its own (whole) input
    assert findings["/States/Build"].construct == "pass"
    assert "parameters" not in imported.spec["steps"][0]


def test_a_document_nested_beyond_bounds_is_refused(
    control_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = '{"Variable": "$.a", "IsPresent": true}'
    for _ in range(3000):
        deep = '{"Not": ' + deep + "}"
    source = tmp_path / "deep.json"
    source.write_text(
        '{"StartAt": "A", "States": {"A": {"Type": "Choice", "Default": "A", "Choices": ['
        + deep[:-1]
        + ', "Next": "A"}]}}}'
    )
    code, _, err = cpl(
        capsys,
        "import",
        str(source),
        "--env",
        "dev",
        "--tenant",
        "shop",
        "--repo",
        str(control_repo),
    )
    assert code == 1
    assert "nested deeper than 100 levels" in err and "internal error" not in err


def test_bindings_go_into_an_environment_without_any_in_block_style() -> None:
    text = (
        "# dev\napiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: dev}\n"
        "spec:\n  tier: development   # not production\n  targets: []\n  bindings: {}\n"
    )
    plan = BindingPlan("argo", added={"extract": {"image": "etl:1", "command": ["etl", "x"]}})
    assert add_bindings(text, "dev.yaml", plan) == text.replace(
        "  bindings: {}\n",
        "  bindings:\n    activities:\n      extract:\n"
        '        argo: {image: "etl:1", command: [etl, x]}\n',
    )
