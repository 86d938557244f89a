"""Benchmark of `cpl plan` (full and `--base`) and `cpl apply` against local engines.

    python -m bench.plan [--count 5000] [--apply 200] [--runs 2] [--profile-count N]
                         [--record]

Starts a fresh moto server and a fresh Temporal dev server (in memory) on free ports and points
the generated corpus environment (`bench.corpus`) at them, so the planner's live reads are real
calls that find nothing (every change is a `create`); the Argo target is GitOps (files under
the repo). Then:

1. `cpl plan` of `count` workflows against an empty state, as a subprocess (exit 4 expected),
   `runs` times; and once in process under cProfile (`profile-count` workflows, default all).
   Target: under 20 s.
2. Ten workflows are changed (a task step's timeout and the patch version) and committed;
   `cpl plan --base HEAD~1` as a subprocess, `runs` times. Target: under 2 s.
3. `cpl apply --env local --yes` of the first `apply` workflows of the corpus into a fresh pair
   of engines (fresh servers per run), as a subprocess `runs` times, then once in process with
   a profiler on the main thread and on every apply worker thread (cProfile profiles only the
   thread that enabled it), merged. No target: the time and where it goes.

`--record` writes the summary into the "## Plan and apply" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import git
import yaml

from bench.corpus import dump_yaml, generate
from controlplane.engines.stepfunctions.emulator import start_moto_server
from controlplane.engines.temporal.devserver import start_dev_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Plan and apply"
PLAN_TARGET = 20.0
BASE_TARGET = 2.0
CHANGED = 10
# A full plan this many times over its target is not run again (each run takes minutes).
SKIP_FACTOR = 10
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The parts of a command timed in process: (label, module, attribute path). Wall seconds,
# cumulative (nested parts are also inside their parents), summed over threads.
PLAN_PARTS: tuple[tuple[str, str, str], ...] = (
    ("load specs (repo)", "controlplane.pipeline", "load_specs"),
    ("load specs at the base ref (git)", "controlplane.pipeline", "load_workflows"),
    ("  again in make_plan (git)", "controlplane.cli.deploy", "load_workflows"),
    ("change docs vs state", "controlplane.cli.deploy", "previous_changes"),
    ("render (every workflow, shared resources)", "controlplane.pipeline", "_render_environment"),
    ("  of which render", "controlplane.pipeline", "render"),
    ("build policy inputs", "controlplane.pipeline", "build_inputs"),
    ("policy engine open", "controlplane.pipeline", "open_engine"),
    ("policy evaluation", "controlplane.pipeline", "evaluate"),
    ("engine clients", "controlplane.cli.deploy", "engine_clients"),
    ("planner (live reads + diffs)", "controlplane.cli.deploy", "plan"),
    (
        "  step functions reads",
        "controlplane.engines.stepfunctions.client",
        "StepFunctionsEngine.read",
    ),
    ("  temporal reads", "controlplane.engines.temporal.client", "TemporalEngine.read"),
    ("  argo gitops reads", "controlplane.engines.argo.client", "GitOpsArgoEngine.read"),
    (
        "  Argo manifest files (YAML + hera check)",
        "controlplane.engines.translator",
        "Artifact.files",
    ),
    (
        "    of which validate_manifest (hera)",
        "controlplane.engines.argo.translate",
        "validate_manifest",
    ),
    ("fingerprint", "controlplane.cli.deploy", "fingerprint"),
    ("plan JSON report", "controlplane.cli.deploy", "plan_json"),
)
APPLY_PARTS: tuple[tuple[str, str, str], ...] = (
    ("make_plan (load, render, policy, reads)", "controlplane.cli.deploy", "make_plan"),
    ("  render", "controlplane.pipeline", "render"),
    ("  policy evaluation", "controlplane.pipeline", "evaluate"),
    ("  planner (live reads)", "controlplane.cli.deploy", "plan"),
    ("apply (all targets, wall)", "controlplane.cli.deploy", "apply"),
    (
        "  step functions create",
        "controlplane.engines.stepfunctions.client",
        "StepFunctionsEngine.create",
    ),
    ("  temporal create", "controlplane.engines.temporal.client", "TemporalEngine.create"),
    ("  argo gitops create (files)", "controlplane.engines.argo.client", "GitOpsArgoEngine.create"),
    ("  state writes (save_state, fsync)", "controlplane.deploy.state", "save_state"),
    ("  applied spec copies", "controlplane.deploy.apply", "save_applied_spec"),
    ("  audit events", "controlplane.deploy.apply", "_Run.emit"),
    ("  progress lines", "controlplane.deploy.apply", "_Run._report"),
)


class Timers:
    """Wall-clock timers patched around named functions for the duration of a `with`."""

    def __init__(self, parts: tuple[tuple[str, str, str], ...]) -> None:
        self.parts = parts
        self.seconds: dict[str, float] = {label: 0.0 for label, _, _ in parts}
        self.calls: dict[str, int] = {label: 0 for label, _, _ in parts}
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def _wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.seconds[label] += elapsed
                    self.calls[label] += 1

        return timed

    def __enter__(self) -> Timers:
        for label, module_name, path in self.parts:
            owner: Any = importlib.import_module(module_name)
            *classes, name = path.split(".")
            for class_name in classes:
                owner = getattr(owner, class_name)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            if isinstance(original, cached_property):
                replacement: Any = cached_property(self._wrap(label, original.func))
                replacement.__set_name__(owner, name)
            else:
                replacement = self._wrap(label, original)
            setattr(owner, name, replacement)
            self._undo.append(partial(setattr, owner, name, original))
        return self

    def __exit__(self, *_: object) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def rows(self) -> list[tuple[str, float, int]]:
        return [(label, self.seconds[label], self.calls[label]) for label, _, _ in self.parts]


@dataclass
class Engines:
    moto_url: str
    temporal_address: str
    stop: Callable[[], None]


@contextmanager
def engines() -> Iterator[Engines]:
    """A fresh moto server and a fresh in-memory Temporal dev server, stopped on exit."""
    moto = start_moto_server()
    try:
        temporal = asyncio.run(start_dev_server())
    except BaseException:
        moto.stop()
        raise

    def stop() -> None:
        try:
            temporal.stop()
        finally:
            moto.stop()

    try:
        yield Engines(moto.url, temporal.address, stop)
    finally:
        stop()


def point_at(repo: Path, live: Engines) -> None:
    """Point the corpus environment's Step Functions and Temporal targets at `live`."""
    path = repo / "environments" / "local.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:4566", live.moto_url)
    text = text.replace("127.0.0.1:7233", live.temporal_address)
    path.write_text(text, encoding="utf-8")


