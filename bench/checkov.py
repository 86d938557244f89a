"""Side-by-side benchmark: Checkov's Argo Workflows checks and `cpl check` on the same workflows.

    python -m bench.checkov [--count 1000] [--runs 2] [--venv DIR] [--keep DIR]

1. Installs Checkov (`CHECKOV_VERSION`) into a throw-away virtualenv outside the repository
   (default `~/.cache/cpl-bench/checkov-<version>`, reused when present; `--venv` elsewhere).
2. Generates the corpus (`bench.corpus`, seed 0) with an environment `argo` whose single Argo
   target selects every workflow, and renders every workflow for it: the manifests
   (`Artifact.files`, as `cpl render -o` writes them) go to `manifests/` (not timed).
3. Runs, `--runs` times in alternating order, each as a subprocess:
   `checkov -d manifests --framework argo_workflows --skip-download` (every Checkov Argo
   check; without `--skip-download` Checkov first tries to reach Prisma Cloud) and
   `cpl check --env argo` (every built-in rule, on the same workflows).
   Wall time, CPU time and the peak resident memory (`ru_maxrss`: the largest process of the
   command's tree) of each run, the ratio of the two wall times and the load average.

Results are printed as JSON lines, then as a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.corpus import environment, generate
from controlplane.engines import ENGINES
from controlplane.spec.load import load_environment, load_repo

CHECKOV_VERSION = "3.3.30"
# In the repo's ignored bench/out/, shared by this benchmark and tests/translate/test_checkov.py.
DEFAULT_VENV = Path(__file__).resolve().parent / "out" / f"checkov-{CHECKOV_VERSION}"
INSTALL_SECONDS = 900


class InstallFailed(Exception):
    """pip could not install Checkov; `output` is what it said."""

    def __init__(self, output: str) -> None:
        super().__init__(output[-2000:])
        self.output = output


# Runs a command and reports its wall time, CPU time and peak RSS from its own children's
# rusage, so nothing else this benchmark started is counted.
_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
           "maxrss_mb": usage.ru_maxrss / 1024, "exit": done.returncode,
           "stdout": done.stdout.decode(errors="replace"),
           "stderr": done.stderr.decode(errors="replace")[-4000:]}, sys.stdout)
"""


def install_checkov(venv: Path = DEFAULT_VENV) -> Path:
    """The `checkov` executable of `venv`, installing it there first when missing (a marker
    written last tells a finished install from one that was cut short)."""
    checkov, finished = venv / "bin" / "checkov", venv / ".installed"
    if finished.exists() and checkov.exists():
        return checkov
    print(f"installing checkov {CHECKOV_VERSION} into {venv} ...", file=sys.stderr)
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--quiet",
         f"checkov=={CHECKOV_VERSION}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
    )  # fmt: skip
    if done.returncode != 0:
        raise InstallFailed(done.stdout + done.stderr)
    finished.write_text(CHECKOV_VERSION)
    return checkov


def argo_environment() -> dict[str, Any]:
    """The corpus environment with one Argo target selecting every workflow."""
    document = environment()
    document["metadata"] = {"name": "argo"}
    (target,) = [t for t in document["spec"]["targets"] if t["engine"] == "argo"]
    target.pop("select", None)
    document["spec"]["targets"] = [target]
    return document


def prepare(repo: Path, count: int) -> int:
    """Generate the corpus into `repo` and write its Argo manifests; the manifest count."""
    generate(repo, count)
    (repo / "environments" / "argo.yaml").write_text(yaml.safe_dump(argo_environment()))
    loaded = load_repo(repo, [repo / "workflows"])
    assert loaded.ok, [d.format() for d in loaded.diagnostics[:3]]
    env = load_environment(repo, "argo")
    (target,) = env.spec.targets
    translator = ENGINES["argo"].translator
    written = 0
    for entry in loaded.workflows:
        artifact = translator.render(entry.model, target, env)
        for name, text in artifact.files.items():
            path = repo / "manifests" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written += 1
    return written


def measure(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    result["load"] = [round(x, 2) for x in os.getloadavg()]
    return result


_CHECKOV_COUNTS = re.compile(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)")


def checkov_summary(stdout: str) -> dict[str, int]:
    """Passed / failed / skipped check counts from Checkov's report."""
    found = _CHECKOV_COUNTS.search(stdout)
    if found is None:
        return {}
    passed, failed, skipped = (int(n) for n in found.groups())
    return {"passed": passed, "failed": failed, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--keep", type=Path, help="generate into DIR and keep it")
    args = parser.parse_args(argv)
    checkov = install_checkov(args.venv)
    with tempfile.TemporaryDirectory(prefix="cpl-bench-checkov-") as scratch:
        repo = args.keep or Path(scratch)
        started = time.perf_counter()
        manifests = prepare(repo, args.count)
        print(
            f"corpus: {args.count} workflows, {manifests} Argo manifests "
            f"(prepared in {time.perf_counter() - started:.1f} s), {os.cpu_count()} cores",
            file=sys.stderr,
        )
        commands = {
            "checkov": [
                str(checkov),
                "-d",
                str(repo / "manifests"),
                "--framework",
                "argo_workflows",
                "--compact",
                "--soft-fail",
                "--skip-download",
            ],
            "cpl": [
                sys.executable,
                "-m",
                "controlplane",
                "check",
                "--env",
                "argo",
                "--repo",
                str(repo),
                "--format",
                "json",
            ],
        }
        rows = []
        for run in range(args.runs):
            order = ["checkov", "cpl"] if run % 2 == 0 else ["cpl", "checkov"]
            results = {tool: measure(commands[tool]) for tool in order}
            checked = checkov_summary(results["checkov"]["stdout"])
            try:
                cpl_summary = json.loads(results["cpl"]["stdout"])["summary"]
            except (ValueError, KeyError):
                cpl_summary = {"error": results["cpl"]["stderr"][-500:]}
            row = {
                "run": run + 1,
                "order": order,
                **{
                    f"{tool}_{key}": round(results[tool][key], 2)
                    for tool in order
                    for key in ("wall_s", "cpu_s", "maxrss_mb")
                },
                "ratio": round(results["checkov"]["wall_s"] / results["cpl"]["wall_s"], 2),
                "checkov_exit": results["checkov"]["exit"],
                "checkov_checks": checked,
                "cpl_exit": results["cpl"]["exit"],
                "cpl_summary": cpl_summary,
                "load_after": results[order[-1]]["load"],
            }
            rows.append(row)
            print(json.dumps(row))
    print()
    print("| run | load (1/5/15) | Checkov: wall, CPU, peak RSS | `cpl check` | ratio (wall) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['run']} | {' / '.join(str(x) for x in row['load_after'])} | "
            f"{row['checkov_wall_s']} s, {row['checkov_cpu_s']} s, "
            f"{row['checkov_maxrss_mb']:.0f} MB | {row['cpl_wall_s']} s, {row['cpl_cpu_s']} s, "
            f"{row['cpl_maxrss_mb']:.0f} MB | {row['ratio']}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
