"""Stress loop for native crashes at process exit: no `cpl` command may end by a signal.

    python -m bench.stress [--minutes 10] [--runs 300] [--load 2] [--jobs 2]
                           [--only plan-down,run-wait] [--cpl-root DIR]
                           [--temporal-port 17233] [--moto-port 15999] [--down-port 17299]

Makes a throwaway control repo of the compliant example workflows whose `local` environment
points at a Temporal dev server and a moto server on the given loopback ports (`cpl local up`),
and whose `down` environment points its Temporal target at `--down-port`, where nothing
listens (the Temporal server is "down"; Step Functions still answers). Applies `local`, starts
`cpl worker` and the demo activity worker (scripts/demo_activities.py), starts `--load` busy
loops (CPU load widens the races at exit), then runs these commands round robin until
`--runs` runs or `--minutes` minutes, whichever comes first, `--jobs` commands at a time
(`--only` picks some of them):

    plan-up     cpl plan --env local                 (exit 0)
    plan-down   cpl plan --env down                  (exit 1: Temporal unreachable)
    check       cpl check --env local                (exit 0)
    run-wait    cpl run health/patient-intake --env local --wait   (exit 0)
    run-down    cpl run health/patient-intake --env down --wait    (exit 1)

Every command runs with PYTHONFAULTHANDLER=1 and `--cpl-root` (default: this checkout) first
on PYTHONPATH. An exit code < 0 or >= 128 is a signal death: its stderr (the faulthandler
output) is kept under the work directory. Everything started here is stopped at the end. The
last line is the summary; the exit status is 1 when any command died by a signal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = [
    "retail/inventory-sync.yaml",
    "retail/price-feed-export.yaml",
    "health/appointment-reminders.yaml",
    "health/patient-intake.yaml",
]
RUN_INPUT = {
    "intakeId": "3f0c9a56-1d2b-4c1e-9a8f-2b7d5e6c4a10",
    "patient": {"firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1815-12-10"},
    "consents": ["treatment", "privacy-notice"],
    "insurance": None,
    "clinicId": "clinic-berlin-1",
}
COMMAND_TIMEOUT = 180.0


def scenarios() -> dict[str, tuple[list[str], set[int]]]:
    """Name -> (cpl arguments without --repo, the exit codes it should end with)."""
    run = ["run", "health/patient-intake", "--wait", "--timeout", "1m"]
    run += ["--input", json.dumps(RUN_INPUT)]
    return {
        "plan-up": (["plan", "--env", "local"], {0, 4}),
        "plan-down": (["plan", "--env", "down"], {1}),
        "check": (["check", "--env", "local"], {0}),
        "run-wait": ([*run, "--env", "local"], {0}),
        "run-down": ([*run, "--env", "down"], {1}),
    }


def make_repo(repo: Path, source: Path, args: argparse.Namespace) -> None:
    """The demo control repo with `local` and `down` environments on our own ports."""
    for name in WORKFLOWS:
        (repo / "workflows" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "workflows" / name, repo / "workflows" / name)
    local = yaml.safe_load((source / "environments" / "local.yaml").read_text(encoding="utf-8"))
    (repo / "environments").mkdir()
    for env_name, temporal_port in (("local", args.temporal_port), ("down", args.down_port)):
        document: dict[str, Any] = json.loads(json.dumps(local))
        document["metadata"]["name"] = env_name
        for target in document["spec"]["targets"]:
            if target["engine"] == "temporal":
                target["address"] = f"127.0.0.1:{temporal_port}"
            elif target["engine"] == "stepfunctions":
                target["endpoint"] = f"http://127.0.0.1:{args.moto_port}"
        document["spec"]["deploy"]["state"] = f".cpl/state/{env_name}"
        document["spec"]["audit"]["sinks"] = [{"file": f".cpl/audit/{env_name}.jsonl"}]
        path = repo / "environments" / f"{env_name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


class Stress:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.repo = work / "repo"
        self.logs = work / "crashes"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(args.cpl_root),
            "PYTHONFAULTHANDLER": "1",
        }
        self.background: list[subprocess.Popen[bytes]] = []

    def cpl(
        self, *arguments: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        command = [self.args.python, "-m", "controlplane", *arguments, "--repo", str(self.repo)]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def must(self, *arguments: str, codes: tuple[int, ...] = (0,)) -> None:
        done = self.cpl(*arguments)
        if done.returncode not in codes:
            raise SystemExit(
                f"stress: setup step `cpl {' '.join(arguments)}` exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

    def start(self, name: str, command: list[str], ready: str, timeout: float = 60.0) -> None:
        log = self.work / f"{name}.log"
        stream = log.open("wb")
        process = subprocess.Popen(
            command, env=self.env, stdout=stream, stderr=subprocess.STDOUT, cwd=self.work
        )
        self.background.append(process)
        deadline = time.monotonic() + timeout
        while ready not in log.read_text(encoding="utf-8", errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"stress: {name} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)

    def setup(self) -> None:
        make_repo(self.repo, self.args.cpl_root, self.args)
        self.must("local", "up", "--env", "local")
        self.must("apply", "--env", "local", "--yes")
        python, repo = self.args.python, str(self.repo)
        worker = ["worker", "--env", "local", "--target", "temporal-local", "--repo", repo]
        self.start("worker", [python, "-m", "controlplane", *worker], "Ctrl-C to stop")
        activities = str(self.args.cpl_root / "scripts" / "demo_activities.py")
        self.start(
            "activities", [python, activities, "--repo", repo, "--env", "local"], "demo activities"
        )
        for _ in range(self.args.load):
            self.background.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))

    def teardown(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                process.terminate()
        for process in self.background:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.repo.exists():
            self.cpl("local", "down", "--env", "local", timeout=60)

    def loop(self) -> int:
        plans = scenarios()
        names = [n for n in plans if not self.args.only or n in self.args.only]
        runs: Counter[str] = Counter()
        deaths: Counter[str] = Counter()
        unexpected: Counter[str] = Counter()
        lock = threading.Lock()
        started = time.monotonic()
        deadline = started + self.args.minutes * 60
        issued = 0

        def next_run() -> tuple[int, str] | None:
            nonlocal issued
            with lock:
                if issued >= self.args.runs or time.monotonic() >= deadline:
                    return None
                issued += 1
                return issued, names[(issued - 1) % len(names)]

        def worker() -> None:
            while (job := next_run()) is not None:
                number, name = job
                arguments, expected = plans[name]
                try:
                    done = self.cpl(*arguments)
                    code, stderr = done.returncode, done.stderr
                except subprocess.TimeoutExpired as timeout:
                    code, stderr = 124, f"timed out after {COMMAND_TIMEOUT}s: {timeout.stderr!r}"
                with lock:
                    runs[name] += 1
                    if code < 0 or code >= 128:
                        deaths[name] += 1
                        log = self.logs / f"{number:04d}-{name}-exit{code}.log"
                        log.write_text(stderr, encoding="utf-8")
                        fatal = " | ".join(x for x in stderr.splitlines() if "Fatal" in x)
                        print(f"  run {number} {name}: exit {code} {fatal[:160]} ({log})")
                    elif code not in expected:
                        unexpected[name] += 1
                        print(f"  run {number} {name}: unexpected exit {code}: {stderr[-300:]}")
                    sys.stdout.flush()

        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            for future in [pool.submit(worker) for _ in range(self.args.jobs)]:
                future.result()
        elapsed = time.monotonic() - started
        per = ", ".join(f"{n} {deaths[n]}/{runs[n]}" for n in names if runs[n])
        print(
            f"stress: {sum(runs.values())} runs in {elapsed:.0f}s, {sum(deaths.values())} signal "
            f"deaths ({per}), {sum(unexpected.values())} unexpected exit codes"
        )
        return 1 if deaths else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after (default 10)")
    parser.add_argument("--runs", type=int, default=300, help="stop after (default 300)")
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes (default 2)")
    parser.add_argument("--jobs", type=int, default=2, help="commands at a time (default 2)")
    parser.add_argument(
        "--only", type=lambda text: set(text.split(",")), default=set(), help="scenario names"
    )
    parser.add_argument("--cpl-root", type=Path, default=ROOT, help="the cpl checkout to run")
    parser.add_argument("--python", default=sys.executable, help="the venv's python")
    parser.add_argument("--temporal-port", type=int, default=17233)
    parser.add_argument("--moto-port", type=int, default=15999)
    parser.add_argument("--down-port", type=int, default=17299, help="where nothing listens")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    args.cpl_root = args.cpl_root.resolve()
    args.minutes = min(args.minutes, 15.0)  # bounded whatever is asked
    unknown = args.only - set(scenarios())
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}: choose from {sorted(scenarios())}")
    work = Path(tempfile.mkdtemp(prefix="cpl-stress-"))
    stress = Stress(args, work)
    try:
        stress.setup()
        status = stress.loop()
    finally:
        stress.teardown()
        if args.keep or any(stress.logs.iterdir()):
            print(f"stress: work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