def make_repo(directory: Path, count: int, live: Engines) -> git.Repo:
    """The corpus as a committed git repository whose environment targets `live`."""
    generate(directory, count)
    point_at(directory, live)
    (directory / ".gitignore").write_text(".cpl/\ndeploy/\n", encoding="utf-8")
    repo = git.Repo.init(directory)
    with repo.config_writer() as config:
        config.set_value("user", "name", "cpl bench")
        config.set_value("user", "email", "bench@example.invalid")
    repo.git.add("-A")
    repo.index.commit("corpus")
    return repo


def change_workflows(repo: git.Repo, count: int, changed: int = CHANGED) -> list[str]:
    """Change `changed` workflows spread over the corpus (a task step's timeout, patch bump)."""
    root = Path(repo.working_dir)
    files = sorted((root / "workflows").rglob("*.yaml"))
    step = max(1, len(files) // changed)
    edited: list[str] = []
    for path in files[::step][:changed]:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        spec = document["spec"]
        task = next(s for s in spec["steps"] if s.get("type") == "task")
        current = task.get("timeout") or spec.get("defaults", {}).get("timeout") or "30s"
        task["timeout"] = f"{_seconds(current) + 15}s"  # longer: not a breaking change
        major, minor, patch = document["metadata"]["version"].split(".")
        document["metadata"]["version"] = f"{major}.{minor}.{int(patch) + 1}"
        path.write_text(dump_yaml(document), encoding="utf-8")
        edited.append(path.relative_to(root).as_posix())
    repo.git.add("-A")
    repo.index.commit(f"change {len(edited)} workflows")
    return edited


def _seconds(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration).groups()  # type: ignore[union-attr]
    return max(1, int(number) * {"ms": 0, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def cpl(*args: str, expect: int) -> float:
    """Run `python -m controlplane ARGS` and return its wall time (exit code checked)."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if process.returncode != expect:
        raise RuntimeError(
            f"cpl {' '.join(args)} exited {process.returncode} (expected {expect}):\n"
            + process.stderr[-3000:]
        )
    return elapsed


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- profiling --------------------------------------------------------------------------------


@dataclass
class Profiled:
    seconds: float
    stats: pstats.Stats
    code: int
    threads: int = 0

    parts: list[tuple[str, float, int]] = field(default_factory=list)


def profile_cli(
    argv: list[str], parts: tuple[tuple[str, str, str], ...], *, threads: bool = False
) -> Profiled:
    """Run the CLI in process under cProfile and `Timers(parts)`; with `threads`, the apply
    worker threads are profiled too (cProfile only sees the thread that enabled it)."""
    from controlplane.cli import run
    from controlplane.deploy import apply as apply_module

    worker_profiles: list[cProfile.Profile] = []
    guard = threading.Lock()
    original = apply_module._Run.target

    def profiled_target(self: Any, changes: Any) -> Any:
        profile = cProfile.Profile()
        with guard:
            worker_profiles.append(profile)
        profile.enable()
        try:
            return original(self, changes)
        finally:
            profile.disable()

    if threads:
        apply_module._Run.target = profiled_target  # type: ignore[method-assign]
    main = cProfile.Profile()
    sink = io.StringIO()
    timers = Timers(parts)
    try:
        started = time.perf_counter()
        with redirect_stdout(sink), redirect_stderr(sink), timers:
            main.enable()
            try:
                code = run(argv)
            finally:
                main.disable()
        seconds = time.perf_counter() - started
    finally:
        apply_module._Run.target = original  # type: ignore[method-assign]
    stats = pstats.Stats(main)
    for profile in worker_profiles:
        stats.add(profile)
    return Profiled(seconds, stats, code, len(worker_profiles), timers.rows())


def top_lines(profiled: Profiled, n: int = 15) -> list[str]:
    """The `n` functions with the most own time (cProfile's tottime), one line each."""
    table: dict[Any, Any] = profiled.stats.stats  # type: ignore[attr-defined]
    entries = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:n]
    lines = []
    for (filename, line, function), (_cc, calls, own, _cumulative, _callers) in entries:
        where = re.sub(r".*/site-packages/", "", filename.replace(str(ROOT) + "/", ""))
        where = re.sub(r".*/lib/python3\.\d+/", "", where)
        place = f"{where}:{line}({function})" if line else function
        lines.append(f"{own:8.2f}s {calls:>9}  {place}")
    return lines


def part_lines(profiled: Profiled) -> list[str]:
    return [f"{sec:8.2f}s {calls:>7}  {label}" for label, sec, calls in profiled.parts]


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Summary:
    count: int
    applied: int
    cores: int | None
    plan: list[tuple[float, str]] = field(default_factory=list)
    base: list[tuple[float, str]] = field(default_factory=list)
    apply: list[tuple[float, str]] = field(default_factory=list)
    resources: int = 0
    plan_profile: Profiled | None = None
    plan_profile_count: int = 0
    plan_profile_load: str = ""
    base_profile: Profiled | None = None
    apply_profile: Profiled | None = None
    apply_profile_load: str = ""
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


def verdict(seconds: float, target: float) -> str:
    return "pass" if seconds < target else "MISS"


def bench_plan(summary: Summary, runs: int, profile_count: int) -> None:
    with engines() as live, tempfile.TemporaryDirectory(prefix="cpl-bench-plan-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        repo = make_repo(directory, summary.count, live)
        summary.say(
            f"setup: {summary.count} workflows generated and committed in "
            f"{time.perf_counter() - started:.1f}s (not timed)"
        )
        args = ["plan", "--env", "local", "--repo", str(directory), "--format", "json"]
        for run in range(runs):
            if summary.plan and summary.plan[-1][0] > SKIP_FACTOR * PLAN_TARGET:
                summary.say(
                    f"cpl plan run {run + 1} skipped: run {run} took over {SKIP_FACTOR}x the "
                    "target, another run cannot change the verdict"
                )
                break
            before = load()
            seconds = cpl(*args, "-o", "/dev/null", expect=4)
            summary.plan.append((seconds, before))
            summary.say(
                f"cpl plan, {summary.count} workflows, empty state (run {run + 1}, load {before}): "
                f"{seconds:.1f}s [target < {PLAN_TARGET:g}s: {verdict(seconds, PLAN_TARGET)}]"
            )
        edited = change_workflows(repo, summary.count)
        for run in range(runs):
            before = load()
            seconds = cpl(*args, "--base", "HEAD~1", "-o", "/dev/null", expect=4)
            summary.base.append((seconds, before))
            summary.say(
                f"cpl plan --base HEAD~1, {len(edited)} changed (run {run + 1}, load {before}): "
                f"{seconds:.1f}s [target < {BASE_TARGET:g}s: {verdict(seconds, BASE_TARGET)}]"
            )
        if not profile_count:
            return
        with tempfile.TemporaryDirectory(prefix="cpl-bench-plan-profile-") as other:
            profile_repo = directory
            if profile_count < summary.count:
                profile_repo = Path(other)
                make_repo(profile_repo, profile_count, live)
            summary.plan_profile_count = profile_count
            summary.plan_profile_load = load()
            args = ["plan", "--env", "local", "--repo", str(profile_repo), "--format", "json"]
            profiled = profile_cli([*args, "-o", "/dev/null"], PLAN_PARTS)
            summary.plan_profile = profiled
            summary.say(
                f"cpl plan in process under cProfile, {profile_count} workflows "
                f"(load {summary.plan_profile_load}): {profiled.seconds:.1f}s, exit {profiled.code}"
            )
            for line in [*part_lines(profiled), *top_lines(profiled)]:
                summary.say("  " + line)
            if profile_repo != directory:
                change_workflows(git.Repo(profile_repo), profile_count)
            profiled = profile_cli([*args, "--base", "HEAD~1", "-o", "/dev/null"], PLAN_PARTS)
            summary.base_profile = profiled
            summary.say(
                f"cpl plan --base HEAD~1 in process under cProfile, {CHANGED} changed of "
                f"{profile_count}: {profiled.seconds:.1f}s, exit {profiled.code}"
            )
            for line in [*part_lines(profiled), *top_lines(profiled)]:
                summary.say("  " + line)


def bench_apply(summary: Summary, runs: int) -> None:
    for run in range(runs + 1):
        profiling = run == runs
        with engines() as live, tempfile.TemporaryDirectory(prefix="cpl-bench-apply-") as tmp:
            directory = Path(tmp)
            make_repo(directory, summary.applied, live)
            args = ["apply", "--env", "local", "--yes", "--repo", str(directory)]
            before = load()
            if profiling:
                summary.apply_profile_load = before
                profiled = profile_cli(args, APPLY_PARTS, threads=True)
                summary.apply_profile = profiled
                if profiled.code != 0:
                    raise RuntimeError(f"cpl apply in process exited {profiled.code}")
                summary.say(
                    f"cpl apply in process under cProfile, {summary.applied} workflows "
                    f"(load {before}): {profiled.seconds:.1f}s, {profiled.threads} worker threads"
                )
                for line in [*part_lines(profiled), *top_lines(profiled)]:
                    summary.say("  " + line)
            else:
                seconds = cpl(*args, expect=0)
                summary.resources = _resources(directory)
                summary.apply.append((seconds, before))
                summary.say(
                    f"cpl apply, {summary.applied} workflows = {summary.resources} resources "
                    f"(run {run + 1}, load {before}): {seconds:.1f}s, "
                    f"{summary.resources / seconds:.1f} resources/s"
                )


def _resources(directory: Path) -> int:
    import json

    state = json.loads((directory / ".cpl" / "state" / "local" / "state.json").read_text())
    return sum(1 for r in state["resources"] if r["status"] == "applied")


# -- RESULTS.md -------------------------------------------------------------------------------


def section(summary: Summary) -> str:
    from controlplane.deploy.apply import DEFAULT_CONCURRENCY

    def runs(values: list[tuple[float, str]]) -> str:
        return " / ".join(f"{s:.1f} s (load {load_})" for s, load_ in values)

    out = [
        SECTION,
        "",
        f"`python -m bench.plan --count {summary.count} --apply {summary.applied}`: the corpus "
        "(seed 0) as a git repository, its `local` environment pointed at a fresh moto server and "
        "a fresh in-memory Temporal dev server (free ports), so every planned resource is really "
        "read (and found absent). The Argo target is GitOps (files in the repo). Every number is "
        f"the whole command as a subprocess. Machine: {summary.cores} cores, shared with other "
        "benchmarks and test runs; the 1/5/15-minute load average is given per run.",
        "",
        "| measurement | target | runs | result |",
        "|---|---|---|---|",
    ]
    if summary.plan:
        worst = max(s for s, _ in summary.plan)
        out.append(
            f"| `cpl plan`, {summary.count} workflows, empty state | < {PLAN_TARGET:g} s | "
            f"{runs(summary.plan)} | {verdict(worst, PLAN_TARGET)} |"
        )
    if summary.base:
        worst = max(s for s, _ in summary.base)
        out.append(
            f"| `cpl plan --base HEAD~1`, {CHANGED} changed of {summary.count} | "
            f"< {BASE_TARGET:g} s | {runs(summary.base)} | {verdict(worst, BASE_TARGET)} |"
        )
    if summary.apply:
        rates = ", ".join(f"{summary.resources / s:.1f}" for s, _ in summary.apply)
        out.append(
            f"| `cpl apply --yes`, {summary.applied} workflows ({summary.resources} resources), "
            f"fresh engines | recorded | {runs(summary.apply)} | {rates} resources/s |"
        )
    out += [
        "",
        f"Apply concurrency: one change at a time per target, the targets in parallel (at most "
        f"`DEFAULT_CONCURRENCY` = {DEFAULT_CONCURRENCY} threads; 3 targets here).",
    ]
    for title, profiled, extra in (
        (
            f"plan, {summary.plan_profile_count} workflows (load {summary.plan_profile_load})",
            summary.plan_profile,
            "",
        ),
        (
            f"plan --base HEAD~1, {CHANGED} changed of {summary.plan_profile_count} workflows",
            summary.base_profile,
            "",
        ),
        (
            f"apply, {summary.applied} workflows (load {summary.apply_profile_load})",
            summary.apply_profile,
            "; the worker threads are profiled too and their times summed, so the engine "
            "parts overlap in time",
        ),
    ):
        if profiled is None:
            continue
        out += [
            "",
            f"Profile of {title}, in process: {profiled.seconds:.1f} s under cProfile. Parts: wall "
            f"seconds and calls of the named functions (nested parts are inside their parent"
            f"{extra}); then the top 15 functions by own time.",
            "",
            "```",
            *part_lines(profiled),
            "",
            *top_lines(profiled),
            "```",
        ]
    return "\n".join(out) + "\n"


def record(text: str) -> None:
    """Replace (or append) the "## Plan and apply" section of RESULTS.md, nothing else."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    start = current.find(SECTION + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        following = current.find("\n## ", start + len(SECTION))
        rest = current[following + 1 :] if following >= 0 else ""
        updated = current[:start] + text + ("\n" + rest if rest else "")
    RESULTS.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--apply", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--profile-count",
        type=int,
        default=None,
        help="Workflows in the in-process plan profile (default: --count; 0: no profile).",
    )
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--skip-apply", action="store_true")
    parser.add_argument("--record", action="store_true", help="Write bench/RESULTS.md.")
    args = parser.parse_args(argv)
    summary = Summary(args.count, args.apply, os.cpu_count())
    summary.say(f"machine: {os.cpu_count()} cores, load average {load()}")
    if not args.skip_plan:
        count = args.count if args.profile_count is None else args.profile_count
        bench_plan(summary, args.runs, count)
    if not args.skip_apply and args.apply:
        bench_apply(summary, args.runs)
    text = section(summary)
    print()
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
