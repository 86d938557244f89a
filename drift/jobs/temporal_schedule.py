"""Create (or update) a Temporal schedule per environment that runs `cpl drift` sharded by
tenant: `python drift/jobs/temporal-schedule.py --address HOST:PORT --namespace ops
--env prod --repo /srv/workflows-control [--cron "17 3 * * *"]`.

The schedule starts `CplDriftWorkflow` on task queue `cpl-drift`; the worker below (run it
with `--worker`) lists the tenants (the folders of workflows/) and runs one activity per
tenant, each calling `cpl drift --env ENV --tenant T --format json --metrics ...`, at most
`--parallel` at once. An activity that exits 1 (an engine unreachable) is retried with
backoff; exit 5 (drift) is a result, not a failure. The workflow returns the per-tenant
verdicts, which Temporal keeps in the run's history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

TASK_QUEUE = "cpl-drift"


@dataclass
class DriftJob:
    repo: str
    environment: str
    parallel: int = 8
    metrics_dir: str = "/var/lib/node_exporter/textfile"


@dataclass
class Shard:
    repo: str
    environment: str
    tenant: str
    metrics_dir: str


class UnreachableEngine(Exception):
    pass


@activity.defn
def list_tenants(job: DriftJob) -> list[str]:
    root = Path(job.repo) / "workflows"
    return sorted(p.name for p in root.iterdir() if p.is_dir())


@activity.defn
def drift_shard(shard: Shard) -> dict[str, object]:
    command = [
        "cpl",
        "drift",
        "--repo",
        shard.repo,
        "--env",
        shard.environment,
        "--tenant",
        shard.tenant,
        "--format",
        "json",
        "--no-color",
        "--metrics",
        f"{shard.metrics_dir}/cpl_drift_{shard.environment}_{shard.tenant}.prom",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 1:  # partial report or error: retried by the activity's policy
        raise UnreachableEngine(done.stderr.strip() or done.stdout[-2000:])
    report = json.loads(done.stdout)
    return {"tenant": shard.tenant, "exit": done.returncode, "summary": report["summary"]}


@workflow.defn(name="CplDriftWorkflow")
class CplDriftWorkflow:
    @workflow.run
    async def run(self, job: DriftJob) -> list[dict[str, object]]:
        tenants = await workflow.execute_activity(
            list_tenants, job, start_to_close_timeout=timedelta(minutes=1)
        )
        results: list[dict[str, object]] = []
        for start in range(0, len(tenants), job.parallel):
            batch = [
                workflow.execute_activity(
                    drift_shard,
                    Shard(job.repo, job.environment, tenant, job.metrics_dir),
                    start_to_close_timeout=timedelta(minutes=20),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=30),
                        backoff_coefficient=2.0,
                        maximum_attempts=3,
                    ),
                )
                for tenant in tenants[start : start + job.parallel]
            ]
            for outcome in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    results.append({"error": str(outcome)})
                else:
                    results.append(outcome)
        return results


async def ensure_schedule(client: Client, job: DriftJob, cron: str) -> None:
    schedule_id = f"cpl-drift-{job.environment}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            CplDriftWorkflow.run, job, id=schedule_id, task_queue=TASK_QUEUE
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
    print(f"schedule {schedule_id}: {cron} (UTC) on task queue {TASK_QUEUE}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--env", dest="environment", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--cron", default="17 3 * * *")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--metrics-dir", default="/var/lib/node_exporter/textfile")
    parser.add_argument("--worker", action="store_true", help="run the worker instead")
    args = parser.parse_args()
    client = await Client.connect(args.address, namespace=args.namespace)
    if args.worker:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(args.parallel) as pool:
            worker = Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[CplDriftWorkflow],
                activities=[list_tenants, drift_shard],
                activity_executor=pool,
            )
            await worker.run()
        return
    job = DriftJob(args.repo, args.environment, args.parallel, args.metrics_dir)
    await ensure_schedule(client, job, args.cron)


if __name__ == "__main__":
    asyncio.run(main())
