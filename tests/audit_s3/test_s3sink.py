"""The S3 audit sink on moto: runners that come and go continue one chain, racing writers
never fork it, objects get Object Lock retention, and an unreachable S3 loses nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.audit import AuditError, Auditor, s3_sinks
from controlplane.cli import run
from controlplane.drift.audit import record_drift
from controlplane.drift.model import DriftItem, DriftReport
from controlplane.spec.load import load_environment
from tests.audit_s3.conftest import key, object_keys, write_environment
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]


def auditor(repo: Path) -> Auditor:
    return Auditor.for_environment(repo, load_environment(repo, "prod"))


def chain_ids(s3: Any, bucket: str) -> list[str]:
    """The event ids of the chain's objects, in key (sequence) order."""
    ids = []
    for name in object_keys(s3, bucket):
        body = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
        ids += [json.loads(line)["id"] for line in body.splitlines()]
    return ids


def verify(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["audit", "verify", "--env", "prod", "--repo", str(repo)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_runners_taking_turns_continue_one_chain(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = runner("first", bucket), runner("second", bucket)
    ids = [auditor(first).emit("dev.cpl.plan.created", None, {"count": 1}).event.id]
    ids.append(auditor(second).emit("dev.cpl.plan.created", None, {"count": 2}).event.id)
    ids.append(auditor(first).emit("dev.cpl.plan.created", None, {"count": 3}).event.id)
    ids.append(auditor(second).emit("dev.cpl.plan.created", None, {"count": 4}).event.id)

    assert object_keys(s3, bucket) == [key(n) for n in range(1, 5)]
    assert chain_ids(s3, bucket) == ids
    head = s3.head_object(Bucket=bucket, Key=key(1))["Metadata"]
    assert head["cpl-events"] == "1" and head["cpl-first-time"].startswith("20")
    code, out = verify(second, capsys)
    assert code == 0, out
    assert "s3://" in out and "ok (4 objects, 4 events" in out
    assert not list((first / ".cpl" / "audit" / "spool").rglob("*.s3.json"))


def test_a_writer_that_loses_the_race_relinks_after_the_winner(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = runner("first", bucket), runner("second", bucket)
    auditor(first).emit("dev.cpl.plan.created", None, {"count": 0})  # object 1
    slow = s3_sinks(first, load_environment(first, "prod"))[0]
    slow.head()  # knows object 1 is the head
    create = slow.store.create
    raced: list[str] = []

    def create_after_the_other_runner(*args: Any, **kwargs: Any) -> bool:
        if not raced:  # the other runner creates object 2 between our head read and create
            raced.append(auditor(second).emit("dev.cpl.plan.created", None, {"n": 2}).event.id)
        return create(*args, **kwargs)

    slow.store.create = create_after_the_other_runner  # type: ignore[method-assign]
    mine = auditor(first).emit("dev.cpl.plan.created", None, {"count": 3}).event.id

    assert slow.conflicts == 1  # S3 answered 412 to our create of object 2
    assert object_keys(s3, bucket) == [key(1), key(2), key(3)]
    assert chain_ids(s3, bucket)[1:] == [raced[0], mine]
    code, out = verify(first, capsys)
    assert code == 0, out


def test_two_processes_appending_at_once_make_one_chain(
    runner: Callable[..., Path], locked_bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repos = [runner("first", locked_bucket), runner("second", locked_bucket)]
    go = repos[0].parent / "go"
    script = (
        "import sys, time; from pathlib import Path\n"
        "from controlplane.audit import Auditor, s3_sinks\n"
        "from controlplane.spec.load import load_environment\n"
        "repo, go = Path(sys.argv[1]), Path(sys.argv[2])\n"
        "environment = load_environment(repo, 'prod')\n"
        "a = Auditor.for_environment(repo, environment)\n"
        "while not go.exists(): time.sleep(0.01)\n"  # both start appending together
        "for n in range(8):\n"
        "    print(a.emit('dev.cpl.plan.created', None, {'count': n}).event.id, flush=True)\n"
        "print('conflicts', s3_sinks(repo, environment)[0].conflicts, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(repo), str(go)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for repo in repos
    ]
    go.touch()
    outputs = [process.communicate(timeout=120)[0].split() for process in processes]
    assert [process.returncode for process in processes] == [0, 0]

    ids = chain_ids(s3, locked_bucket)
    assert sorted(ids) == sorted(outputs[0] + outputs[1])  # every event once, none lost
    for output in outputs:  # each runner's events in the order it recorded them
        assert [i for i in ids if i in output] == output
    code, out = verify(repos[0], capsys)
    assert code == 0, out


def test_objects_get_object_lock_retention(
    runner: Callable[..., Path], locked_bucket: str, s3: Any
) -> None:
    repo = runner("first", locked_bucket, ", retention: {mode: GOVERNANCE, days: 3}")
    before = dt.datetime.now(dt.UTC)
    auditor(repo).emit("dev.cpl.plan.created", None, {"count": 1})

    # moto 5.2.5 answers GetObjectRetention with a 500; HeadObject reports the lock.
    head = s3.head_object(Bucket=locked_bucket, Key=key(1))
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + dt.timedelta(days=3) - dt.timedelta(minutes=1) < until
    assert until < before + dt.timedelta(days=3, minutes=5)
    with pytest.raises(Exception, match="AccessDenied"):  # locked: cannot be deleted
        version = s3.head_object(Bucket=locked_bucket, Key=key(1))["VersionId"]
        s3.delete_object(Bucket=locked_bucket, Key=key(1), VersionId=version)


def test_retention_on_a_bucket_without_object_lock_is_refused(
    runner: Callable[..., Path], bucket: str, s3: Any
) -> None:
    repo = runner("first", bucket, ", retention: {mode: COMPLIANCE, days: 1}")
    with pytest.raises(AuditError, match=f"bucket '{bucket}' has no Object Lock"):
        auditor(repo).emit("dev.cpl.plan.created", None, {"count": 1})
    assert object_keys(s3, bucket) == []
    spooled = list((repo / ".cpl" / "audit" / "spool").rglob("*.s3.json"))
    assert len(spooled) == 1  # kept for when the bucket is fixed


def test_unreachable_s3_spools_then_flush_sends_in_order(
    runner: Callable[..., Path],
    bucket: str,
    s3: Any,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = runner("first", bucket)
    auditor(repo).emit("dev.cpl.plan.created", None, {"count": 0})  # object 1
    dead = f"http://127.0.0.1:{free_port()}"
    write_environment(repo, f"{{s3: 's3://{bucket}/audit'}}", dead)
    recorded = [auditor(repo).emit("dev.cpl.plan.created", None, {"count": n}) for n in (1, 2, 3)]
    assert [r.pending for r in recorded] == [1, 2, 3]
    assert "spooled for later delivery" in recorded[-1].warnings[0]
    assert "S3 unreachable" in recorded[-1].warnings[0]
    assert object_keys(s3, bucket) == [key(1)]

    write_environment(repo, f"{{s3: 's3://{bucket}/audit'}}", moto_endpoint)
    capsys.readouterr()
    assert run(["audit", "flush", "--env", "prod", "--repo", str(repo)]) == 0
    assert "delivered 3, pending 0" in capsys.readouterr().out

    assert object_keys(s3, bucket) == [key(1), key(2)]  # the backlog is one batch
    assert chain_ids(s3, bucket)[1:] == [r.event.id for r in recorded]
    code, out = verify(repo, capsys)
    assert code == 0, out


def test_a_batch_of_events_is_one_object(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = runner("first", bucket)
    recorder = auditor(repo)
    with recorder.batch() as results:
        ids = [recorder.emit("dev.cpl.plan.created", None, {"count": n}).event.id for n in (1, 2)]
        assert object_keys(s3, bucket) == []  # nothing sent before the batch ends
    assert [(r.delivered, r.pending) for r in results] == [(2, 0)]
    ids.append(recorder.emit("dev.cpl.plan.created", None, {"count": 3}).event.id)

    assert object_keys(s3, bucket) == [key(1), key(2)]
    assert s3.head_object(Bucket=bucket, Key=key(1))["Metadata"]["cpl-events"] == "2"
    assert chain_ids(s3, bucket) == ids
    code, out = verify(repo, capsys)
    assert code == 0, out


def test_a_drift_run_is_one_object(
    runner: Callable[..., Path], bucket: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command's events go out together: a drift run with two findings writes one object
    of three events (two findings and the run's completion), not three objects."""
    repo = runner("drift", bucket)
    environment = load_environment(repo, "prod")
    items = tuple(
        DriftItem(f"retail/{name}", "sfn", "stepfunctions", f"retail-{name}", "missing")
        for name in ("orders", "returns")
    )
    record_drift(repo, environment, DriftReport("prod", items))

    assert object_keys(s3, bucket) == [key(1)]
    assert s3.head_object(Bucket=bucket, Key=key(1))["Metadata"]["cpl-events"] == "3"
    code, out = verify(repo, capsys)
    assert code == 0, out
