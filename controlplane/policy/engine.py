"""Policy engines: the contract, the embedded OPA (default) and how to pick one.

An engine is loaded once with every module (built-in library, `policy.paths`, generated
helpers) and `data.cpl.config`, then evaluates many inputs. The embedded engine evaluates
each input on the same prepared query (`data.cpl.gate.results`, one fixed query string that
the bindings keep prepared): measured on the benchmark corpus this is faster than one query
over a list of inputs with `with input as` (the `with` rebinding defeats OPA's rule cache),
and about 4x faster than a new engine per input.

Most of an evaluation is the bindings converting the input (a few µs per JSON node), so the
engine evaluates the reduced input of `view.evaluation_view` when only the built-in library
is loaded, and spreads large batches over one engine per thread (`workers`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from opa_bindings import OpaEngine, OpaError

from controlplane.errors import ConfigError
from controlplane.policy.library import (
    GATE_PACKAGE,
    Finding,
    Library,
    RuleInfo,
    compile_error,
    findings_of,
    load_library,
    policy_config,
    policy_paths,
    rule_infos,
)
from controlplane.policy.processes import configured_processes, evaluate_in_processes
from controlplane.policy.view import evaluation_view
from controlplane.spec.environment import Environment

# Large batches are spread over several engines (one per thread: the bindings release the
# GIL while OPA evaluates, and one engine serializes its evaluations), CHUNK inputs at a
# time; a batch uses one more engine per PARALLEL_MIN inputs, up to `workers`.
PARALLEL_MIN = 200
CHUNK = 50
MAX_WORKERS = 4


def default_workers() -> int:
    """Engines for large batches: `CPL_POLICY_WORKERS`, else the CPUs (at most 4)."""
    configured = os.environ.get("CPL_POLICY_WORKERS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return min(os.cpu_count() or 1, MAX_WORKERS)


class PolicyEngine(Protocol):
    """Loaded policies that turn policy input documents into findings."""

    @property
    def rules(self) -> Mapping[str, RuleInfo]:
        """Metadata of every loaded rule, by rule id (CPL-P001 …)."""
        ...

    def evaluate(self, documents: Sequence[Mapping[str, Any]]) -> list[list[Finding]]:
        """The findings of every rule for each input document, in input order."""
        ...

    def close(self) -> None: ...


class EmbeddedOpa:
    """Real OPA in-process (`opa-golib-python-bindings`): modules compiled once."""

    def __init__(
        self,
        library: Library,
        config: Mapping[str, Any] | None = None,
        *,
        workers: int | None = None,
        processes: int | None = None,
    ) -> None:
        self.library = library
        # None: decided per batch (`processes.configured_processes`); 0: never.
        self.processes = processes
        self._config = dict(config or {})
        self._engine = self._load()
        try:
            chains = self._engine.eval_document(f"{GATE_PACKAGE}.metadata")
        except OpaError as exc:
            self._engine.close()
            raise compile_error(exc.message, "policy modules do not compile") from None
        try:
            infos = rule_infos(library, chains)
        except ConfigError:
            self._engine.close()
            raise
        self._by_package = infos
        self._by_id = {info.id: info for info in infos.values()}
        self.workers = max(1, workers if workers is not None else default_workers())
        self._replicas: list[OpaEngine] = []

    def _load(self) -> OpaEngine:
        """A new engine with every module and `data.cpl.config`."""
        engine = OpaEngine()
        engine.print_handler = lambda message, location: None
        try:
            for module in self.library.ordered():
                engine.add_policy(module.name, module.source)
            engine.add_data(self._config, "cpl.config")
        except OpaError as exc:
            engine.close()
            raise compile_error(exc.message, "policy modules do not compile") from None
        return engine

    @classmethod
    def for_environment(cls, environment: Environment, repo: Path) -> EmbeddedOpa:
        library = load_library(policy_paths(environment, repo), base=repo)
        return cls(library, policy_config(environment))

    @property
    def rules(self) -> Mapping[str, RuleInfo]:
        return self._by_id

    @property
    def opa(self) -> OpaEngine:
        """The underlying engine (for `cpl policy test` and diagnostics)."""
        return self._engine

    def evaluate(self, documents: Sequence[Mapping[str, Any]]) -> list[list[Finding]]:
        processes = self.processes
        if processes is None:
            processes = configured_processes(len(documents))
        if processes > 0:
            return evaluate_in_processes(
                type(self), self.library, self._config, documents, processes
            )
        return self.evaluate_here(documents)

    def evaluate_here(self, documents: Sequence[Mapping[str, Any]]) -> list[list[Finding]]:
        """`evaluate` in this process (on threads for large batches)."""
        workers = min(self.workers, len(documents) // PARALLEL_MIN)
        if workers <= 1:
            return self._evaluate_on(self._engine, documents)
        while len(self._replicas) < workers - 1:
            self._replicas.append(self._load())
        engines = [self._engine, *self._replicas[: workers - 1]]
        outcomes: list[list[Finding]] = [[] for _ in documents]
        starts = iter(range(0, len(documents), CHUNK))
        lock = threading.Lock()

        def work(engine: OpaEngine) -> None:
            while True:
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                part = documents[start : start + CHUNK]
                outcomes[start : start + len(part)] = self._evaluate_on(engine, part)

        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            for future in [pool.submit(work, engine) for engine in engines]:
                future.result()
        return outcomes

    def _evaluate_on(
        self, engine: OpaEngine, documents: Sequence[Mapping[str, Any]]
    ) -> list[list[Finding]]:
        try:
            return self.findings_on(engine, documents)
        except OpaError as exc:
            raise compile_error(exc.message, "policy evaluation failed") from None

    def findings_on(
        self, engine: OpaEngine, documents: Sequence[Mapping[str, Any]]
    ) -> list[list[Finding]]:
        """The findings of each document on `engine` (OPA's errors raised as they are)."""
        query = f"{GATE_PACKAGE}.results"
        view = evaluation_view if self.library.builtin_only else dict
        return [
            findings_of(engine.eval_document(query, view(document)), self._by_package)
            for document in documents
        ]

    def query(self, path: str, document: Mapping[str, Any]) -> Any:
        """The value of `path` (e.g. `data.cpl.access.decision`) for the input `document`:
        a decision document other than the gate's findings (access decisions)."""
        try:
            return self._engine.eval_document(path.removeprefix("data."), dict(document))
        except OpaError as exc:
            raise compile_error(exc.message, "policy evaluation failed") from None

    def close(self) -> None:
        self._engine.close()
        for replica in self._replicas:
            replica.close()
        self._replicas.clear()

    def __enter__(self) -> EmbeddedOpa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_engine(environment: Environment, repo: Path) -> PolicyEngine:
    """The engine an environment asks for: `policy.server` → RemoteOpa, else EmbeddedOpa."""
    if environment.spec.policy.server:
        from controlplane.policy.remote import RemoteOpa

        return RemoteOpa.for_environment(environment, repo)
    return EmbeddedOpa.for_environment(environment, repo)
