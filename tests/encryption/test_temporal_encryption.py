"""Payload encryption on the real Temporal dev server, with KMS on moto and a local key ring.

What a user would notice: runs of encrypting workflows work end to end (their activities on
cpl's worker and on a worker of their own), the history the server keeps holds neither the
input nor the result in clear, rotation keeps old runs readable, `cpl keys verify` finds a
payload that no key opens, and bad bindings are clear errors.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.converter import WorkflowSerializationContext

from controlplane.engines.temporal.codec import CLAIM_CHECK_ENCODING, ClaimCheckCodec, Store
from controlplane.engines.temporal.encryption import (
    ENCRYPTED_ENCODING,
    Encrypting,
    EncryptionCodec,
    KeyChain,
    target_converter,
)
from controlplane.engines.temporal.keyring import KeyRef
from controlplane.engines.temporal.runner import TemporalRunner
from controlplane.errors import ConfigError
from controlplane.keys import payloads_in
from controlplane.spec.environment import Environment

from .conftest import ALIAS, ENV, NAMESPACE, Keys, cpl, environment_document, write_repo

pytestmark = pytest.mark.integration


def secret() -> str:
    return f"SECRET-{uuid.uuid4().hex}"


def run(keys: Keys, workflow: str, value: str) -> tuple[str, dict[str, Any]]:
    """Start a run through cpl's runner (as `cpl run`) and wait for it; (run id, outcome)."""
    runner = TemporalRunner(keys.environment, keys.repo)
    workflow_model = keys.workflows[workflow]
    run_id = runner.start(workflow_model, keys.target, keys.environment, {"secret": value})
    outcome = runner.outcome(keys.target, run_id, timeout=60)
    assert outcome["status"] == "succeeded", outcome["error"]
    return run_id, dict(outcome)


def payloads(events: list[Any]) -> list[Payload]:
    return [payload for event in events for payload in payloads_in(event)]


def versions(events: list[Any]) -> set[str]:
    return {
        payload.metadata["cpl-key-version"].decode()
        for payload in payloads(events)
        if payload.metadata.get("encoding") == ENCRYPTED_ENCODING
    }


