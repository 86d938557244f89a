"""`cpl serve events` on the real Temporal dev server with cpl's interpreter worker: a POSTed
CloudEvent (structured or binary mode) starts a run with the mapped input that completes, the
same event twice starts one run, bad requests get clear 4xx answers, authenticated triggers
need the bearer token, and the log carries no event data.

The receiver runs as its own process (`python -m controlplane serve events --port 0`), as a
user starts it; the interpreter worker is the session's (tests/runtime/conftest.py)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlplane.engines.temporal.devserver import DevServer
from tests.runtime.conftest import INTERPRETER_QUEUE, Harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token-for-tests"
SENTINEL = "sku-sentinel-4711"  # data that must never reach the log

ENVIRONMENT = """apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: dev}}
spec:
  tier: development
  targets:
    - name: temporal-dev
      engine: temporal
      address: {address}
      namespace: {namespace}
      taskQueue: {queue}
"""

WORKFLOW = """apiVersion: cpl.dev/v1
kind: Workflow
metadata: {{name: order-intake, tenant: {tenant}, version: 1.0.0, owner: team-orders}}
spec:
  timeout: 1m
  start: done
  steps:
    - {{name: done, type: succeed}}
  triggers:
    - name: order-placed
      source: com.acme.shop
      type: com.acme.order.placed
      filters: {{channel: web, $.data.sku: {{prefix: sku-}}}}
      input: {{orderId: $.data.id, total: $.data.total, shop: $.subject}}
    - name: refund
      source: com.acme.bank
      type: com.acme.refund.requested
      authenticated: true
