"""`cpl worker`, `cpl run` and `cpl signal` against the session's real Temporal dev server.

The control repo is a copy of the examples with an environment whose temporal target points
at the dev server. `cpl worker` runs as a real subprocess (stopped with SIGINT, as Ctrl-C
does); the user activities are the scripted ones of the conftest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from controlplane.cli import cli, run
from controlplane.cli.runs import run_command, signal_command, worker_command
from controlplane.engines.stepfunctions.emulator import start_moto_server
from controlplane.engines.temporal.devserver import free_port
from tests.conftest import ROOT

from .conftest import SCRIPTS, Harness, Raise

pytestmark = pytest.mark.integration

TASK_QUEUE = "cpl-cli-test"
RETURN = {
    "returnId": "rt-9",
    "orderId": "o-9",
    "customerId": "c-9",
    "email": "ada@example.com",
    "reason": "damaged-in-transit",
    "refund": {"amount": 80, "currency": "EUR"},
}
APPROVAL = {"approved": True, "by": "lee@example.com", "roles": ["care-manager"]}


@pytest.fixture(scope="module", autouse=True)
def commands() -> Iterator[None]:
    """The commands on the real `cpl` group (so errors map to exit codes as in production)."""
    added = [c for c in (worker_command, run_command, signal_command) if c.name not in cli.commands]
    for command in added:
        cli.add_command(command)
    yield
    for command in added:
        cli.commands.pop(str(command.name))


def environment(address: str, **target: Any) -> str:
    """environments/local.yaml with its temporal target at `address` (namespace default)."""
    data = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
    data["metadata"]["name"] = target.pop("env", "test")
    data["spec"].pop("aws", None)  # no queue service: dead letters stay in the repo's spool
    for entry in data["spec"]["targets"]:
        if entry["engine"] == "temporal":
            entry.update(address=address, namespace="default", taskQueue=TASK_QUEUE, **target)
            # its workerMetrics port is fixed: workers of tests running side by side collide
            entry.pop("prometheus", None)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, harness: Harness) -> Path:
    root = tmp_path_factory.mktemp("cli-repo")
    shutil.copytree(ROOT / "workflows", root / "workflows")
    in_clear(root / "workflows")
    (root / "environments").mkdir()
    address = harness.client.service_client.config.target_host
    (root / "environments" / "test.yaml").write_text(environment(address))
    wide = environment(address, env="wide", select={})  # the temporal target takes everything
    (root / "environments" / "wide.yaml").write_text(wide)
    gone = environment(f"127.0.0.1:{free_port()}", env="unreachable")
    (root / "environments" / "unreachable.yaml").write_text(gone)
    SCRIPTS["finance-fx-rates-refresh-"] = {
        "FxFetchRates": lambda argument: {
            "maxMovePercent": 9.0 if argument["asOf"] == "bad-hour" else 0.4,
            "values": {"USD": 1.09},
        }
    }
    SCRIPTS["retail-returns-processing-"] = {"ReturnsInspect": {"resellable": True}}
    return root


def in_clear(folder: Path) -> None:
    """The examples without `security.encryption`: their activities run on the shared test
    workers, which hold no payload codec (sealed runs: tests/encryption)."""
    for path in folder.rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        security = document.get("spec", {}).get("security") or {}
        if security.pop("encryption", None) is not None:
            path.write_text(yaml.safe_dump(document, sort_keys=False))


def start_worker(
    repo: Path, env: str, target: str, task_queue: str, namespace: str
) -> subprocess.Popen[str]:
    """`cpl worker --env ENV --target TARGET` in a subprocess, once it serves."""
    script = (
        "import sys\n"
        "from controlplane.cli import cli, run\n"
        "from controlplane.cli.runs import worker_command\n"
        "cli.add_command(worker_command)\n"
        "sys.exit(run(sys.argv[1:]))\n"
    )
    args = ["worker", "--env", env, "--target", target, "--repo", str(repo)]
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    assert f"task queue {task_queue} of namespace {namespace}" in banner, banner
    return process


@pytest.fixture(scope="module")
def worker(repo: Path, activity_workers: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`cpl worker --env test --target temporal-local` in a subprocess."""
    process = start_worker(repo, "test", "temporal-local", TASK_QUEUE, "default")
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def cpl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_wait_reports_status_output_and_trace(
    repo: Path, worker: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cpl(
        capsys,
        "run",
        "finance/fx-rates-refresh",
        "--env",
        "test",
        "--repo",
        str(repo),
        "--input",
        '{"asOf": "2026-05-04T10:00:00Z"}',
        "--wait",
        "--timeout",
        "30s",
        "--format",
        "json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["runId"].startswith("finance-fx-rates-refresh-")
    assert {k: report[k] for k in ("workflow", "target", "engine", "status", "error")} == {
        "workflow": "finance/fx-rates-refresh",
        "target": "temporal-local",
        "engine": "temporal",
        "status": "succeeded",
        "error": None,
    }
    assert report["trace"] == ["fetch-rates", "rates-plausible", "store-rates"]
    # store-rates has no resultPath: its result (the echoed parameters) is the new document
    assert report["output"] == {"asOf": "2026-05-04T10:00:00Z", "rates": {"USD": 1.09}}


def test_run_that_fails_exits_1_with_the_error_and_trace(
    repo: Path, worker: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    input_file = repo / "input.json"
    input_file.write_text('{"asOf": "bad-hour"}')
    code, out, _ = cpl(
        capsys,
        "run",
        "workflows/finance/fx-rates-refresh.yaml",  # a file works as well as tenant/name
        "--env",
        "test",
        "--repo",
        str(repo),
        "--input",
        f"@{input_file}",
        "--wait",
        "--timeout",
        "30s",
        "--format",
        "json",
    )
    assert code == 1
    report = json.loads(out)
    assert report["status"] == "failed"
    assert report["error"]["error"] == "ImplausibleRates"
    assert report["trace"] == ["fetch-rates", "rates-plausible", "rates-implausible"]
    spooled = (repo / ".cpl" / "dlq" / "test" / "spool.jsonl").read_text().splitlines()
    letters = [json.loads(json.loads(line)["message"]) for line in spooled]
    assert any(letter["data"]["runId"] == report["runId"] for letter in letters)


def test_signal_approves_a_waiting_run(
    repo: Path, worker: subprocess.Popen[str], harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cpl(
        capsys,
        "run",
        "retail/returns-processing",
        "--env",
        "test",
        "--repo",
        str(repo),
        "--input",
        json.dumps(RETURN),
    )
    assert code == 0, err
    assert "started retail/returns-processing on temporal-local (temporal)" in out
    run_id = out.split("run id: ")[1].strip()
    handle = harness.client.get_workflow_handle(run_id)
    harness.wait_status(handle, lambda s: "manager-approval" in s["current"])

    signal_args = ["--env", "test", "--target", "temporal-local", "--repo", str(repo)]
    approval = json.dumps(APPROVAL)
    code, out, err = cpl(capsys, "signal", run_id, "refund-approval", approval, *signal_args)
    assert code == 0, err
    assert f"sent refund-approval to run {run_id}" in out
    result = harness.result(handle)
    assert result["trace"][-3:] == ["manager-approval", "issue-refund", "notify-refunded"]

    # the run has finished: signalling it again is a clear error
    code, _, err = cpl(capsys, "signal", run_id, "refund-approval", approval, *signal_args)
    assert code == 1
    assert f"no running run '{run_id}'" in err
    assert "unknown or the run has finished" in err


def test_signal_to_an_unknown_run_is_a_clear_error(
    repo: Path, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--env", "test", "--target", "temporal-local", "--repo", str(repo)]
    code, _, err = cpl(capsys, "signal", "no-such-run", "pause", *args)
    assert code == 1
    assert "no running run 'no-such-run' in namespace default" in err
    # skip needs a step; pause takes none (usage errors, exit 2)
    assert cpl(capsys, "signal", "no-such-run", "skip", *args)[0] == 2
    assert cpl(capsys, "signal", "no-such-run", "pause", '"x"', *args)[0] == 2


def test_unknown_workflow_exits_1_with_a_suggestion(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cpl(
        capsys, "run", "retail/order-fulfilment", "--env", "test", "--repo", str(repo)
    )
    assert code == 1
    assert "no workflow 'retail/order-fulfilment'" in err
    assert "retail/order-fulfillment" in err  # did you mean


def test_several_targets_need_target(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cpl(
        capsys, "run", "retail/order-fulfillment", "--env", "wide", "--repo", str(repo)
    )
    assert code == 1
    assert "several targets" in err and "sfn-local, temporal-local" in err
    code, _, err = cpl(
        capsys,
        "run",
        "retail/order-fulfillment",
        "--env",
        "test",
        "--target",
        "temporal-local",
        "--repo",
        str(repo),
    )
    assert code == 1
    assert "does not select workflow 'retail/order-fulfillment'" in err


def test_unreachable_server_names_the_address(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    args = ["--env", "unreachable", "--target", "temporal-local", "--repo", str(repo)]
    code, _, err = cpl(capsys, "worker", *args)
    assert code == 1
    assert "cannot reach the Temporal server at 127.0.0.1:" in err
    assert time.monotonic() - started < 15


# --- run errors: engine error text is redacted by the workflow's classification ----------------

# What a careless caller passes to a phi workflow; engines echo it in their error text.
PATIENT = {
    "firstName": "Ada",
    "lastName": "Patient",
    "dateOfBirth": "1980-02-03",
    "ssn": "123-45-6789",
    "card": "4111111111111111",
    "password": "hunter2-pw",
}
LEAKS = ("123-45-6789", "4111111111111111", "hunter2-pw", "Ada", "1980-02-03")


def _register_rejects(argument: dict[str, Any]) -> Raise:
    """The registry refuses, quoting the request (as real services do in their messages)."""
    return Raise("RegistrationRejected", f"cannot register {json.dumps(argument)}")


def test_temporal_run_error_of_a_phi_workflow_does_not_echo_the_input(
    repo: Path, worker: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    SCRIPTS["health-patient-intake-"] = {"PatientsRegister": _register_rejects}
    run_input = {
        "intakeId": "7d444840-9dc0-11d1-b245-5ffdce74fad2",
        "patient": PATIENT,
        "consents": ["treatment"],
        "clinicId": "c-1",
    }
    args = ["run", "health/patient-intake", "--env", "test", "--repo", str(repo)]
    args += ["--input", json.dumps(run_input), "--wait", "--timeout", "30s"]
    code, out, err = cpl(capsys, *args, "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["status"] == "failed"
    assert report["error"]["error"] == "RegistrationRejected"  # the error type stays
    assert report["error"]["cause"].startswith("[redacted: ")
    assert report["trace"][0] == "register-patient"  # so does where it failed
    code, text, err = cpl(capsys, *args, "--format", "text")
    assert code == 1
    for value in LEAKS:
        assert value not in out + text + err


def test_worker_stops_cleanly_on_ctrl_c(worker: subprocess.Popen[str]) -> None:
    assert worker.poll() is None
    worker.send_signal(signal.SIGINT)
    assert worker.wait(20) == 0
    assert worker.stderr is not None
    assert "worker stopped" in worker.stderr.read()


# --- Step Functions targets (moto server, real ASL execution) --------------------------------


@pytest.fixture(scope="module")
def moto(repo: Path) -> Iterator[str]:
    """A moto server executing state machines; an environment `sfn` pointing at it."""
    # Its own server (not the session's): other modules deploy the same example names there.
    server = start_moto_server()
    endpoint = server.url
    try:
        data = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
        data["metadata"]["name"] = "sfn"
        for entry in data["spec"]["targets"]:
            if entry["engine"] == "stepfunctions":
                entry["endpoint"] = endpoint
        (repo / "environments" / "sfn.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        yield endpoint
    finally:
        server.stop()


def test_stepfunctions_run_not_deployed(
    repo: Path, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cpl(
        capsys, "run", "retail/inventory-sync", "--env", "sfn", "--repo", str(repo), "--wait"
    )
    assert code == 1
    assert "'retail/inventory-sync' is not deployed to sfn-local: run cpl apply" in err


def test_stepfunctions_run_reports_output_and_trace_from_the_history(
    repo: Path, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-written state machine stands in for `cpl apply` (not part of this module)."""
    client = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    definition = {
        "StartAt": "list-changed-skus",
        "States": {
            "list-changed-skus": {
                "Type": "Pass",
                "Result": {"count": 0},
                "ResultPath": "$.changes",
                "Next": "any-changes",
            },
            "any-changes": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.changes.count", "NumericGreaterThan": 0, "Next": "sync"}
                ],
                "Default": "nothing-to-do",
            },
            "sync": {"Type": "Pass", "End": True},
            "nothing-to-do": {"Type": "Succeed"},
        },
    }
    client.create_state_machine(
        name="retail-inventory-sync",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/cpl-sfn",
    )
    code, out, err = cpl(
        capsys,
        "run",
        "retail/inventory-sync",
        "--env",
        "sfn",
        "--repo",
        str(repo),
        "--input",
        '{"lastRun": "2026-05-04T10:00:00Z"}',
        "--wait",
        "--timeout",
        "20s",
        "--format",
        "json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["engine"] == "stepfunctions" and report["target"] == "sfn-local"
    assert report["runId"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:retail-inventory-sync:"
    )
    assert report["status"] == "succeeded"
    assert report["trace"] == ["list-changed-skus", "any-changes", "nothing-to-do"]
    assert report["output"] == {"lastRun": "2026-05-04T10:00:00Z", "changes": {"count": 0}}


def test_signal_and_worker_need_an_engine_that_has_them(
    repo: Path, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--env", "sfn", "--target", "sfn-local", "--repo", str(repo)]
    code, _, err = cpl(capsys, "signal", "some-run", "pause", *args)
    assert code == 1
    assert "is a stepfunctions target; its runs take no signals" in err
    assert "cpl signal needs a temporal target" in err
    code, _, err = cpl(capsys, "worker", *args)
    assert code == 1
    assert "is a stepfunctions target; cpl worker serves temporal targets" in err


def test_stepfunctions_run_errors_redacted_by_classification(
    repo: Path, moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hand-written state machines (a Fail state whose cause is taken from the input) stand
    in for deployed ones: the cause of a phi or confidential workflow is redacted, an
    internal one's keeps its text but not its secrets."""
    client = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    # an internal workflow of its own (the module's repo is shared with other tests)
    internal_repo = tmp_path / "internal"
    shutil.copytree(repo / "environments", internal_repo / "environments")
    spec = (ROOT / "workflows/retail/inventory-sync.yaml").read_text()
    (internal_repo / "workflows/retail").mkdir(parents=True)
    (internal_repo / "workflows/retail/leak-check.yaml").write_text(
        spec.replace("name: inventory-sync", "name: leak-check", 1)
    )
    definition = {
        "StartAt": "reject",
        "States": {"reject": {"Type": "Fail", "Error": "Rejected", "CausePath": "$.detail"}},
    }
    for name in ("health-appointment-reminders", "finance-vendor-payout", "retail-leak-check"):
        client.create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/cpl-sfn",
        )
    detail = f"bad request {json.dumps(PATIENT)} auth=Bearer abcdefghijklmnop0123456789"
    # valid for vendor-payout's input.schema too (cpl run refuses an input it does not match)
    run_input = json.dumps({"detail": detail, "batchId": "PB-000001", "approvedBy": "cfo"})

    def failed(workflow: str, root: Path = repo) -> dict[str, Any]:
        args = ["run", workflow, "--env", "sfn", "--repo", str(root), "--input", run_input]
        code, out, err = cpl(capsys, *args, "--wait", "--timeout", "20s", "--format", "json")
        assert code == 1, err
        report: dict[str, Any] = json.loads(out)
        assert report["status"] == "failed" and report["error"]["error"] == "Rejected"
        return report

    for workflow in ("health/appointment-reminders", "finance/vendor-payout"):
        report = failed(workflow)
        assert report["error"]["cause"].startswith("[redacted: ")
        for value in LEAKS:
            assert value not in json.dumps(report)

    cause = failed("retail/leak-check", internal_repo)["error"]["cause"]
    assert cause.startswith("bad request") and "123-45-6789" in cause  # internal data stays
    assert "abcdefghijklmnop0123456789" not in cause and "***sha256:" in cause
