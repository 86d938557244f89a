"""Policy evaluation on worker processes: the same findings as in-process, errors reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import generate
from controlplane.errors import ConfigError
from controlplane.policy import engine as engine_module
from controlplane.policy import processes
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.inputs import build_inputs
from controlplane.policy.library import load_library
from controlplane.spec.load import load_environment, load_repo

# A rule whose evaluation fails (two values for one complete rule), found only at run time.
CONFLICT = """# METADATA
# custom: {id: CPL-X201, severity: low, controls: []}
package cpl.rules.conflicting

import rego.v1

_value := input.workflow.metadata.name
_value := "other"

deny contains {"msg": _value, "path": ""} if true
"""


@pytest.fixture(scope="module")
def corpus_documents(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Policy inputs of a generated corpus (every engine, both forms, nested steps)."""
    repo = tmp_path_factory.mktemp("corpus")
    generate(repo, 120, seed=7)
    loaded = load_repo(repo, [repo / "workflows"])
    inputs, problems = build_inputs(loaded, load_environment(repo, "local"))
    assert not problems and len(inputs) == 120
    return [i.document for i in inputs]


def test_processes_threads_and_one_engine_find_the_same(
    corpus_documents: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PARALLEL_MIN", 20)  # threads for this small batch
    monkeypatch.setattr(processes, "CHUNK", 25)  # several chunks per worker
    with (
        EmbeddedOpa(load_library(), workers=1, processes=0) as serial,
        EmbeddedOpa(load_library(), workers=2, processes=0) as threads,
        EmbeddedOpa(load_library(), processes=2) as spawned,
    ):
        expected = serial.evaluate(corpus_documents)
        assert sum(len(f) for f in expected) > 0  # the corpus has findings to compare
        assert threads.evaluate(corpus_documents) == expected
        assert spawned.evaluate(corpus_documents) == expected


def test_an_evaluation_error_in_a_worker_is_a_config_error(
    tmp_path: Path, corpus_documents: list[dict]
) -> None:
    (tmp_path / "conflicting.rego").write_text(CONFLICT)
    library = load_library([tmp_path], base=tmp_path.parent)
    with EmbeddedOpa(library, processes=1) as spawned, pytest.raises(ConfigError) as raised:
        spawned.evaluate(corpus_documents[:3])
    assert "policy evaluation failed" in str(raised.value)
    assert "conflicting" in str(raised.value) or "conflict" in str(raised.value).lower()


@pytest.mark.parametrize(
    ("setting", "cpus", "inputs", "expected"),
    [
        ("", 2, 5000, 0),  # two cores: threads, never slower than before
        ("", 8, 5000, 8),
        ("", 8, 50, 0),  # a small batch does not pay for the spawns
        ("3", 2, 5000, 3),
        ("0", 8, 5000, 0),
    ],
)
def test_worker_processes_only_with_cores_to_spare(
    monkeypatch: pytest.MonkeyPatch, setting: str, cpus: int, inputs: int, expected: int
) -> None:
    monkeypatch.setenv("CPL_POLICY_PROCESSES", setting)
    monkeypatch.setattr(processes.os, "cpu_count", lambda: cpus)
    assert processes.configured_processes(inputs) == expected
