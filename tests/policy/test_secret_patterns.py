"""CPL-P018 and the redaction of outputs share one definition of a secret-looking value:
the Rego rule holds the same pattern strings as `controlplane.redaction`, flags what the
redaction masks, and `cpl check` denies every kind of plaintext secret without echoing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane import redaction
from controlplane.policy.engine import EmbeddedOpa
from tests.deploy.conftest import write_repo

RULE = "cpl.rules.plaintext_secrets"

# (key, value) leaves: what a careless spec may hold, and what it may hold safely
LEAVES: list[tuple[str, Any]] = [
    ("password", "hunter2"),
    ("password", 31337420),
    ("password", 3.5),
    ("apiKeys", "k-first"),  # an item of `apiKeys: [...]`: its nearest key is the list's
    ("client_secret", "s3cr3t"),
    ("DB_PASSWORD", "x"),
    ("tokenCount", 3),
    ("retries", 5),
    ("password", True),
    ("password", ""),
    ("password", "$.secrets.db"),
    ("Authorization", "Bearer abcdefghijklmnop0123456789"),
    ("note", "use bearer authentication"),
    ("dsn", "postgres://admin:pg-pass@db/x"),
    ("dsn", "postgres://admin:${DB_PASSWORD}@db/x"),
    ("url", "ftp://anonymous@example.com/pub"),
    ("hook", "https://hooks.example.com/x?token=abc123"),
    ("hook", "https://hooks.example.com/x?page=2"),
    ("id", "AKIAIOSFODNN7EXAMPLE"),
    ("gh", "ghp_" + "A1b2C3d4" * 5),
    ("pem", "-----BEGIN EC PRIVATE KEY-----"),
    ("slack", "xoxb-1234567890-abcdefghij"),
    ("session", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmN"),
    ("label", "orders"),
]


@pytest.fixture(scope="module")
def opa() -> Any:
    from controlplane.policy.library import load_library

    with EmbeddedOpa(load_library()) as engine:
        yield engine.opa


def test_the_rule_holds_the_same_patterns(opa: Any) -> None:
    assert opa.eval_document(f"{RULE}.formats") == redaction.FORMATS
    assert opa.eval_document(f"{RULE}.secret_key_pattern") == redaction.SECRET_KEY
    assert opa.eval_document(f"{RULE}.secret_key_end_pattern") == redaction.SECRET_KEY_END
    assert opa.eval_document(f"{RULE}.data_path") == redaction.DATA_PATH


@pytest.mark.parametrize(("key", "value"), LEAVES)
def test_the_rule_flags_what_outputs_mask(opa: Any, key: str, value: Any) -> None:
    workflow = {"metadata": {"name": "w"}, "spec": {"steps": [{"name": "s", "type": "task"}]}}
    workflow["spec"]["steps"][0]["parameters"] = {key: [value] if key == "apiKeys" else value}
    denied = opa.eval_document(f"{RULE}.deny", {"workflow": workflow})
    assert bool(denied) == redaction.is_secret_value(key, value), denied


def test_check_denies_every_kind_without_echoing_it(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path / "repo", "http://127.0.0.1:9", "127.0.0.1:9", ["retail/inventory-sync"]
    )
    planted = {
        "password": ("31337420", "/password"),
        "apiKeys": ('["k-first-0001", "k-second-0002"]', "/apiKeys/0"),
        "headers": ('{Authorization: "Bearer abcdefghijklmnop012345"}', "/headers/Authorization"),
        "dsn": ('"postgres://admin:pg-pass-0001@db/x"', "/dsn"),
        "hook": ('"https://hooks.example.com/x?token=hook-token-0001"', "/hook"),
        "jwt": ('"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3"', "/jwt"),
        "cloud": ('{id: "AKIAIOSFODNN7EXAMPLE"}', "/cloud/id"),
    }  # fmt: skip
    values = ", ".join(f"{key}: {text}" for key, (text, _) in planted.items())
    old = "parameters: {since: $.lastRun, source: wms-eu"
    repo.edit("retail/inventory-sync", old, f"{old}, {values}")

    checked = repo.cpl("check", "--env", "local", "--format", "json")
    assert checked.code == 3, checked.out + checked.err
    paths = {
        violation["path"]
        for workflow in checked.json()["results"]
        for violation in workflow["violations"]
        if violation["rule"] == "CPL-P018"
    }
    expected = {f"/spec/steps/0/parameters{pointer}" for _, pointer in planted.values()}
    assert paths == expected | {"/spec/steps/0/parameters/apiKeys/1"}
    text = repo.cpl("check", "--env", "local")
    for secret in ("31337420", "k-first-0001", "pg-pass-0001", "hook-token-0001", "AKIAIOSF"):
        assert secret not in checked.out + text.out + text.err
    assert json.loads(checked.out)  # the report itself stays valid JSON
