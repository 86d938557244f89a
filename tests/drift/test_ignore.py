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


def test_an_unreadable_ignore_file_is_an_error_not_an_empty_rule_set(tmp_path: Path) -> None:
    (tmp_path / "drift").mkdir()
    (tmp_path / "drift" / "ignore.yaml").symlink_to("moved.yaml")
    with pytest.raises(ConfigError) as caught:
        load_ignore(tmp_path)
    assert "drift/ignore.yaml: a broken symbolic link" in caught.value.message


def test_an_alias_bomb_in_the_ignore_file_stops_at_the_bound(tmp_path: Path) -> None:
    lines = ["a: &a ['" + "x" * 100_000 + "']"]
    lines += [f"b{index}: *a" for index in range(100)]
    (tmp_path / "drift").mkdir()
    (tmp_path / "drift" / "ignore.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_ignore(tmp_path)
    assert "drift/ignore.yaml:" in caught.value.message
    assert "aliases expand the document" in caught.value.message
