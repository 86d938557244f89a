"""A deployed workflow whose file becomes unreadable is not deleted from the engine.

End to end on the session's moto server: deploy, replace a workflow file by a broken link,
`cpl apply --yes` exits 1 naming the file, and the live state machine is still there.
"""

from __future__ import annotations

from pathlib import Path

import boto3

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import write_repo


def _machines(endpoint: str, tenant: str) -> list[str]:
    client = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    names = [m["name"] for m in client.list_state_machines()["stateMachines"]]
    return sorted(n for n in names if n.startswith(f"{tenant}-"))


def test_apply_keeps_a_live_workflow_whose_file_is_a_broken_link(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = write_repo(
        tmp_path / "repo",
        moto_endpoint,
        temporal_server.address,
        ("retail/inventory-sync", "health/appointment-reminders"),
    )
    assert repo.cpl("apply", "--env", "local", "--yes").code == 0
    tenant = repo.tenants["health"]
    assert _machines(moto_endpoint, tenant) == [f"{tenant}-appointment-reminders"]

    path = repo.file("health/appointment-reminders")
    path.unlink()
    path.symlink_to("appointment-reminders.yaml.moved")

    planned = repo.cpl("plan", "--env", "local")
    assert planned.code == 1
    assert "delete" not in planned.out
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 1
    output = applied.out + applied.err
    assert "workflows/health/appointment-reminders.yaml" in output and "CPL-S006" in output
    assert _machines(moto_endpoint, tenant) == [f"{tenant}-appointment-reminders"]
    assert len(repo.state()["resources"]) == 2
