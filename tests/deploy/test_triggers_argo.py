"""`spec.triggers` on Argo with `delivery: gitops`: apply writes the EventSource and Sensor
next to the WorkflowTemplate, drift sees a hand edit of them, and removing the triggers
deletes their file. (No Kubernetes or Argo Events controller runs here: the manifests are
checked against Argo Events' schema, tests/translate/test_triggers.py.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import write_repo

WORKFLOW = """apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: order-intake
  tenant: {tenant}
  version: 1.0.0
  owner: team-orders
  labels: {{kind: batch}}
spec:
  input:
    schema: {{type: object, required: [orderId], properties: {{orderId: {{type: string}}}}}}
  timeout: 10m
  retention: 7d
  start: reserve
  steps:
    - name: reserve
      type: task
      activity: inventory.reserve
      idempotencyKey: $.orderId
      retry: {{maxAttempts: 3, initialInterval: 1s, backoffRate: 2, maxInterval: 30s, jitter: full}}
      timeout: 1m
      end: true
  triggers:
    - name: order-placed
      source: com.acme.shop
      type: com.acme.order.placed
      filters: {{channel: web}}
      input: {{orderId: $.data.id}}
"""


def test_gitops_writes_drifts_and_deletes_the_event_manifests(
    tmp_path: Path, moto_endpoint: str, temporal_server: DevServer
) -> None:
    (tmp_path / "repo" / "workflows").mkdir(parents=True)
    repo = write_repo(tmp_path / "repo", moto_endpoint, temporal_server.address, [])
    tenant = "tr" + repo.namespace.removeprefix("cpl-")
    path = repo.root / "workflows" / tenant / "order-intake.yaml"
    path.parent.mkdir()
    path.write_text(WORKFLOW.format(tenant=tenant))
    repo.commit("order intake")

    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    folder = repo.root / "deploy" / "argo" / "workflows"
    events_file = folder / f"{tenant}-order-intake.events.yaml"
    assert (folder / f"{tenant}-order-intake.yaml").exists()
    source, sensor = yaml.safe_load_all(events_file.read_text())
    assert (source["kind"], sensor["kind"]) == ("EventSource", "Sensor")
    assert source["spec"]["webhook"]["order-placed"]["endpoint"] == (
        f"/{tenant}/order-intake/order-placed"
    )
    assert repo.cpl("plan", "--env", "local").code == 0  # converged

    # A hand edit of the Sensor (a filter widened) is drift.
    edited = events_file.read_text().replace("^web$", ".*")
    events_file.write_text(edited)
    drift = repo.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 5, drift.out + drift.err
    (item,) = [i for i in drift.json()["items"] if i.get("resource") == f"{tenant}-order-intake"]
    assert item["status"] == "modified"
    assert any(d["path"].startswith("/events/1/spec/dependencies/0/filters") for d in item["diff"])

    # Removing the triggers (a new version) removes the event manifests on apply.
    text = path.read_text()
    path.write_text(text[: text.index("  triggers:")].replace("1.0.0", "1.0.1"))
    applied = repo.cpl("apply", "--env", "local", "--yes")
    assert applied.code == 0, applied.out + applied.err
    assert not events_file.exists()
    assert (folder / f"{tenant}-order-intake.yaml").exists()
    assert repo.cpl("plan", "--env", "local").code == 0
