"""Checkov's Argo Workflows checks pass on what cpl renders: CKV_ARGO_1 (pods do not use the
default ServiceAccount) and CKV_ARGO_2 (pods run as non-root), on the Argo manifests of every
example workflow and of a generated corpus (bench/corpus.py), in one Checkov run.

Checkov scans the files whose `kind` starts with `Workflow` (a Workflow or WorkflowTemplate):
it does not read CronWorkflows, whose pods CPL-P021 checks under `spec.workflowSpec`.

Checkov 3.3.30 is installed from PyPI into a virtualenv of its own (not a dependency of cpl),
in the repo's ignored bench/out/, once per machine. Only an unreachable PyPI skips the test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench import corpus
from bench.checkov import CHECKOV_VERSION, INSTALL_SECONDS, InstallFailed, install_checkov
from controlplane.engines import render
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment, load_workflows
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CORPUS_SIZE = 40
SCAN_SECONDS = 300
_UNREACHABLE = (
    "Could not find a version that satisfies",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
)


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The `checkov` program of the virtualenv bench/checkov.py keeps in bench/out/ (made on
    first use, reused by later runs on this machine)."""
    try:
        return install_checkov()
    except subprocess.TimeoutExpired:
        pytest.fail(f"pip install checkov=={CHECKOV_VERSION} took longer than {INSTALL_SECONDS}s")
    except InstallFailed as failed:
        if any(sign in failed.output for sign in _UNREACHABLE):
            pytest.skip(f"PyPI is unreachable, cannot install Checkov: {failed.output[-300:]}")
        pytest.fail(f"pip install checkov=={CHECKOV_VERSION} failed:\n{failed.output[-2000:]}")


def _write(artifacts_dir: Path, environment: Environment, workflows: list) -> int:
    """Render `workflows` for the environment's Argo target into `artifacts_dir`; how many."""
    target = next(t for t in environment.spec.targets if t.engine == "argo")
    count = 0
    for workflow in workflows:
        artifact = render(workflow, target, environment)
        for name, text in artifact.files.items():
            path = artifacts_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        count += 1
    return count


def test_checkov_finds_no_default_service_account_and_no_root_pods(
    checkov: Path, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    examples = [w.model for w in load_workflows(ROOT).workflows]
    written = _write(manifests / "examples", load_environment(ROOT, "local"), examples)

    generated = tmp_path / "corpus"
    corpus.generate(generated, CORPUS_SIZE)
    loaded = load_workflows(generated)
    assert not [d for d in loaded.diagnostics if d.severity == "error"]
    written += _write(
        manifests / "corpus",
        load_environment(generated, "local"),
        [w.model for w in loaded.workflows],
    )
    assert written == len(examples) + CORPUS_SIZE
    templates = {
        str(path)
        for path in manifests.rglob("*.yaml")
        if path.read_text(encoding="utf-8").find("\nkind: WorkflowTemplate\n") >= 0
    }
    assert len(templates) >= 10  # examples and corpus both have unscheduled workflows

    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(checkov), "-d", str(manifests), "--framework", "argo_workflows", "-o", "json"],
        env={**environment, "BC_SKIP_MAPPING": "TRUE"},  # no call to the vendor's API
        capture_output=True,
        text=True,
        timeout=SCAN_SECONDS,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    results = report["results"] if isinstance(report, dict) else report[0]["results"]
    failed = [
        (check["check_id"], check["file_path"])
        for check in results["failed_checks"]
        if check["check_id"] in ("CKV_ARGO_1", "CKV_ARGO_2")
    ]
    assert failed == []
    passed = {check["check_id"] for check in results["passed_checks"]}
    assert {"CKV_ARGO_1", "CKV_ARGO_2"} <= passed  # the checks ran on the manifests
    scanned = {
        check["file_abs_path"]
        for check in results["passed_checks"]
        if check["check_id"] in ("CKV_ARGO_1", "CKV_ARGO_2")
    }
    assert scanned == templates  # every WorkflowTemplate, by both checks
