"""`cpl worker` and `cpl run` with payload offload, as a user runs them: the worker is a real
subprocess configured from the control repo, `cpl run --wait` reads the input from a file and
reports the whole (offloaded) result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controlplane.cli import cli, run
from controlplane.cli.runs import run_command
from controlplane.engines.temporal.devserver import DevServer
from tests.conftest import ROOT

from .conftest import MIB, Offload, environment_document, workflow_document

pytestmark = pytest.mark.integration

TASK_QUEUE = "cpl-offload-cli"
BIG = 3 * MIB


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: DevServer, moto_endpoint: str
) -> Path:
    root = tmp_path_factory.mktemp("offload-repo")
    (root / "workflows" / "retail").mkdir(parents=True)
    (root / "environments").mkdir()
    document = workflow_document("bulk-export", {"store": "artifacts", "threshold": "1MiB"})
    (root / "workflows" / "retail" / "bulk-export.yaml").write_text(yaml.safe_dump(document))
    env = environment_document(
        moto_endpoint, temporal_server.address, temporal_server.namespace, task_queue=TASK_QUEUE
    )
    (root / "environments" / "offload.yaml").write_text(yaml.safe_dump(env))
    return root


@pytest.fixture(scope="module")
def worker(repo: Path, offload: Offload) -> Iterator[subprocess.Popen[str]]:
    """`cpl worker --env offload --target temporal-offload` in a subprocess (the activities
    run in the `offload` fixture's worker, with `claim_check_converter`)."""
    script = (
        "import sys\n"
        "from controlplane.cli import cli, run\n"
        "from controlplane.cli.runs import worker_command\n"
        "cli.add_command(worker_command)\n"
        "sys.exit(run(sys.argv[1:]))\n"
    )
    args = ["worker", "--env", "offload", "--target", "temporal-offload", "--repo", str(repo)]
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    assert f"task queue {TASK_QUEUE}" in banner, banner
    yield process
    process.send_signal(signal.SIGINT)
    process.wait(20)


def test_cpl_run_with_an_input_above_the_limit_reports_the_whole_result(
    repo: Path,
    worker: subprocess.Popen[str],
    offload: Offload,
    capsys: pytest.CaptureFixture[str],
) -> None:
    input_file = repo / "input.json"
    input_file.write_text(json.dumps({"blob": "c" * BIG, "mib": 3}))
    added = run_command.name not in cli.commands
    if added:
        cli.add_command(run_command)
    try:
        where = ["--env", "offload", "--repo", str(repo)]
        wait = ["--wait", "--timeout", "60s", "--format", "json"]
        code = run(["run", "retail/bulk-export", *where, "--input", f"@{input_file}", *wait])
    finally:
        if added:
            cli.commands.pop(str(run_command.name))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["status"] == "succeeded", report["error"]
    assert report["trace"] == ["grow", "measure"]
    assert report["output"]["measured"] == {"grown": BIG, "input": BIG}
    assert len(report["output"]["grown"]["blob"]) == BIG
    assert any(size > 2 * MIB for size in offload.claim_checks().values())
