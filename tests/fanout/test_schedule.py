"""`spec.drift.schedule`: `cpl apply` keeps a Temporal schedule of the fanned-out drift run,
whose runs give the report a local `cpl drift` gives, and which drift never calls unmanaged."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.drift.fanout import unpack
from controlplane.engines.temporal.devserver import DevServer
from controlplane.engines.temporal.runner import connect
from tests.drift.conftest import _environment, _write_workflows, unique
from tests.fanout.conftest import HOSTING, Workers

pytestmark = pytest.mark.integration

CRON = "17 3 * * *"


def _set_drift(root: Path, env: str, line: str) -> None:
    path = root / "environments" / f"{env}.yaml"
    text = path.read_text()
    kept = [row for row in text.splitlines() if not row.startswith("  drift:")]
    text = "\n".join(kept) + "\n"
    path.write_text(text.replace("spec:\n", f"spec:\n  {line}\n", 1) if line else text)


def _cpl(*args: str) -> tuple[int, Any]:
    out = Path(f"/tmp/cpl-{uuid.uuid4().hex}.json")
    code = run([*args, "--format", "json", "-o", str(out)])
    try:
        return code, json.loads(out.read_text()) if out.exists() else None
    finally:
        out.unlink(missing_ok=True)


def test_apply_keeps_the_drift_schedule_whose_runs_report_as_local_drift(
    tmp_path: Path,
    moto_endpoint: str,
    temporal_server: DevServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env, namespace = unique("sched"), unique("cpl-sched-")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / f"{env}.yaml").write_text(
        _environment(env, moto_endpoint, temporal_server.address, namespace)
    )
    _write_workflows(tmp_path, unique("t"))
    _set_drift(tmp_path, env, f'drift: {{schedule: "{CRON}", on: {HOSTING}}}')
    repo = ["--env", env, "--repo", str(tmp_path)]

    assert run(["apply", "--yes", *repo]) == 0
    assert f"drift schedule cpl-drift-{env} on {HOSTING}: {CRON} (UTC), created" in (
        capsys.readouterr().err
    )
    assert run(["apply", "--yes", *repo]) == 0
    assert "(UTC), unchanged" in capsys.readouterr().err

    # the schedule lives in the target's namespace, and is no workflow's: not unmanaged
    code, report = _cpl("drift", *repo, "--target", HOSTING)
    assert code == 0, report["items"]
    assert report["summary"]["unmanaged"] == 0

    pool = Workers(env, tmp_path, tmp_path / "slow")
    try:
        pool.ensure(1)
        result = _trigger_and_wait(temporal_server, namespace, f"cpl-drift-{env}")
    finally:
        pool.stop()
    _, local = _cpl("drift", *repo)  # the schedule's runs read every target
    scheduled = unpack(result["report"])
    assert scheduled["items"] == local["items"]
    assert scheduled["summary"] == local["summary"]

    _set_drift(tmp_path, env, f"drift: {{on: {HOSTING}}}")
    assert run(["apply", "--yes", *repo]) == 0
    assert f"drift schedule cpl-drift-{env} on {HOSTING}: removed" in capsys.readouterr().err


def _trigger_and_wait(server: DevServer, namespace: str, schedule: str) -> dict[str, Any]:
    """Trigger the schedule now and wait for the run it starts."""

    async def go() -> dict[str, Any]:
        client = await connect(server.address, namespace)
        handle = client.get_schedule_handle(schedule)
        await handle.trigger()
        for _ in range(600):
            recent = (await handle.describe()).info.recent_actions
            if recent:
                started = recent[-1].action
                run = client.get_workflow_handle(
                    started.workflow_id, run_id=started.first_execution_run_id
                )
                return dict(await asyncio.wait_for(run.result(), 120))
            await asyncio.sleep(0.1)
        raise AssertionError("the schedule started no run")

    return asyncio.run(go())