"""


@dataclass
class Receiver:
    url: str
    tenant: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def post(
        self, body: bytes, headers: dict[str, str], path: str = "/"
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def event(self, event: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/cloudevents+json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.post(json.dumps(event).encode(), headers)


def _event(**changes: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "com.acme.shop",
        "type": "com.acme.order.placed",
        "subject": "shop-7",
        "channel": "web",
        "datacontenttype": "application/json",
        "data": {"id": "o-1", "total": 42.5, "sku": SENTINEL},
    }
    event.update(changes)
    return event


@pytest.fixture(scope="module")
def receiver(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: DevServer, harness: Harness
) -> Iterator[Receiver]:
    repo = tmp_path_factory.mktemp("events-repo")
    tenant = f"ev{uuid.uuid4().hex[:6]}"
    (repo / "environments").mkdir()
    (repo / "environments/dev.yaml").write_text(
        ENVIRONMENT.format(
            address=temporal_server.address,
            namespace=temporal_server.namespace,
            queue=INTERPRETER_QUEUE,
        )
    )
    (repo / "workflows" / tenant).mkdir(parents=True)
    (repo / "workflows" / tenant / "order-intake.yaml").write_text(WORKFLOW.format(tenant=tenant))
    command = [sys.executable, "-m", "controlplane", "serve", "events", "--env", "dev"]
    command += ["--port", "0", "--token-env", "CPL_EVENTS_TOKEN", "--repo", str(repo)]
    environment = {**os.environ, "CPL_EVENTS_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=environment
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # the announcement, or why it could not start
    assert "listening on http://" in first, first + process.stderr.read()
    url = first.split("listening on ", 1)[1].split()[0].rstrip("/")
    served = Receiver(url, tenant, process, [first])
    reader = threading.Thread(
        target=lambda: served.log.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        yield served
    finally:
        process.terminate()
        process.wait(15)
        reader.join(5)


def _result(harness: Harness, run_id: str) -> Any:
    return harness.run(harness.client.get_workflow_handle(run_id).result(), 30)


def _runs_with_id(harness: Harness, run_id: str) -> int:
    async def count() -> int:
        found = harness.client.list_workflows(f"WorkflowId = '{run_id}'")
        return len([execution async for execution in found])

    # the visibility store is eventually consistent: wait for the first run to show
    deadline = time.monotonic() + 10
    while True:
        number = harness.run(count())
        if number or time.monotonic() > deadline:
            return number
        time.sleep(0.1)


def test_an_event_starts_one_run_with_the_mapped_input(
    receiver: Receiver, harness: Harness
) -> None:
    event = _event()
    status, answer = receiver.event(event)
    assert status == 202, answer
    run_id = f"{receiver.tenant}-order-intake-{event['id']}"
    assert answer == {
        "id": event["id"],
        "runs": [
            {
                "workflow": f"{receiver.tenant}/order-intake",
                "trigger": "order-placed",
                "target": "temporal-dev",
                "runId": run_id,
                "status": "started",
            }
        ],
    }
    result = _result(harness, run_id)
    assert result["output"] == {"orderId": "o-1", "total": 42.5, "shop": "shop-7"}

    # Redelivered (same id), after the run closed: no second run.
    status, again = receiver.event(event)
    assert status == 202
    assert [run["status"] for run in again["runs"]] == ["duplicate"]
    assert _runs_with_id(harness, run_id) == 1


def test_binary_mode_events_start_runs_too(receiver: Receiver, harness: Harness) -> None:
    event_id = uuid.uuid4().hex
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "com.acme.shop",
        "ce-type": "com.acme.order.placed",
        "ce-subject": "shop-9",
        "ce-channel": "web",
        "Content-Type": "application/json",
    }
    body = json.dumps({"id": "o-2", "total": 3, "sku": "sku-1"}).encode()
    status, answer = receiver.post(body, headers)
    assert status == 202, answer
    (run,) = answer["runs"]
    assert _result(harness, run["runId"])["output"] == {
        "orderId": "o-2",
        "total": 3,
        "shop": "shop-9",
    }


def test_events_that_match_no_trigger_start_nothing(receiver: Receiver) -> None:
    for event in (_event(channel="phone"), _event(type="com.acme.other"), _event(data={})):
        status, answer = receiver.event(event)
        assert (status, answer["runs"]) == (202, []), event
        assert answer["message"] == "the event matched no trigger"


def test_authenticated_triggers_need_the_bearer_token(receiver: Receiver, harness: Harness) -> None:
    refund = _event(source="com.acme.bank", type="com.acme.refund.requested", data={"n": 1})
    status, answer = receiver.event(refund)
    assert status == 401
    assert "authenticated sources only" in answer["error"]
    status, answer = receiver.event(refund, token="wrong")
    assert (status, answer) == (401, {"error": "unknown credentials"})
    status, answer = receiver.event(refund, token=TOKEN)
    assert status == 202, answer
    (run,) = answer["runs"]
    assert _result(harness, run["runId"])["output"] == {"n": 1}  # no mapping: the data


@pytest.mark.parametrize(
    ("body", "headers", "path", "status", "says"),
    [
        (b"{not json", {"Content-Type": "application/cloudevents+json"}, "/", 400, "not JSON"),
        (b"[1, 2]", {"Content-Type": "application/cloudevents+json"}, "/", 400, "JSON object"),
        (
            json.dumps({k: v for k, v in _event().items() if k != "id"}).encode(),
            {"Content-Type": "application/cloudevents+json"},
            "/",
            400,
            "lacks required attribute(s): id",
        ),
        (
            json.dumps(_event(id="x" * 201)).encode(),
            {"Content-Type": "application/cloudevents+json"},
            "/",
            400,
            "at most 200 characters",
        ),
        (b"{}", {"Content-Type": "application/json"}, "/", 415, "send a CloudEvent"),
        (
            b"hello",
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "s",
                "ce-type": "t",
                "Content-Type": "text/plain",
            },
            "/",
            415,
            "must be JSON",
        ),
        (b"{}", {"Content-Type": "application/cloudevents+json"}, "/hooks", 404, "POST events"),
    ],
)
def test_bad_requests_get_clear_4xx_answers(
    receiver: Receiver,
    body: bytes,
    headers: dict[str, str],
    path: str,
    status: int,
    says: str,
) -> None:
    answered, answer = receiver.post(body, headers, path)
    assert answered == status
    assert says in answer["error"]


def test_oversized_events_are_refused_unread(receiver: Receiver) -> None:
    # Headers announcing more than 1 MiB, no body sent: the answer comes without reading it.
    host, port = receiver.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"
            b"Content-Length: 1048577\r\n\r\n{"
        )
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert response.status == 413
        answer = json.loads(response.read())
    assert answer == {"error": "the event is larger than 1048576 bytes"}


def test_the_log_names_runs_but_never_event_data(receiver: Receiver) -> None:
    status, _ = receiver.event(_event())
    assert status == 202
    deadline = time.monotonic() + 5
    while not any("run(s) started" in line for line in receiver.log[1:]):
        assert time.monotonic() < deadline, receiver.log
        time.sleep(0.05)
    text = "".join(receiver.log)
    assert "started " + receiver.tenant in text
    assert SENTINEL not in text and "o-1" not in text and TOKEN not in text
