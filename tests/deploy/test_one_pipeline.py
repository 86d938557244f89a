"""`cpl check`, `cpl plan` and `cpl compat` see one desired state (controlplane/pipeline.py).

Two Temporal workflows of one namespace ask for different retentions: the conflict is one
finding, reported alike by check and plan (which also plans the namespace once, leaving its
retention alone) and named once by compat.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ControlRepo, write_repo

pytestmark = pytest.mark.integration


@pytest.fixture
def conflicting(tmp_path: Path, moto_endpoint: str, temporal_server: DevServer) -> ControlRepo:
    repo = write_repo(
        tmp_path / "repo",
        moto_endpoint,
        temporal_server.address,
        ["finance/month-end-close", "retail/returns-processing", "retail/inventory-sync"],
    )
    repo.edit("retail/returns-processing", "retention: 30d", "retention: 14d")
    return repo


def test_check_and_plan_report_the_same_findings(conflicting: ControlRepo) -> None:
    checked = conflicting.cpl("check", "--env", "local", "--format", "json")
    planned = conflicting.cpl("plan", "--env", "local", "--format", "json")
    # a warning on a development environment: check passes, plan has changes
    assert (checked.code, planned.code) == (0, 4), (checked.out, planned.out)
    policy = planned.json()["policy"]
    assert policy["results"] == checked.json()["results"]
    assert policy["summary"] == checked.json()["summary"]

    retention = [
        (result["workflow"], violation["message"])
        for result in policy["results"]
        for violation in result["violations"]
        if violation["rule"] == "CPL-P020" and "retention" in violation["message"]
    ]
    workflows = {
        conflicting.workflow(k) for k in ("finance/month-end-close", "retail/returns-processing")
    }
    assert {workflow for workflow, _ in retention} == workflows
    assert len({message for _, message in retention}) == 1  # one finding, worded once


def test_the_namespace_is_planned_once_without_picking_a_retention(
    conflicting: ControlRepo,
) -> None:
    planned = conflicting.cpl("plan", "--env", "local", "--format", "json")
    assert planned.code == 4, planned.out + planned.err
    shared = [c for c in planned.json()["changes"] if c["workflow"].startswith("shared:namespace/")]
    assert [(c["workflow"], c["action"]) for c in shared] == [
        (f"shared:namespace/{conflicting.namespace}", "create")
    ]

    assert conflicting.cpl("apply", "--env", "local", "--yes").code == 0
    again = conflicting.cpl("plan", "--env", "local")
    assert again.code == 0, again.out  # converged: no retention flip-flop
    # the session's engines hold other tests' resources too: only this repo's tenants
    tenants = [arg for t in conflicting.tenants.values() for arg in ("--tenant", t)]
    drift = conflicting.cpl("drift", "--env", "local", "--format", "json", *tenants)
    assert drift.code == 0 and json.loads(drift.out)["drifted"] is False


def test_compat_names_the_conflict_once(conflicting: ControlRepo) -> None:
    compat = conflicting.cpl("compat")
    assert compat.code == 0
    lines = [line for line in compat.out.splitlines() if "cannot honour them all" in line]
    assert len(lines) == 1, compat.out
