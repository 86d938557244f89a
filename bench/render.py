"""Benchmark of rendering a generated corpus for all three engines.

    python -m bench.render [--count 5000] [--seed 0] [--profile ENGINE]

Generates the corpus (`bench.corpus.generate`, into a temporary directory), loads it once
(not timed against the target), then renders every workflow for every engine: one target
per engine selecting everything, with the corpus environment's bindings for every activity.
Prints the time per engine, the total and workflows/s. The target: 5,000 specs x 3 engines
in under 5 s. `--profile ENGINE` renders that engine under cProfile and prints the top
functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import generate
from controlplane.engines import ENGINES
from controlplane.engines.temporal.namespaces import with_namespace_conflicts
from controlplane.spec.environment import ENGINE_NAMES, Environment, Selector
from controlplane.spec.load import load_environment, load_repo
from controlplane.spec.model import Workflow

TARGET_SECONDS = 5.0


def selecting_everything(environment: Environment) -> Environment:
    """The corpus environment with every target selecting every workflow."""
    targets = [t.model_copy(update={"select": Selector()}) for t in environment.spec.targets]
    spec = environment.spec.model_copy(update={"targets": targets})
    return environment.model_copy(update={"spec": spec})


def render_engine(engine: str, workflows: list[Workflow], environment: Environment) -> int:
    """Render every workflow for the engine's target; the number of Support records."""
    translator = ENGINES[engine].translator  # type: ignore[index]
    (target,) = [t for t in environment.spec.targets if t.engine == engine]
    records = 0
    for workflow in workflows:
        records += len(translator.render(workflow, target, environment).support)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=ENGINE_NAMES, help="profile one engine's rendering")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cpl-bench-render-") as directory:
        repo = Path(directory)
        started = time.perf_counter()
        generate(repo, args.count, seed=args.seed)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        loaded = load_repo(repo)
        assert loaded.ok, [d.format() for d in loaded.diagnostics[:3]]
        environment = selecting_everything(load_environment(repo, "local"))
        loading = time.perf_counter() - started
    workflows = [entry.model for entry in loaded.workflows]
    print(
        f"corpus: {len(workflows)} workflows (generated in {generated:.1f} s, loaded in "
        f"{loading:.1f} s), {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(render_engine, args.profile, workflows, environment)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
        return 0

    total = 0.0
    for engine in ENGINE_NAMES:
        started = time.perf_counter()
        records = render_engine(engine, workflows, environment)
        elapsed = time.perf_counter() - started
        total += elapsed
        rate = len(workflows) / elapsed if elapsed else float("inf")
        print(
            f"{engine:<14} {elapsed:6.2f} s  {rate:8.0f} workflows/s  "
            f"{records / max(len(workflows), 1):5.1f} Support records/workflow"
        )
    rate = len(workflows) * len(ENGINE_NAMES) / total if total else float("inf")
    verdict = "within" if total < TARGET_SECONDS else "OVER"
    print(
        f"{'total':<14} {total:6.2f} s  {rate:8.0f} renders/s  "
        f"({verdict} the {TARGET_SECONDS:.0f} s target)"
    )

    # the cross-workflow check of render_all (Temporal retention per namespace), for scale
    artifacts = [
        ENGINES["temporal"].translator.render(w, environment.target("temporal-local"), environment)
        for w in workflows
    ]
    started = time.perf_counter()
    with_namespace_conflicts(artifacts)
    print(f"{'namespaces':<14} {time.perf_counter() - started:6.2f} s  (render_all's check)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
