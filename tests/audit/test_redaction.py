"""No secret, and no value of a pii/phi/pci workflow, ever reaches an audit sink."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.audit import Auditor, redact
from controlplane.audit.events import REDACTED
from controlplane.spec.environment import Sink
from tests.receivers import free_port

# Values that must never appear in any sink's bytes.
PII = ["123-45-6789", "jane.doe@example.com", "Jane Doe", "4111111111111111"]
SECRETS = [
    "hunter2-password",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "A1b2C3d4" * 5,
    "-----BEGIN RSA PRIVATE KEY-----",
    "s3cr3t-api-key-value",
]


def _apply_data() -> dict[str, Any]:
    """What a careless caller might hand over for an apply of a regulated workflow."""
    return {
        "action": "update",
        "digest": "sha256:" + "ab" * 32,
        "version": "2.1.0",
        "ruleId": "CPL-P001",
        "count": 3,
        "input": {"ssn": PII[0], "email": PII[1]},
        "output": {"name": PII[2]},
        "parameters": {"card": PII[3], "password": SECRETS[0]},
        "message": f"charged {PII[3]} for {PII[2]}",
        "changes": [
            {
                "action": "update",
                "resource": "arn:aws:states:us-east-1:1:stateMachine:x",
                "diff": [{"path": "$.steps[0].input", "before": PII[1], "after": PII[0]}],
            }
        ],
        "environment_variables": {"AWS_ACCESS_KEY_ID": SECRETS[1], "GITHUB": SECRETS[2]},
        "key": SECRETS[3] + "\nMIIE...\n-----END RSA PRIVATE KEY-----",
        "apiKey": SECRETS[4],
    }


@pytest.mark.parametrize("classification", ["pii", "phi", "pci"])
def test_regulated_workflow_values_never_reach_the_file_or_the_spool(
    tmp_path: Path, classification: str
) -> None:
    sinks = [Sink(file="audit.jsonl"), Sink(http=f"http://127.0.0.1:{free_port()}/down")]
    auditor = Auditor(tmp_path, "prod", sinks)
    recorded = auditor.emit(
        "dev.cpl.apply.succeeded",
        "health/claims-batch-adjudication",
        _apply_data(),
        classification=classification,
    )

    written = (tmp_path / "audit.jsonl").read_bytes()
    spooled = b"".join(p.read_bytes() for p in (tmp_path / ".cpl").rglob("*.ce.json"))
    assert spooled  # the collector is unreachable: the event waits in the spool
    for value in PII + SECRETS:
        for blob in (written, spooled):
            assert value.encode() not in blob
            assert json.dumps(value).encode() not in blob  # not even JSON-escaped
    data = json.loads(written)["data"]
    assert data == {
        "action": "update",
        "digest": "sha256:" + "ab" * 32,
        "version": "2.1.0",
        "ruleId": "CPL-P001",
        "count": 3,
        "changes": [
            {
                "action": "update",
                "resource": "arn:aws:states:us-east-1:1:stateMachine:x",
                "diff": [{"path": "$.steps[0].input"}],
            }
        ],
        "redacted": 9,  # input, output, parameters, message, env vars, key, apiKey; before, after
    }
    assert recorded.event.data == data


def test_unregulated_events_keep_their_data_but_lose_secrets(tmp_path: Path) -> None:
    auditor = Auditor(tmp_path, "prod")
    auditor.emit("dev.cpl.apply.succeeded", "retail/order-fulfillment", _apply_data())

    written = (tmp_path / ".cpl" / "audit" / "prod.jsonl").read_bytes()
    for value in SECRETS:
        assert value.encode() not in written
    data = json.loads(written)["data"]
    assert data["input"] == {"ssn": PII[0], "email": PII[1]}  # internal data stays
    assert data["parameters"] == {"card": PII[3], "password": REDACTED}
    assert data["environment_variables"] == {"AWS_ACCESS_KEY_ID": REDACTED, "GITHUB": REDACTED}
    assert data["key"] == REDACTED
    assert data["apiKey"] == REDACTED


@pytest.mark.parametrize(
    "key",
    ["password", "DB_PASSWORD", "clientSecret", "token", "api_key", "api-key", "privateKey",
     "credentials"],
)  # fmt: skip
def test_secret_keys_are_redacted_whatever_their_value(key: str) -> None:
    assert redact({key: {"nested": "anything"}}) == {key: REDACTED}


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=",
        "ghp_" + "x" * 36,
        "github_pat_" + "x" * 40,
        "Authorization: Bearer abcdefghijkl.mnop",
        "postgres://admin:s3cret@db.internal:5432/app",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    ],
)
def test_credential_shaped_values_are_redacted_anywhere(value: str) -> None:
    assert redact({"note": value, "list": [{"deep": value}]}) == {
        "note": REDACTED,
        "list": [{"deep": REDACTED}],
    }


def test_ordinary_values_are_kept() -> None:
    data = {"workflow": "retail/order-fulfillment", "count": 2, "tokensUsed": None}
    assert redact(data) == data
