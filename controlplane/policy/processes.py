"""Policy evaluation on worker processes, each with its own embedded OPA engine.

Threads already run several engines at once (the bindings release the GIL while OPA
evaluates), but everything around an evaluation — the evaluation view, the JSON the bindings
exchange with Go, the findings — holds the GIL, and a process pool spreads that too. A worker
is *spawned* (the Go runtime in the bindings does not survive `fork`), imports cpl and
compiles the library again: about 1 s of CPU each on the benchmark machine. That is only
won back with cores to spare, so `EmbeddedOpa` uses processes by default on machines with at
least `MIN_CPUS` CPUs and batches of at least `MIN_INPUTS` inputs, and threads otherwise.
`CPL_POLICY_PROCESSES` sets the number of worker processes (0: never).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from controlplane.policy.library import Finding, Library, compile_error


class WorkerEngine(Protocol):
    """What a worker evaluates with (`EmbeddedOpa`, which hands its own class in: this module
    stays below the engine that uses it)."""

    @property
    def opa(self) -> Any: ...

    def findings_on(
        self, engine: Any, documents: Sequence[Mapping[str, Any]]
    ) -> list[list[Finding]]: ...


EngineFactory = Any  # a picklable callable (library, config, workers=, processes=) -> engine

MIN_CPUS = 4
MIN_INPUTS = 400
MAX_PROCESSES = 8
CHUNK = 100

_engine: WorkerEngine | None = None


def configured_processes(inputs: int) -> int:
    """Worker processes for a batch of `inputs` (0: evaluate in this process)."""
    configured = os.environ.get("CPL_POLICY_PROCESSES", "")
    if configured.isdigit():
        return int(configured) if inputs > 1 else 0
    cpus = os.cpu_count() or 1
    if cpus < MIN_CPUS or inputs < MIN_INPUTS:
        return 0
    return min(cpus, MAX_PROCESSES)


def evaluate_in_processes(
    factory: EngineFactory,
    library: Library,
    config: Mapping[str, Any],
    documents: Sequence[Mapping[str, Any]],
    processes: int,
) -> list[list[Finding]]:
    """The findings of every document, evaluated CHUNK at a time on `processes` workers,
    each with one engine made by `factory` (the engine class, picklable by reference)."""
    chunks = [documents[start : start + CHUNK] for start in range(0, len(documents), CHUNK)]
    context = multiprocessing.get_context("spawn")
    outcomes: list[list[Finding]] = []
    with ProcessPoolExecutor(
        max_workers=min(processes, len(chunks)),
        mp_context=context,
        initializer=_start,
        initargs=(factory, library, dict(config)),
    ) as pool:
        for result in pool.map(_evaluate, chunks):
            if isinstance(result, str):
                raise compile_error(result, "policy evaluation failed")
            outcomes.extend(result)
    return outcomes


def _start(factory: EngineFactory, library: Library, config: dict[str, Any]) -> None:
    """Worker initializer: one engine per process, loaded once."""
    global _engine
    from controlplane.collector import tune_for_batch

    tune_for_batch()
    _engine = factory(library, config, workers=1, processes=0)


def _evaluate(documents: Sequence[Mapping[str, Any]]) -> list[list[Finding]] | str:
    """The findings of a chunk, or OPA's error text (exceptions with diagnostics do not
    cross the process boundary intact)."""
    from opa_bindings import OpaError

    assert _engine is not None, "worker not initialized"
    try:
        return _engine.findings_on(_engine.opa, documents)
    except OpaError as exc:
        return str(exc.message)
