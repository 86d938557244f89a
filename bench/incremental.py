"""Benchmark of the cache and of incremental `--base` (never a timed test).

    python -m bench.incremental [--count 5000] [--profile]

The corpus (`bench.corpus`, seed 0) as a git repository whose `local` environment points at
a fresh moto server and a fresh in-memory Temporal dev server (as `bench.plan` does). Every
measurement is the whole command as a subprocess, in this order (the cache, `.cpl/cache/`
in the repo, fills as it goes):

1. `cpl plan` with an empty cache (renders, evaluates and reads everything); target < 20 s;
2. `cpl plan` again: nothing changed (no render, no policy evaluation; the live reads remain);
3. `cpl check` (workflows and artifacts cached by the plan; its change documents differ, so
   its policy results are evaluated once);
4. `cpl check` again: nothing changed; target < 2 s;
5. ten workflows changed and committed: `cpl plan --base HEAD~1`, twice; target < 2 s;
6. the same with an empty cache (`CPL_CACHE_DIR` pointing at a new folder): what a CI job
   without a restored cache pays.

`--quick` leaves out the full plans: the ten changes first, `plan --base` with an empty
cache (which loads and renders every workflow once), twice more warm, then `check` to fill
its policy results and twice warm.

The 1/5/15-minute load average is printed before each run (the machine is shared). With
`--profile`, the warm check and the base plan are run once more in process under cProfile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.plan import ROOT, change_workflows, engines, load, make_repo, profile_cli, top_lines

CHECK_TARGET = 2.0
PLAN_TARGET = 20.0
BASE_TARGET = 2.0


def run(args: list[str], expect: set[int], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - started
    if process.returncode not in expect:
        raise RuntimeError(
            f"cpl {' '.join(args)} exited {process.returncode}:\n{process.stderr[-3000:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.incremental")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="build the repo here, keep it")
    parser.add_argument(
        "--quick", action="store_true", help="no full plans: --base first, then check"
    )
    options = parser.parse_args(argv)
    with engines() as live, tempfile.TemporaryDirectory(prefix="cpl-bench-cache-") as tmp:
        directory = options.keep or Path(tmp) / "repo"
        directory.mkdir(parents=True)
        repo = make_repo(directory, options.count, live)
        common = ["--env", "local", "--repo", str(directory), "--format", "json", "-o", "/dev/null"]

        def measure(label: str, args: list[str], target: float | None, **kw: object) -> None:
            before = load()
            seconds = run(args, {0, 3, 4}, **kw)  # type: ignore[arg-type]
            verdict = "" if target is None else (" met" if seconds < target else " MISSED")
            goal = "" if target is None else f" [target < {target:g} s:{verdict}]"
            print(f"{label}: {seconds:.1f} s (load {before}){goal}", flush=True)

        n = options.count
        base = ["plan", *common, "--base", "HEAD~1"]
        if options.quick:
            # the base plan first: with an empty cache it loads and renders every workflow
            # (for shared resources), which warms the cache for everything after it
            edited = change_workflows(repo, n)
            for label in ("empty cache", "run 2", "run 3"):
                measure(f"plan --base, {len(edited)} changed of {n} ({label})", base, BASE_TARGET)
            measure(f"check, {n}, artifacts cached", ["check", *common], None)
            for attempt in (1, 2):
                measure(
                    f"check, {n}, nothing changed (run {attempt})", ["check", *common], CHECK_TARGET
                )
        else:
            measure(f"plan, {n} workflows, empty cache", ["plan", *common], PLAN_TARGET)
            measure(f"plan, {n} workflows, nothing changed", ["plan", *common], PLAN_TARGET)
            measure(f"check, {n}, artifacts cached", ["check", *common], None)
            measure(f"check, {n}, nothing changed", ["check", *common], CHECK_TARGET)
            edited = change_workflows(repo, n)
            for attempt in (1, 2):
                measure(
                    f"plan --base, {len(edited)} changed of {n} (run {attempt})", base, BASE_TARGET
                )
            empty = str(Path(tmp) / "empty-cache")
            measure(
                f"plan --base, {len(edited)} changed of {n}, empty cache",
                base,
                BASE_TARGET,
                env={"CPL_CACHE_DIR": empty},
            )
        if options.profile:
            for label, args in (
                ("check, nothing changed", ["check", *common]),
                ("plan --base, warm", base),
            ):
                profiled = profile_cli(args, ())
                print(f"\nin process under cProfile, {label}: {profiled.seconds:.1f} s")
                print("\n".join(top_lines(profiled, 20)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
