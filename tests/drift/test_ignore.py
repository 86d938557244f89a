"""`drift/ignore.yaml`: rules are keyed by engine, and the engines are the registry's."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.drift.ignore import load_ignore
from controlplane.engines import ENGINES
from controlplane.errors import ConfigError
from tests.engine_modules import toy_engine

RULES = "apiVersion: cpl.dev/v1\nkind: DriftIgnore\nignore:\n  {engine}:\n    - /steps/*/seconds\n"


def write(repo: Path, engine: str) -> Path:
    (repo / "drift").mkdir()
    (repo / "drift" / "ignore.yaml").write_text(RULES.format(engine=engine))
    return repo


def test_a_misspelt_engine_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_ignore(write(tmp_path, "temporl"))
    assert "drift/ignore.yaml: ignore: " in caught.value.message
    assert "unknown engine 'temporl'; did you mean 'temporal'?" in caught.value.message


def test_rules_for_a_registered_engine_apply_to_its_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ENGINES, toy_engine.NAME, toy_engine.ENGINE)
    rules = load_ignore(write(tmp_path, "toy"))
    change = {"path": "/steps/2/seconds", "expected": 60, "actual": 5}
    kept, ignored = rules.split(
        [change], engine="toy", workflow="acme/greeting", target="toy-local", environment="dev"
    )
    assert (kept, ignored) == ([], [change])