def audit(repo: Path, kind: str) -> list[dict[str, Any]]:
    lines = (repo / ".cpl" / "audit" / f"{ENV}.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["type"] == kind]


def test_encrypted_run_works_and_its_history_holds_no_plaintext(keys: Keys) -> None:
    """The proof of `security.encryption` on Temporal."""
    value = secret()
    run_id, outcome = run(keys, "retail/sealed", value)
    # end to end: the user's activity worker opened its input and sealed its result
    assert outcome["output"] == {"secret": value, "stamped": {"receipt": f"RECEIPT-{value}"}}

    events = keys.history(run_id)
    raw = b"".join(event.SerializeToString() for event in events)
    assert value.encode() not in raw  # neither the input nor the result, anywhere
    assert b"RECEIPT-" not in raw
    by_type = {EventType.Name(event.event_type): event for event in events}
    started = by_type["EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"]
    completed = by_type["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"]
    activity = by_type["EVENT_TYPE_ACTIVITY_TASK_COMPLETED"]
    for sealed in (
        started.workflow_execution_started_event_attributes.input.payloads[0],
        completed.workflow_execution_completed_event_attributes.result.payloads[0],
        activity.activity_task_completed_event_attributes.result.payloads[0],
    ):
        assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
        assert sealed.metadata["cpl-key"] == ALIAS.encode()
        assert sealed.metadata["cpl-key-version"].startswith(b"arn:aws:kms:us-east-1:")

    # a workflow without security.encryption on the same target and worker stays in clear
    clear = secret()
    open_id, _ = run(keys, "retail/open", clear)
    assert clear.encode() in b"".join(e.SerializeToString() for e in keys.history(open_id))


def test_cpl_run_and_cpl_signal_seal_the_input_and_the_approval(
    keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    value = secret()
    code, out, err = cpl(capsys, keys.repo, "run", "retail/approved", "--env", ENV,
                         "--input", json.dumps({"secret": value}), "--format", "json")  # fmt: skip
    assert code == 0, err
    run_id = json.loads(out)["runId"]
    approval = {"approved": True, "by": "approver-7f3a", "roles": ["lead"]}
    code, _, err = cpl(capsys, keys.repo, "signal", run_id, "go-ahead", json.dumps(approval),
                       "--env", ENV, "--target", "temporal-keys")  # fmt: skip
    assert code == 0, err
    outcome = TemporalRunner(keys.environment, keys.repo).outcome(keys.target, run_id, 60)
    assert outcome["status"] == "succeeded", outcome["error"]
    assert outcome["output"]["stamped"] == {"receipt": f"RECEIPT-{value}"}

    events = keys.history(run_id)
    raw = b"".join(event.SerializeToString() for event in events)
    assert value.encode() not in raw and b"approver-7f3a" not in raw
    [signaled] = [
        e.workflow_execution_signaled_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signaled.signal_name == "go-ahead"
    assert signaled.input.payloads[0].metadata["encoding"] == ENCRYPTED_ENCODING


def test_local_ring_rotation_keeps_old_runs_readable_and_verify_passes(
    keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    before = secret()
    old_id, _ = run(keys, "retail/ringed", before)
    old_versions = versions(keys.history(old_id))
    assert len(old_versions) == 1

    code, out, err = cpl(capsys, keys.repo, "keys", "rotate", "--env", ENV, "--key", "payments",
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    [rotated] = json.loads(out)["rotated"]
    assert rotated["key"] == "payments" and rotated["binding"] == "local:payments"
    assert rotated["previous"] == next(iter(old_versions))
    assert int(rotated["version"]) == int(rotated["previous"]) + 1
    ring = keys.repo / ".cpl" / "keys" / ENV / "payments.json"
    assert ring.stat().st_mode & 0o777 == 0o600
    assert ring.parent.stat().st_mode & 0o777 == 0o700
    assert "key" not in json.dumps(rotated).replace('"key": "payments"', "")  # no material

    after = secret()
    new_id, _ = run(keys, "retail/ringed", after)
    assert versions(keys.history(new_id)) == {rotated["version"]}  # the worker took it up
    # the old run still opens: its result read back through cpl's client
    again = TemporalRunner(keys.environment, keys.repo).outcome(keys.target, old_id, 5)
    assert again["output"]["stamped"] == {"receipt": f"RECEIPT-{before}"}

    code, out, err = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV, "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["failures"] == []
    assert report["runs"] >= 2 and report["payloads"] >= 6
    assert before not in out and after not in out
    rotations = audit(keys.repo, "dev.cpl.keys.rotated")
    assert [e["data"] for e in rotations if e["data"]["key"] == "payments"][-1] == rotated
    assert audit(keys.repo, "dev.cpl.keys.verified")[-1]["data"]["failures"] == 0


def test_kms_rotation_moves_the_alias_and_old_runs_still_decrypt(
    keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    before = secret()
    old_id, _ = run(keys, "retail/sealed", before)
    [old_arn] = versions(keys.history(old_id))

    code, out, err = cpl(capsys, keys.repo, "keys", "rotate", "--env", ENV, "--key", "orders")
    assert code == 0, err
    assert f"rotated orders ({ALIAS}): version {old_arn} → arn:aws:kms:" in out
    new_arn = keys.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    assert new_arn != old_arn
    assert keys.kms.describe_key(KeyId=old_arn)["KeyMetadata"]["Enabled"]  # kept

    new_id, _ = run(keys, "retail/sealed", secret())
    assert versions(keys.history(new_id)) == {new_arn}
    again = TemporalRunner(keys.environment, keys.repo).outcome(keys.target, old_id, 5)
    assert again["output"]["secret"] == before

    code, out, _ = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV,
                       "--target", "temporal-keys")  # fmt: skip
    assert code == 0, out
    assert out.startswith("ok: ") and "on temporal-keys" in out


def test_a_payload_under_a_removed_key_version_fails_verify(
    keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    value = secret()
    run_id, _ = run(keys, "retail/ringed", value)
    [version] = versions(keys.history(run_id))
    ring = keys.repo / ".cpl" / "keys" / ENV / "payments.json"
    kept = ring.read_bytes()
    document = json.loads(kept)
    document["versions"] = [v for v in document["versions"] if str(v["version"]) != version]
    ring.write_bytes(json.dumps(document).encode())
    try:
        code, out, _ = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV, "--format", "json")
        assert code == 1
        report = json.loads(out)
        assert report["ok"] is False
        failures = [f for f in report["failures"] if f["runId"] and f["workflowId"] == run_id]
        assert failures, report
        assert {f["key"] for f in failures} == {"local:payments"}
        assert {f["version"] for f in failures} == {version}
        assert all(f"key version {version} is not in key ring" in f["reason"] for f in failures)
        assert {f["eventType"] for f in failures} >= {"WORKFLOW_EXECUTION_STARTED"}
        assert all(isinstance(f["eventId"], int) and f["eventId"] > 0 for f in failures)
        assert value not in out and "RECEIPT" not in out
        code, text, _ = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV)
        assert code == 1 and f"FAIL temporal-keys {run_id} run " in text
        # bounded: one run read, and said so
        code, out, _ = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV, "--max-runs", "1",
                           "--format", "json")  # fmt: skip
        capped = json.loads(out)
        assert capped["runs"] == 1 and capped["capped"] == [
            "target temporal-keys: only the newest 1 runs were read"
        ]
    finally:
        ring.write_bytes(kept)
    code, out, _ = cpl(capsys, keys.repo, "keys", "verify", "--env", ENV)
    assert code == 0, out


def test_a_local_ring_is_refused_on_a_production_environment(
    keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = environment_document(
        keys.endpoint, keys.server.address, name="prodlike", tier="production"
    )
    write_repo(tmp_path, document)
    environment = Environment.model_validate(document)
    target = environment.target("temporal-keys")
    with pytest.raises(ConfigError, match=r"spec.bindings.keys.payments.temporal .* production"):
        target_converter(environment, target, tuple(keys.workflows.values()), repo=tmp_path)
    for args in (("keys", "rotate", "--env", "prodlike"),
                 ("run", "retail/ringed", "--env", "prodlike", "--input", "{}")):  # fmt: skip
        code, out, err = cpl(capsys, tmp_path, *args)
        assert code == 1, out + err
        assert "a local key ring is for development" in err
        assert "Traceback" not in out + err
    assert not (tmp_path / ".cpl" / "keys").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("orders-codec-v2", "is 'orders-codec-v2': a Temporal payload key is a KMS key"),
        ("local:Bad Name", "a local key ring is named local:<name>"),
    ],
)
def test_a_bad_binding_is_a_clear_error(
    keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    document = environment_document(
        keys.endpoint, keys.server.address, keys={"orders": {"temporal": value}}
    )
    write_repo(tmp_path, document)
    for args in (("keys", "rotate", "--env", ENV),
                 ("run", "retail/sealed", "--env", ENV, "--input", "{}"),
                 ("keys", "verify", "--env", ENV)):  # fmt: skip
        code, out, err = cpl(capsys, tmp_path, *args)
        assert code == 1, out + err
        assert "spec.bindings.keys.orders.temporal of environment 'enc'" in err
        assert expected in err
        assert "Traceback" not in out + err


def test_a_kms_key_bound_without_an_alias_is_not_rotated(
    keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = keys.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    document = environment_document(
        keys.endpoint, keys.server.address, keys={"orders": {"temporal": arn}}
    )
    write_repo(tmp_path, document)
    code, _, err = cpl(capsys, tmp_path, "keys", "rotate", "--env", ENV)
    assert code == 1 and "bind an alias" in err


def test_the_longest_workflow_name_decides_which_runs_are_sealed() -> None:
    key = KeyRef("local", "k")
    encrypting = Encrypting({"retail-pay": key, "retail-pay-refund": None})
    assert encrypting.key_for("retail-pay-0123abcd4567") == key
    assert encrypting.key_for("retail-pay") == key  # a schedule's workflow id prefix
    assert encrypting.key_for("retail-pay-refund-0123abcd4567") is None
    assert encrypting.key_for("retail-payroll-1") is None
    assert encrypting.key_for(None) is None


def test_offloaded_payloads_are_stored_sealed(keys: Keys) -> None:
    """Sealed first, offloaded second: the object in the store is ciphertext."""
    s3 = boto3.client(
        "s3",
        endpoint_url=keys.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="cpl-keys-offload")
    store = Store("cpl-keys-offload", "runs")
    codec = EncryptionCodec(
        KeyChain([keys.ring()]),
        Encrypting({"retail-ringed": KeyRef("local", "payments")}),
        ClaimCheckCodec(store, 1024, s3=s3),
    ).with_context(WorkflowSerializationContext(NAMESPACE, "retail-ringed-0123abcd4567"))
    value = secret() * 100
    original = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())

    [reference] = asyncio.run(codec.encode([original]))
    assert reference.metadata["encoding"] == CLAIM_CHECK_ENCODING
    key = json.loads(reference.data)["key"]
    stored = s3.get_object(Bucket="cpl-keys-offload", Key=key)["Body"].read()
    assert value[:40].encode() not in stored
    assert Payload.FromString(stored).metadata["encoding"] == ENCRYPTED_ENCODING
    assert asyncio.run(codec.decode([reference])) == [original]
