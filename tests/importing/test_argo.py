"""Argo import: the imported spec renders back to an equivalent manifest, compared
structurally (the DAG or the order of the steps, the containers, retries, deadlines and the
schedule); what has no equivalent is reported with its YAML path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.engines import render
from controlplane.importing.service import ImportOutcome, Naming, prepare
from controlplane.spec.load import load_environment
from tests.importing.conftest import CORPUS
from tests.importing.test_cli import cpl

ARGO = CORPUS / "argo"
_HELPER_IMAGES = {"busybox:1.36", "python:3.12-alpine", "ghcr.io/cpl-dev/dead-letter:0.1.0"}


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ARGO / f"{name}.yaml").read_text("utf-8"))
    return document


def _import(repo: Path, name: str) -> tuple[ImportOutcome, dict[str, Any]]:
    environment = load_environment(repo, "dev")
    outcome = prepare(
        repo, environment, _load(name), f"{name}.yaml", Naming(tenant="data"), default_name=name
    )
    target = outcome.environment.target("argo")
    assert target.select.matches(outcome.workflow)
    manifest = render(outcome.workflow, target, outcome.environment).document["manifests"][0]
    return outcome, manifest


def _templates(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in spec["templates"]}


def _containers(spec: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Container templates by what they run (image, command, args): their retry/deadline."""
    found = {}
    for template in spec["templates"]:
        container = template.get("container")
        if not container or container["image"] in _HELPER_IMAGES:
            continue
        key = (
            container["image"],
            tuple(container.get("command", [])),
            tuple(container.get("args", [])),
        )
        strategy = template.get("retryStrategy") or {}
        found[key] = {
            "limit": int(strategy["limit"]) if "limit" in strategy else None,
            "backoff": {k: _seconds(v) for k, v in (strategy.get("backoff") or {}).items()},
            "deadline": template.get("activeDeadlineSeconds"),
        }
    return found


def _seconds(value: Any) -> Any:
    """A Go duration as seconds (`2m` → 120), other values as they are."""
    units = {"s": 1, "m": 60, "h": 3600}
    if isinstance(value, str) and value[:-1].isdigit() and value[-1] in units:
        return int(value[:-1]) * units[value[-1]]
    return value


def test_a_dag_comes_back_as_the_same_dag(control_repo: Path) -> None:
    outcome, manifest = _import(control_repo, "etl-pipeline")
    original = _load("etl-pipeline")
    assert manifest["kind"] == "WorkflowTemplate"
    assert manifest["spec"]["activeDeadlineSeconds"] == 7200
    assert manifest["spec"]["ttlStrategy"] == {"secondsAfterCompletion": 604800}
    before = {
        t["name"]: set(t.get("dependencies", [])) | ({"check-volume"} if "depends" in t else set())
        for t in original["spec"]["templates"][0]["dag"]["tasks"]
    }
    main = _templates(manifest["spec"])["main"]
    after = {t["name"]: set(t.get("dependencies", [])) for t in main["dag"]["tasks"]}
    assert after == before
    assert _containers(manifest["spec"]) == _containers(original["spec"])
    assert outcome.report.summary["unsupported"] == 0
    # the when of alert-empty reads the count where the spec keeps it
    alert = next(s for s in outcome.document["spec"]["steps"] if s["name"] == "alert-empty")
    assert alert["when"] == {"path": "$.check-volume", "eq": 0}


