"""`cpl audit verify` and `cpl audit export` on an S3 sink's chain: a good chain across
objects passes; an object altered, deleted, rewritten or cut is named; export reads S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.audit import Auditor
from controlplane.cli import run
from controlplane.spec.load import load_environment
from tests.audit_s3.conftest import key, object_keys


def chain(runner: Callable[..., Path], bucket: str, count: int = 3) -> tuple[Path, list[str]]:
    """A runner that wrote `count` objects of one event each; their event ids."""
    repo = runner("first", bucket)
    recorder = Auditor.for_environment(repo, load_environment(repo, "prod"))
    ids = [recorder.emit("dev.cpl.plan.created", None, {"count": n}).event.id for n in range(count)]
    return repo, ids


def verify(repo: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["audit", "verify", "--env", "prod", "--repo", str(repo), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def body(s3: Any, bucket: str, sequence: int) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key(sequence))["Body"].read()
    return data


def test_a_good_chain_verifies_as_json(
    runner: Callable[..., Path], bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, bucket)
    code, out = verify(repo, capsys, "--format", "json")
    assert code == 0, out
    (log,) = json.loads(out)["logs"]
    assert log["sink"] == f"s3://{bucket}/audit/prod/"
    assert (log["ok"], log["objects"], log["lines"]) == (True, 3, 3)


def test_an_edited_object_is_named(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, bucket)
    edited = body(s3, bucket, 2).replace(b'"count":1', b'"count":7')
    s3.put_object(Bucket=bucket, Key=key(2), Body=edited)
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"s3://{bucket}/{key(2)}:1: cplhash does not match" in out


def test_a_relinked_forgery_breaks_the_next_objects_link(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editing an event and recomputing its cplhash (anyone can) still breaks the chain."""
    from controlplane.audit.chain import HASH, event_hash

    repo, _ = chain(runner, bucket)
    document = json.loads(body(s3, bucket, 2))
    document["data"]["count"] = 7
    document[HASH] = event_hash(document)
    s3.put_object(Bucket=bucket, Key=key(2), Body=json.dumps(document).encode() + b"\n")
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"{key(3)}:1: cplprevhash does not match line 2" in out


def test_a_deleted_object_is_a_gap(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, bucket)
    s3.delete_object(Bucket=bucket, Key=key(2))
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"s3://{bucket}/{key(2)}: the object is missing: the sequence jumps from 1 to 3" in out


def test_a_cut_object_is_named(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, bucket)
    s3.put_object(Bucket=bucket, Key=key(3), Body=body(s3, bucket, 3)[:-40])
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"{key(3)}:1: the last line is incomplete" in out


def test_a_versioned_bucket_shows_a_deleted_tail_and_a_rewrite(
    runner: Callable[..., Path], locked_bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, locked_bucket)
    s3.delete_object(Bucket=locked_bucket, Key=key(3))  # the last: the chain itself stays good
    assert object_keys(s3, locked_bucket) == [key(1), key(2)]
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"{key(3)}: the last object of the chain was deleted: a delete marker hides it" in out

    s3.put_object(Bucket=locked_bucket, Key=key(1), Body=body(s3, locked_bucket, 1))
    code, out = verify(repo, capsys)
    assert code == 1
    assert f"{key(1)}: the object was rewritten: it has 2 versions" in out


def test_a_foreign_object_is_named(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = chain(runner, bucket, 1)
    s3.put_object(Bucket=bucket, Key="audit/prod/notes.txt", Body=b"hello\n")
    code, out = verify(repo, capsys)
    assert code == 1
    assert "audit/prod/notes.txt: not an audit object written by cpl" in out


def test_export_reads_the_s3_chain(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, ids = chain(runner, bucket)
    capsys.readouterr()
    assert run(["audit", "export", "--env", "prod", "--since", "1d", "--repo", str(repo)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [event["id"] for event in exported] == ids

    s3.delete_object(Bucket=bucket, Key=key(2))
    assert run(["audit", "export", "--env", "prod", "--since", "1d", "--repo", str(repo)]) == 1
    assert "the log is not exported" in capsys.readouterr().err


def test_a_tail_deleted_from_an_unversioned_bucket_shows_against_the_deploy_state(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from controlplane.deploy.apply import APPLY_COMPLETED, APPLY_STARTED
    from controlplane.deploy.state import State, save_state

    repo = runner("first", bucket)
    environment = load_environment(repo, "prod")
    state = save_state(environment.state_dir(repo), State.new("prod"))
    recorder = Auditor.for_environment(repo, environment)
    for kind in (APPLY_STARTED, APPLY_COMPLETED):
        recorder.emit(kind, None, {"environment": "prod", "serial": state.serial})
    code, out = verify(repo, capsys)
    assert code == 0, out

    s3.delete_object(Bucket=bucket, Key=key(2))  # the chain of object 1 alone is good
    code, out = verify(repo, capsys)
    assert code == 1
    assert "the log's last apply has no completion event" in out
    assert "(after its last object)" in out


def test_an_unreachable_sink_fails_verify_with_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.audit_s3.conftest import write_environment
    from tests.receivers import free_port

    write_environment(tmp_path, "{s3: 's3://audit-gone/audit'}", f"http://127.0.0.1:{free_port()}")
    code, out = verify(tmp_path, capsys)
    assert code == 1
    assert "s3://audit-gone/audit/prod/: cannot list the objects: Could not connect" in out
