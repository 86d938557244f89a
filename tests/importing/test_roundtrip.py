"""Round trip on the Step Functions emulator: every corpus definition and the definition cpl
renders from its import run with the same inputs; the task traces and outputs must agree
where the fidelity report says `exact`, and differ only as it says elsewhere."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.engines import diff_documents, render
from controlplane.importing.service import ImportOutcome, Naming, prepare
from controlplane.spec.files import decode
from controlplane.spec.load import load_environment, load_sources
from tests.importing.conftest import CORPUS, ROLE, corpus_definition, make_control_repo, run_all

CASES: dict[str, dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text("utf-8"))


def _import(repo: Path, name: str) -> ImportOutcome:
    environment = load_environment(repo, "dev")
    return prepare(
        repo,
        environment,
        corpus_definition(name),
        f"{name}.asl.json",
        Naming(tenant="rt", name=name),
        default_name=name,
    )


def test_the_corpus_covers_what_the_importer_maps() -> None:
    names = sorted(p.name.removesuffix(".asl.json") for p in CORPUS.glob("*.asl.json"))
    assert names == sorted(CASES)
    assert 10 <= len(names) <= 15


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> dict[str, Any]:
    repo = make_control_repo(tmp_path_factory.mktemp("roundtrip"), moto_endpoint)
    return {name: _import(repo, name) for name in CASES}


def test_each_import_reports_the_fidelity_the_corpus_expects(outcomes: dict[str, Any]) -> None:
    for name, case in CASES.items():
        report = outcomes[name].report
        assert report.fidelity == case.get("fidelity", "exact"), (name, report.text())
        assert all(f.source.startswith("/") for f in report.findings)


def test_rendered_imports_run_like_the_originals(
    outcomes: dict[str, ImportOutcome], moto_endpoint: str
) -> None:
    client = boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs.create_queue(QueueName="cpl-import-notices")
    suffix = uuid.uuid4().hex[:8]
    runs: list[tuple[str, Any]] = []
    plan: list[tuple[str, dict[str, Any]]] = []
    for name, case in CASES.items():
        outcome = outcomes[name]
        target = outcome.environment.target("sfn")
        rendered = render(outcome.workflow, target, outcome.environment).document["definition"]
        machines = []
        for label, definition in (("original", corpus_definition(name)), ("rendered", rendered)):
            created = client.create_state_machine(
                name=f"{name}-{label}-{suffix}", definition=json.dumps(definition), roleArn=ROLE
            )
            machines.append(created["stateMachineArn"])
        for document in case["inputs"]:
            runs += [(machines[0], document), (machines[1], document)]
            plan.append((name, document))
    results = [_stable(r) for r in run_all(client, runs)]
    # the corpus exercises both outcomes: runs that succeed and runs that fail
    assert {r["status"] for r in results} == {"SUCCEEDED", "FAILED"}
    for index, (name, document) in enumerate(plan):
        original, rendered = results[2 * index], results[2 * index + 1]
        renamed = outcomes[name].report.renamed
        expected_trace = [renamed.get(state, state) for state in original["trace"]]
        where = f"{name} with {document}"
        assert original["status"] == rendered["status"], where
        assert original["error"] == rendered["error"], where
        if _concurrent(corpus_definition(name)):
            # the order between parallel branches or map iterations is the engine's choice
            assert sorted(expected_trace) == sorted(rendered["trace"]), where
        else:
            assert expected_trace == rendered["trace"], where
        assert original["trace"], f"{where}: no task ran"
        differs = CASES[name].get("differs")
        if not differs:
            assert original["output"] == rendered["output"], where
            continue
        # not exact: the outputs differ, and only where the report said they would
        changes = diff_documents(original["output"], rendered["output"])
        assert changes, f"{where}: the report says the import differs, the runs do not"
        for change in changes:
            assert set(change["path"].split("/")) & set(differs_segments(differs)), (
                where,
                change,
            )


def _concurrent(definition: dict[str, Any]) -> bool:
    """Whether the definition runs states concurrently (a Parallel or Map state)."""
    for state in definition.get("States", {}).values():
        if state.get("Type") in ("Parallel", "Map"):
            return True
    return False


def _stable(value: Any) -> Any:
    """Without what differs between any two calls (an SQS message's id)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k != "MessageId"}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def differs_segments(differs: dict[str, str]) -> set[str]:
    return {path.rsplit("/", 1)[-1] for path in differs}


def test_importing_what_cpl_renders_gives_the_same_definition_back(control_repo: Path) -> None:
    """The importer inverts the translator: re-importing a rendered definition is exact and
    renders it again unchanged (what `cpl import --unmanaged` relies on)."""
    for name in CASES:
        first = _import(control_repo, name)
        target = first.environment.target("sfn")
        rendered = render(first.workflow, target, first.environment).document["definition"]
        environment = load_environment(control_repo, "dev")
        again = prepare(
            control_repo,
            environment,
            rendered,
            "rendered",
            Naming(tenant="rt", name=name),
            default_name=name,
        )
        assert again.report.fidelity == "exact", (name, again.report.text(verbose=False))
        twice = render(again.workflow, target, again.environment).document["definition"]
        assert diff_documents(rendered, twice) == [], name


APPROVAL_SPEC = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: payout, tenant: rt, version: 2.0.1, owner: rt, labels: {runtime: stepfunctions}}
spec:
  start: request
  steps:
    - name: request
      type: task
      activity: prepare-payout
      next: sign-off
    - name: sign-off
      type: approval
      signal: approve
      timeout: 1h
      onTimeout: expired
      approvers: {roles: [finance]}
      next: pay
    - name: pay
      type: task
      activity: prepare-payout
      end: true
    - name: expired
      type: fail
      error: ApprovalExpired
"""


def test_a_rendered_approval_imports_as_the_approval(control_repo: Path) -> None:
    env_file = control_repo / "environments" / "dev.yaml"
    env_file.write_text(
        env_file.read_text("utf-8")
        + "      prepare-payout:\n"
        + '        stepfunctions: {resource: "arn:aws:lambda:us-east-1:123456789012:function:p"}\n'
    )
    environment = load_environment(control_repo, "dev")
    loaded = load_sources([decode("payout.yaml", APPROVAL_SPEC.encode())])
    assert loaded.ok, loaded.diagnostics
    target = environment.target("sfn")
    rendered = render(loaded.workflows[0].model, target, environment).document["definition"]
    again = prepare(
        control_repo,
        environment,
        rendered,
        "rendered",
        Naming(tenant="rt", name="payout", version="2.0.1"),
        default_name="payout",
    )
    assert again.report.fidelity == "exact", again.report.text()
    steps = {s["name"]: s for s in again.document["spec"]["steps"]}
    assert steps["sign-off"] == {
        "name": "sign-off",
        "type": "approval",
        "signal": "approve",
        "approvers": {"roles": ["finance"]},
        "timeout": "3600s",
        "onTimeout": "expired",
        "next": "pay",
    }
    twice = render(again.workflow, target, again.environment).document["definition"]
    assert diff_documents(rendered, twice) == []
