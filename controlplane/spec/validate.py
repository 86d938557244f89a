"""`cpl validate` over a whole repo: every problem of every file, fast on large repos.

Validation needs no models afterwards, only diagnostics and a summary, so large repos are
split across processes (one per core); each returns plain data.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.errors import Diagnostic
from controlplane.spec.check import iter_scopes
from controlplane.spec.files import Source, read_paths, read_tree
from controlplane.spec.load import (
    DIRECTORIES,
    LoadResult,
    colliding_engine_names,
    duplicate_workflows,
    load_sources,
)

# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 400


@dataclass
class Validation:
    """The outcome of validating a set of documents."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    documents: Counter[str] = field(default_factory=Counter)
    tenants: Counter[str] = field(default_factory=Counter)
    forms: Counter[str] = field(default_factory=Counter)
    step_types: Counter[str] = field(default_factory=Counter)
    workflow_keys: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def merge(self, other: Validation) -> None:
        self.diagnostics.extend(other.diagnostics)
        self.files += other.files
        self.documents.update(other.documents)
        self.tenants.update(other.tenants)
        self.forms.update(other.forms)
        self.step_types.update(other.step_types)
        self.workflow_keys.extend(other.workflow_keys)


def validate_repo(repo: Path, paths: Iterable[Path] | None = None, jobs: int = 0) -> Validation:
    """Validate the repo's documents (or the given files/folders); `jobs` 0 = one per core."""
    paths = list(paths or [])
    sources = list(read_paths(repo, paths)) if paths else read_tree(repo, list(DIRECTORIES))
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(sources) < PARALLEL_THRESHOLD:
        validation = summarize(load_sources(sources, check_unique=False))
    else:
        chunks = [sources[index::jobs] for index in range(jobs)]
        context = multiprocessing.get_context("fork")
        validation = Validation()
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            for part in pool.map(_validate_chunk, chunks):
                validation.merge(part)
    texts = {source.file: source.text for source in sources}
    located = LoadResult(texts=texts)
    order = {source.file: index for index, source in enumerate(sources)}
    keys = sorted(validation.workflow_keys, key=lambda item: order[item[1]])
    validation.diagnostics.extend(duplicate_workflows(keys, located.diagnostic))
    validation.diagnostics.extend(colliding_engine_names(keys, located))
    validation.diagnostics.sort()
    return validation


def _validate_chunk(sources: list[Source]) -> Validation:
    return summarize(load_sources(sources, check_unique=False))


def summarize(result: LoadResult) -> Validation:
    """The plain-data outcome of a load: diagnostics and what the documents contain."""
    validation = Validation(diagnostics=list(result.diagnostics), files=result.files)
    validation.documents.update(
        Workflow=len(result.workflows),
        Environment=len(result.environments),
        Waiver=len(result.waivers),
    )
    for loaded in result.workflows:
        workflow = loaded.model
        validation.workflow_keys.append((workflow.key, loaded.file))
        validation.tenants[workflow.metadata.tenant] += 1
        validation.forms["dag" if workflow.spec.is_dag else "state-machine"] += 1
        for scope in iter_scopes(workflow):
            validation.step_types.update(step.type for step in scope.steps)
    return validation
