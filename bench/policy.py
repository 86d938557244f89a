"""Benchmark of the policy gates: `cpl check` on a generated corpus.

    python -m bench.policy [--count 5000] [--dir DIR] [--env local] [--skip-cli]

Generates `--count` workflows with `bench.corpus` (into `--dir`, or a temporary directory),
then measures, in this process:

(a) loading the repo and building the policy inputs (spec loading, rendering per target,
    policy input documents);
(b) pure evaluation: the embedded OPA engine loaded once, then `evaluate()` over every input
    (inputs per second, wall and CPU time of this process);

and (c) the whole `cpl check --env ENV --format json` as a subprocess (wall time).
The machine load (1-minute load average before and after) is printed with the results,
since the benchmark machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import generate
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.inputs import build_inputs
from controlplane.spec.load import load_environment, load_repo


def _load_average() -> float:
    return os.getloadavg()[0]


def _cpl() -> list[str]:
    """The `cpl` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("cpl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from controlplane.cli import main; sys.exit(main())"]


def measure(directory: Path, env_name: str, *, cli: bool = True) -> dict[str, Any]:
    """The three timings on an existing corpus directory."""
    results: dict[str, Any] = {"load_before": round(_load_average(), 2)}
    start = time.perf_counter()
    environment = load_environment(directory, env_name)
    loaded = load_repo(directory, [directory / "workflows"])
    loaded_at = time.perf_counter()
    inputs, problems = build_inputs(loaded, environment)
    built_at = time.perf_counter()
    results.update(
        inputs=len(inputs),
        problems=len(problems),
        load_s=round(loaded_at - start, 2),
        build_s=round(built_at - loaded_at, 2),
    )

    started = time.perf_counter()
    engine = EmbeddedOpa.for_environment(environment, directory)
    results["engine_load_s"] = round(time.perf_counter() - started, 3)
    documents = [i.document for i in inputs]
    try:
        wall = time.perf_counter()
        cpu = time.process_time()
        outcomes = engine.evaluate(documents)
        wall_s = time.perf_counter() - wall
        cpu_s = time.process_time() - cpu
    finally:
        engine.close()
    results.update(
        eval_s=round(wall_s, 2),
        inputs_per_s=round(len(documents) / wall_s) if wall_s else None,
        inputs_per_cpu_s=round(len(documents) / cpu_s) if cpu_s else None,
        findings=sum(len(o) for o in outcomes),
    )

    if cli:
        command = [
            *_cpl(),
            "check",
            "--env",
            env_name,
            "--repo",
            str(directory),
            "--format",
            "json",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        results["cli_s"] = round(time.perf_counter() - started, 2)
        results["cli_exit"] = done.returncode
        try:
            results["cli_summary"] = json.loads(done.stdout)["summary"]
        except (ValueError, KeyError, TypeError):
            results["cli_stderr"] = done.stderr[-2000:]
    results["load_after"] = round(_load_average(), 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=__doc__)
    parser.add_argument("--count", type=int, default=5000, help="workflows to generate")
    parser.add_argument("--dir", type=Path, default=None, help="corpus directory (kept)")
    parser.add_argument("--env", default="local", help="environment to check")
    parser.add_argument("--skip-cli", action="store_true", help="do not run `cpl check`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cpl-bench-policy-") as scratch:
        directory = args.dir or Path(scratch)
        if not (directory / "workflows").is_dir():
            generate(directory, args.count)
        results = measure(directory, args.env, cli=not args.skip_cli)
    results = {"count": args.count, "cpus": os.cpu_count(), **results}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
