"""Two workflows with the same engine name are refused before anything is deployed.

End to end on the session's moto server: `retail/inventory-sync` and `retail-inventory/sync`
would both be the state machine `retail-inventory-sync`; `cpl apply --yes` exits 1 naming
both, creates no state machine and records nothing in the state.
"""

from __future__ import annotations

from pathlib import Path

import boto3

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import write_repo


def test_apply_refuses_workflows_whose_engine_names_collide(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    repo = write_repo(
        tmp_path / "repo", moto_endpoint, temporal_server.address, ("retail/price-feed-export",)
    )
    tenant = f"t{repo.namespace[4:]}"  # unique per test: the moto server is shared
    source = Path(__file__).resolve().parents[2] / "workflows/retail/inventory-sync.yaml"
    text = source.read_text(encoding="utf-8")
    first = text.replace("tenant: retail", f"tenant: {tenant}", 1)
    second = text.replace("tenant: retail", f"tenant: {tenant}-inventory", 1)
    second = second.replace("name: inventory-sync", "name: sync", 1)
    (repo.root / f"workflows/{tenant}").mkdir(parents=True)
    (repo.root / f"workflows/{tenant}/inventory-sync.yaml").write_text(first)
    (repo.root / f"workflows/{tenant}-inventory").mkdir(parents=True)
    (repo.root / f"workflows/{tenant}-inventory/sync.yaml").write_text(second)

    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 1
    output = applied.out + applied.err
    assert output.count("CPL-S029") == 2
    assert f"{tenant}/inventory-sync" in output and f"{tenant}-inventory/sync" in output
    client = boto3.client(
        "stepfunctions",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    names = [m["name"] for m in client.list_state_machines()["stateMachines"]]
    assert not [name for name in names if name.startswith(f"{tenant}-")]
    assert repo.state()["resources"] == []