def test_a_cron_workflow_keeps_its_schedule_steps_and_retries(control_repo: Path) -> None:
    outcome, manifest = _import(control_repo, "nightly-report")
    original = _load("nightly-report")
    assert manifest["kind"] == "CronWorkflow"
    spec = manifest["spec"]
    assert spec["schedules"] == ["30 2 * * *"]
    assert (spec["timezone"], spec["concurrencyPolicy"]) == ("Europe/Berlin", "Forbid")
    assert spec["workflowSpec"]["activeDeadlineSeconds"] == 3600
    assert _containers(spec["workflowSpec"]) == _containers(original["spec"]["workflowSpec"])
    # the rows run in order, the second as one parallel step of two branches
    steps = outcome.document["spec"]["steps"]
    assert [s["name"] for s in steps] == ["fetch", "row-2", "publish"]
    assert [b["start"] for b in steps[1]["branches"]] == ["render-pdf", "render-csv"]
    assert (steps[0]["next"], steps[1]["next"], steps[2]["end"]) == ("row-2", "publish", True)
    templates = _templates(spec["workflowSpec"])
    node = templates["node-row-2"]
    assert [call["template"] for call in node["steps"][0]] == [
        "node-row-2-b0-render-pdf",
        "node-row-2-b1-render-csv",
    ]


def test_what_argo_cannot_say_in_a_spec_is_reported_with_its_yaml_path(
    control_repo: Path,
) -> None:
    outcome, manifest = _import(control_repo, "image-fanout")
    findings = {f.source: f for f in outcome.report.not_exact()}
    assert findings["spec.templates[0].dag.tasks[2].withItems"].fidelity == "unsupported"
    assert findings["spec.templates[4]"].construct == "template.script"
    assert findings["spec.templates[0].dag.tasks[1].withParam"].fidelity == "approximated"
    assert "retryPolicy OnFailure" in findings["spec.templates[2].retryStrategy"].detail
    # withParam over a task's result: a map over where that result is kept
    resize = next(s for s in outcome.document["spec"]["steps"] if s["name"] == "resize")
    assert (resize["type"], resize["items"], resize["maxConcurrency"]) == (
        "map",
        "$.list-images",
        4,
    )
    main = _templates(manifest["spec"])["main"]
    assert {t["name"] for t in main["dag"]["tasks"]} == {"list-images", "resize"}


def test_cli_imports_an_argo_template(
    control_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cpl(
        capsys,
        "import",
        str(ARGO / "etl-pipeline.yaml"),
        "--env",
        "dev",
        "--tenant",
        "data",
        "--repo",
        str(control_repo),
    )
    assert code == 0, err
    env = yaml.safe_load((control_repo / "environments" / "dev.yaml").read_text("utf-8"))
    assert env["spec"]["bindings"]["activities"]["extract"]["argo"] == {
        "image": "ghcr.io/acme/sales-etl:2.3.1",
        "command": ["etl", "extract"],
        "args": ["--source", "postgres"],
    }
    assert cpl(capsys, "validate", "--repo", str(control_repo))[0] == 0


def test_a_conditional_row_becomes_a_choice_before_it(control_repo: Path) -> None:
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "coin"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "steps": [
                        [{"name": "flip", "template": "flip"}],
                        [
                            {
                                "name": "heads",
                                "template": "say",
                                "when": "{{steps.flip.outputs.result}} == heads",
                            }
                        ],
                        [{"name": "record", "template": "say"}],
                    ],
                },
                {"name": "flip", "container": {"image": "alpine:3", "command": ["flip"]}},
                {"name": "say", "container": {"image": "alpine:3", "command": ["say"]}},
            ],
        },
    }
    environment = load_environment(control_repo, "dev")
    outcome = prepare(
        control_repo, environment, manifest, "coin", Naming(tenant="data"), default_name="coin"
    )
    steps = {s["name"]: s for s in outcome.document["spec"]["steps"]}
    assert steps["flip"]["next"] == "heads-when"
    assert steps["heads-when"]["rules"] == [
        {"when": {"path": "$.flip", "eq": "heads"}, "next": "heads"}
    ]
    assert steps["heads-when"]["default"] == "record"
    assert steps["heads"]["next"] == "record" and steps["record"]["end"] is True
    found = [f for f in outcome.report.findings if f.construct == "when"]
    assert [f.source for f in found] == ["spec.templates[0].steps[1][0].when"]
