"""Durations are bounded by what the engines can hold (`MAX_DURATION_SECONDS`, Go's
`time.Duration`): a longer one is a validation error at its line, never a deployed overflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.cli import run
from controlplane.spec.types import MAX_DURATION_SECONDS, Duration, parse_duration


def test_the_longest_duration_is_accepted_and_one_second_more_is_not() -> None:
    assert parse_duration(f"{MAX_DURATION_SECONDS}s") == MAX_DURATION_SECONDS
    assert parse_duration("106751d") == 106751 * 86400
    for text in (f"{MAX_DURATION_SECONDS + 1}s", "106752d", "106751d2562047h"):
        with pytest.raises(ValueError, match="longer than any engine accepts"):
            parse_duration(text)


def test_a_number_with_thousands_of_digits_is_refused_quickly() -> None:
    with pytest.raises(ValueError, match="longer than any engine accepts"):
        parse_duration("9" * 100_000 + "ms")
    with pytest.raises(ValueError):
        Duration("9" * 5_000 + "d")


def test_an_overlong_timeout_is_a_validation_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "workflows" / "acme").mkdir(parents=True)
    (tmp_path / "workflows" / "acme" / "long.yaml").write_text(
        "apiVersion: cpl.dev/v1\n"
        "kind: Workflow\n"
        "metadata: {name: long, tenant: acme, version: 1.0.0, owner: a}\n"
        "spec:\n"
        "  timeout: 99999999999999999999999d\n"
        "  start: a\n"
        "  steps:\n"
        "    - {name: a, type: task, activity: x.y, end: true}\n",
        encoding="utf-8",
    )
    assert run(["validate", "--repo", str(tmp_path), "--format", "json"]) == 1
    found = [
        d for d in json.loads(capsys.readouterr().out)["diagnostics"] if d["code"] == "CPL-S022"
    ]
    assert [(d["line"], d["path"]) for d in found] == [(5, "/spec/timeout")]
    assert "longer than any engine accepts" in found[0]["message"]
