"""Benchmark of `cpl validate` against PyYAML's C loader on a generated corpus.

    python -m bench.validate [--count 5000] [--seed 0]

Measures, on the same files: (1) PyYAML's C loader alone parsing every workflow, (2)
`cpl validate` in process (`validate_repo`), serial and across all cores, (3) the whole
`cpl validate` command as a subprocess. Prints one line per measurement and the ratio the
target is stated in (validate time / PyYAML parse time ≤ 2.5, and under 5 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.corpus import generate
from controlplane.spec.validate import validate_repo

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cpl-bench-") as directory:
        repo = Path(directory)
        generate(repo, args.count, seed=args.seed)
        files = sorted((repo / "workflows").rglob("*.yaml"))
        texts = [path.read_text(encoding="utf-8") for path in files]
        size = sum(len(text) for text in texts)
        print(f"corpus: {len(files)} workflows, {size / 1e6:.1f} MB, {os.cpu_count()} cores")

        started = time.perf_counter()
        for text in texts:
            yaml.load(text, Loader=_Loader)
        pyyaml = time.perf_counter() - started
        print(f"pyyaml C loader parse only:  {pyyaml:6.2f} s")

        for jobs in (1, 0):
            started = time.perf_counter()
            result = validate_repo(repo, jobs=jobs)
            elapsed = time.perf_counter() - started
            label = "serial" if jobs == 1 else "all cores"
            assert result.ok, result.diagnostics[:3]
            print(f"validate_repo ({label}): {elapsed:6.2f} s  ratio {elapsed / pyyaml:.2f}x")

        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "controlplane", "validate", "--repo", str(repo)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        command = time.perf_counter() - started
        print(f"cpl validate (command):      {command:6.2f} s  ratio {command / pyyaml:.2f}x")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
