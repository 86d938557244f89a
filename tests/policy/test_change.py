"""Breaking-change detection and version bumps between two versions of a workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest
from click.testing import CliRunner

from controlplane.cli.policy import check_command
from controlplane.policy.change import compare_documents, version_bump
from controlplane.spec.load import Source, load_sources
from controlplane.spec.normalize import to_document
from tests.policy.conftest import ENVIRONMENT, WORKFLOW, WORKFLOW_FILE, mutate

Doc = dict[str, Any]


def _doc(text: str) -> Doc:
    result = load_sources([Source(WORKFLOW_FILE, text)])
    assert result.ok, [d.format() for d in result.diagnostics]
    return to_document(result.workflows[0].model)


def _breaking(change: Any) -> set[tuple[str, str]]:
    return {
        (b.path, b.reason)
        for b in compare_documents(_doc(WORKFLOW), _doc(mutate(WORKFLOW, change))).breaking
    }


@pytest.mark.parametrize(
    ("before", "after", "bump"),
    [
        ("1.0.0", "2.0.0", "major"),
        ("1.0.0", "1.1.0", "minor"),
        ("1.0.0", "1.0.1", "patch"),
        ("1.2.3", "1.2.3", "none"),
        ("2.0.0", "1.9.9", "none"),
        ("1.0.0-rc.1", "1.0.0", "patch"),
    ],
)
def test_version_bump(before: str, after: str, bump: str) -> None:
    assert version_bump(before, after) == bump


def test_create_update_delete_and_none() -> None:
    base = _doc(WORKFLOW)
    assert compare_documents(None, base).action == "create"
    assert compare_documents(base, None).action == "delete"
    assert compare_documents(base, base).action == "none"
    patched = _doc(mutate(WORKFLOW, lambda d: d["metadata"].update(version="1.0.1", owner="x")))
    change = compare_documents(base, patched)
    assert (change.action, change.bump, change.breaking) == ("update", "patch", ())
    assert change.to_json()["previous"] == base


def _remove_refund(d: Doc) -> None:
    del d["spec"]["steps"][0]["compensation"]
    d["spec"]["onError"]["compensate"] = False
    d["spec"]["steps"].pop(2)


def _rename_done(d: Doc) -> None:
    d["spec"]["steps"][0]["next"] = "finished"
    d["spec"]["steps"][1]["name"] = "finished"


def test_removed_and_renamed_steps() -> None:
    assert _breaking(_remove_refund) == {("/spec/steps", "step 'refund' removed")}
    assert _breaking(_rename_done) == {("/spec/steps/1/name", "step 'done' renamed to 'finished'")}


def test_stricter_input_schema() -> None:
    def stricter(d: Doc) -> None:
        schema = d["spec"]["input"]["schema"]
        schema["properties"] = {"orderId": {"type": "integer"}, "cart": {"type": "array"}}
        schema["required"] = ["orderId", "cart"]

    assert _breaking(stricter) == {
        ("/spec/input/schema/required", "input property 'cart' is now required"),
        (
            "/spec/input/schema/properties/orderId/type",
            "input property 'orderId' changed type string → integer",
        ),
    }

    def removed(d: Doc) -> None:
        d["spec"]["input"]["schema"] = {
            "type": "object",
            "properties": {"other": {"type": "string"}},
        }

    assert _breaking(removed) == {
        ("/spec/input/schema/properties", "input property 'orderId' removed")
    }

    def looser(d: Doc) -> None:
        d["spec"]["input"]["schema"]["properties"]["note"] = {"type": "string"}

    assert _breaking(looser) == set()


def test_tightened_retry_and_timeouts() -> None:
    def tighter(d: Doc) -> None:
        d["spec"]["timeout"] = "30m"
        d["spec"]["steps"][0]["timeout"] = "1m"
        d["spec"]["steps"][0]["retry"] = {
            "maxAttempts": 2,
            "initialInterval": "1s",
            "backoffRate": 2.0,
            "maxInterval": "1m",
            "jitter": "full",
            "nonRetryable": ["CardDeclined"],
        }

    assert _breaking(tighter) == {
        ("/spec/timeout", "workflow timeout shortened 3600s → 1800s"),
        ("/spec/steps/0/timeout", "step 'charge' timeout shortened 300s → 60s"),
        ("/spec/steps/0/retry/maxAttempts", "step 'charge' retries less: maxAttempts 3 → 2"),
        ("/spec/steps/0/retry/nonRetryable", "step 'charge' no longer retries errors CardDeclined"),
    }

    def longer(d: Doc) -> None:
        d["spec"]["timeout"] = "2h"

    assert _breaking(longer) == set()


def test_changed_step_order() -> None:
    def three(d: Doc) -> None:
        steps = d["spec"]["steps"]
        steps[0]["next"] = "notify"
        steps.insert(
            1,
            {
                "name": "notify",
                "type": "task",
                "activity": "orders.item",
                "idempotencyKey": "$.orderId",
                "next": "done",
            },
        )

    def swapped(d: Doc) -> None:
        three(d)
        steps = d["spec"]["steps"]
        d["spec"]["start"] = "notify"
        steps[1]["next"] = "charge"
        steps[0]["next"] = "done"

    before = _doc(mutate(WORKFLOW, three))
    after = _doc(mutate(WORKFLOW, swapped))
    assert {(b.path, b.reason) for b in compare_documents(before, after).breaking} == {
        ("/spec/steps/1", "step 'notify' now runs before 'charge' (it ran after it)")
    }


def _commit(repo: git.Repo, root: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    repo.index.add(list(files))
    repo.index.commit(message)


def test_check_with_base_gates_only_changed_workflows(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    other = WORKFLOW.replace("name: orders,", "name: other,")
    _commit(
        repo,
        tmp_path,
        {
            WORKFLOW_FILE: WORKFLOW,
            "workflows/retail/other.yaml": other,
            "environments/prod.yaml": ENVIRONMENT,
        },
        "base",
    )
    base = repo.head.commit.hexsha

    def breaking_minor(d: Doc) -> None:
        _remove_refund(d)
        d["metadata"]["version"] = "1.1.0"

    (tmp_path / WORKFLOW_FILE).write_text(mutate(WORKFLOW, breaking_minor))
    runner = CliRunner()
    result = runner.invoke(
        check_command,
        ["--env", "prod", "--repo", str(tmp_path), "--base", base, "--format", "json"],
        standalone_mode=False,
    )
    assert result.exception is None, result.output
    assert result.return_value == 3
    report = json.loads(result.output[result.output.index("{") :])
    assert [r["workflow"] for r in report["results"]] == ["retail/orders"]
    # Only spec-level denials: warnings of CPL-P020 come from the translators' gaps.
    denied = [v for v in report["results"][0]["violations"] if v["kind"] == "deny"]
    assert [v["rule"] for v in denied if v["rule"] != "CPL-P020"] == ["CPL-P017"]
    assert any("refund" in v["message"] for v in denied if v["rule"] == "CPL-P017")
