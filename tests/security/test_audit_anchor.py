"""The head of an audit log is anchored outside it: a signed checkpoint written after every
append, so `cpl audit verify` notices lines cut from the end even where the deploy state
cannot (events after the last apply: checks, drift runs, reports)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.audit.anchor import KEY_ENV
from controlplane.cli import run
from tests.security.conftest import environment_text


def _verify(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["audit", "verify", "--repo", str(repo), "--env", "files"])
    out, err = capsys.readouterr()
    return code, out + err


def _check(repo: Path, times: int = 1) -> None:
    for _ in range(times):
        assert run(["check", "--repo", str(repo), "--env", "files", "--format", "json"]) in (0, 3)


def _log(repo: Path) -> Path:
    return repo / ".cpl" / "audit" / "files.jsonl"


def _checkpoint(repo: Path) -> Path:
    return repo / ".cpl" / "anchors" / "files.jsonl.checkpoint.json"


def _cut(repo: Path, lines: int) -> None:
    log = _log(repo)
    kept = log.read_text(encoding="utf-8").splitlines(keepends=True)[:-lines]
    log.write_text("".join(kept), encoding="utf-8")


def test_every_append_moves_the_signed_checkpoint(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check(files_repo, times=2)
    lines = _log(files_repo).read_text(encoding="utf-8").splitlines()
    checkpoint = json.loads(_checkpoint(files_repo).read_text(encoding="utf-8"))
    assert checkpoint["lines"] == len(lines) >= 2
    assert checkpoint["keyId"].startswith("ed25519:") and checkpoint["signature"]
    assert (files_repo / ".cpl/keys/audit-anchor.pem").stat().st_mode & 0o077 == 0
    code, text = _verify(files_repo, capsys)
    assert code == 0, text


def test_a_tail_cut_after_the_last_apply_is_noticed(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No apply, only checks: the deploy state knows nothing of these events, the chain
    of what is left is intact, and only the checkpoint tells the log was longer."""
    _check(files_repo, times=3)
    total = len(_log(files_repo).read_text(encoding="utf-8").splitlines())
    _cut(files_repo, 2)
    code, text = _verify(files_repo, capsys)
    assert code == 1, text
    assert f"files.jsonl:{total - 1}:" in text
    assert f"the log has {total - 2} lines" in text and f"records {total}" in text
    assert "cut from the end" in text


def test_a_checkpoint_edited_to_match_the_cut_log_does_not_verify(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check(files_repo, times=3)
    _cut(files_repo, 1)
    path = _checkpoint(files_repo)
    checkpoint = json.loads(path.read_text(encoding="utf-8"))
    checkpoint["lines"] -= 1
    path.write_text(json.dumps(checkpoint), encoding="utf-8")
    code, text = _verify(files_repo, capsys)
    assert code == 1, text
    assert "signature does not verify" in text


def test_a_checkpoint_signed_with_another_key_is_refused(
    files_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment pins the public key: a checkpoint written by whoever holds another
    key (here: the cut log's new head, re-signed) is not evidence."""
    public = files_repo / "identity" / "audit-anchor.pub"
    public.parent.mkdir()
    trusted = Ed25519PrivateKey.generate()
    key_file = files_repo.parent / "ci-secret.pem"
    key_file.write_bytes(
        trusted.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        trusted.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = files_repo / "environments" / "files.yaml"
    env.write_text(
        environment_text(
            extra="  audit:\n    anchor:\n"
            "      {directory: .cpl/anchors, publicKey: identity/audit-anchor.pub}\n"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(KEY_ENV, str(key_file))
    _check(files_repo, times=2)
    code, text = _verify(files_repo, capsys)
    assert code == 0, text

    monkeypatch.delenv(KEY_ENV)  # the local key: not the one the environment trusts
    _check(files_repo)
    code, text = _verify(files_repo, capsys)
    assert code == 1, text
    assert "not by ed25519:" in text


def test_a_configured_anchor_without_checkpoint_fails(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = files_repo / "environments" / "files.yaml"
    env.write_text(
        environment_text(extra="  audit:\n    anchor: {directory: evidence/anchors}\n"),
        encoding="utf-8",
    )
    _check(files_repo)
    assert (files_repo / "evidence/anchors/files.jsonl.checkpoint.json").is_file()
    (files_repo / "evidence/anchors/files.jsonl.checkpoint.json").unlink()
    code, text = _verify(files_repo, capsys)
    assert code == 1, text
    assert "no checkpoint for this log" in text


@pytest.fixture
def anchor_bucket(moto_endpoint: str) -> tuple[Any, str]:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )
    name = f"anchors-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def test_checkpoints_in_s3_catch_a_cut_log(
    files_repo: Path,
    anchor_bucket: tuple[Any, str],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3, bucket = anchor_bucket
    env = files_repo / "environments" / "files.yaml"
    env.write_text(
        environment_text(
            extra=(
                f"  aws: {{region: us-east-1, endpoint: '{moto_endpoint}'}}\n"
                f"  audit:\n    anchor: {{s3: 's3://{bucket}/cpl/files'}}\n"
            )
        ),
        encoding="utf-8",
    )
    _check(files_repo, times=2)
    body = s3.get_object(Bucket=bucket, Key="cpl/files/files.jsonl.checkpoint.json")["Body"]
    assert json.loads(body.read())["lines"] == 2
    assert not _checkpoint(files_repo).exists()  # kept in the second place only
    code, text = _verify(files_repo, capsys)
    assert code == 0, text
    _cut(files_repo, 1)
    code, text = _verify(files_repo, capsys)
    assert code == 1, text
    assert "cut from the end" in text and f"s3://{bucket}/cpl/files" in text


def test_an_unreachable_anchor_keeps_the_event_and_warns(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = files_repo / "environments" / "files.yaml"
    env.write_text(
        environment_text(
            extra=(
                "  aws: {region: us-east-1, endpoint: 'http://127.0.0.1:9'}\n"
                "  audit:\n    anchor: {s3: 's3://nowhere/cpl'}\n"
            )
        ),
        encoding="utf-8",
    )
    capsys.readouterr()
    _check(files_repo)
    err = capsys.readouterr().err
    assert "its checkpoint not" in err
    assert len(_log(files_repo).read_text(encoding="utf-8").splitlines()) == 1
