"""`cpl compat` on the example repo: one row per construct, each reason once, the namespace
retention conflict once with its workflows, places per workflow only with --details, and a
JSON output that keeps its original `workflows` / `summary` shape."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli import run
from controlplane.engines.translator import Artifact, Support
from controlplane.report.compat import compat_report, compat_text
from controlplane.spec.environment import EngineName

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ["stepfunctions", "temporal", "argo"]
RETENTION_CONFLICT = "keeps every run history for one retention"


def _compat(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["compat", "--repo", str(ROOT), "--no-color", *args])
    return code, capsys.readouterr().out


def _flat(text: str) -> str:
    """The text with line breaks and indentation collapsed (notes are wrapped)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compat") / "compat.json"
    assert run(["compat", "--repo", str(ROOT), "--format", "json", "-o", str(out)]) == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _rows(text: str) -> dict[str, list[str]]:
    """The construct table: feature → its cells (places, workflows, one per engine)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("construct "))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line:
            break
        feature, *cells = re.split(r"\s{2,}", line.strip())
        assert feature not in rows, f"construct {feature} has two rows"
        rows[feature] = cells
    return rows


def test_one_row_per_construct_with_level_per_engine_and_a_legend(
    capsys: pytest.CaptureFixture[str], matrix: dict[str, Any]
) -> None:
    code, text = _compat(capsys)
    assert code == 0
    rows = _rows(text)
    used = {row["feature"] for w in matrix["workflows"] for row in w["features"]}
    assert set(rows) == used
    assert text.splitlines()[2].split() == ["construct", "places", "workflows", *ENGINES]
    # every example workflow sets a retention: Temporal's one namespace cannot keep them all
    places, workflows, sfn, temporal, argo = rows["retention"]
    assert (places, workflows) == ("15", "15")
    assert (sfn, temporal, argo) == ("approx.", "UNSUPPORTED", "exact")
    assert rows["tracing"][2:] == ["-", "exact", "-"]  # only Temporal renders tracing
    assert "-            not used by the selected workflows on that engine" in text.splitlines()
    assert "UNSUPPORTED  it cannot: policy CPL-P020 denies it on production" in text


def test_each_reason_is_printed_once(
    capsys: pytest.CaptureFixture[str], matrix: dict[str, Any]
) -> None:
    _, text = _compat(capsys)
    flat = _flat(text)
    reasons = {
        cell["reason"]
        for w in matrix["workflows"]
        for row in w["features"]
        for engine in ENGINES
        if (cell := row.get(engine)) and cell["support"] != "exact"
    }
    assert len(reasons) > 20
    repeated = {r: flat.count(_flat(r)) for r in reasons if flat.count(_flat(r)) != 1}
    assert repeated == {}
    assert "/spec/steps/" not in text  # places only with --details


def test_namespace_retention_conflict_appears_once_naming_its_workflows(
    capsys: pytest.CaptureFixture[str], matrix: dict[str, Any]
) -> None:
    _, text = _compat(capsys)
    flat = _flat(text)
    assert flat.count(RETENTION_CONFLICT) == 1
    conflicted = sorted(
        w["workflow"]
        for w in matrix["workflows"]
        for row in w["features"]
        if row["feature"] == "retention" and row["temporal"]["support"] == "unsupported"
    )
    assert len(conflicted) == 15
    note = flat[flat.index("retention: UNSUPPORTED on temporal") :]
    note = note[: note.index(" [", 1)]
    assert all(workflow in note for workflow in conflicted)
    # an unsupported construct whose reason names no workflow gets them listed
    start = flat.index("security.encryption: UNSUPPORTED on argo")
    listed = flat[start : flat.index(" [", start)].split("workflows: ", 1)[1].split(", ")
    assert listed == sorted(
        w["workflow"]
        for w in matrix["workflows"]
        for row in w["features"]
        if row["feature"] == "security.encryption" and row["argo"]["support"] == "unsupported"
    )


def _gaps(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        row
        for row in entry["features"]
        if any(row.get(e, {}).get("support", "exact") != "exact" for e in ENGINES)
    ]


def test_details_list_each_place_with_a_gap_by_workflow(
    capsys: pytest.CaptureFixture[str], matrix: dict[str, Any]
) -> None:
    code, text = _compat(capsys, "--details")
    assert code == 0
    lines = text.splitlines()
    notes = {
        int(m.group(1)): m.group(2) for line in lines if (m := re.match(r"\[(\d+)\] (\S+): ", line))
    }
    for entry in matrix["workflows"]:
        gaps = _gaps(entry)
        head = f"{entry['workflow']}: {len(entry['features'])} places, {len(gaps)} with a gap"
        start = lines.index(head) + 1
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), None)
        section = lines[start:end]
        assert [line.split()[:2] for line in section] == [
            [row["path"], row["feature"]] for row in gaps
        ]
        for line in section:  # each place names the notes of its own construct
            assert {notes[int(n)] for n in re.findall(r"\[(\d+)\]", line)} == {line.split()[1]}
    fx = lines.index(next(line for line in lines if line.startswith("finance/fx-rates-refresh:")))
    retention = next(line for line in lines[fx:] if line.startswith("  /spec/retention "))
    found = re.search(r"temporal UNSUPPORTED \[(\d+)\]", retention)
    assert found and notes[int(found.group(1))] == "retention"
    assert "stepfunctions approx." in retention and "argo" not in retention  # exact on Argo


def test_engine_option_limits_the_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _compat(capsys, "retail/order-fulfillment", "--engine", "argo")
    assert code == 0
    assert text.splitlines()[0].startswith("1 workflow on argo: ")
    assert text.splitlines()[2].split() == ["construct", "places", "workflows", "argo"]
    assert "stepfunctions" not in text and "temporal:" not in text


def test_text_goes_to_the_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "compat.txt"
    code, printed = _compat(capsys, "retail/order-fulfillment", "-o", str(out))
    assert code == 0 and printed == ""
    assert out.read_text().startswith("1 workflow on stepfunctions, temporal, argo: ")


def test_json_keeps_its_shape_and_adds_constructs_and_notes(matrix: dict[str, Any]) -> None:
    totals: dict[str, Counter[str]] = {engine: Counter() for engine in ENGINES}
    notes = {note["note"]: note for note in matrix["notes"]}
    for entry in matrix["workflows"]:
        assert set(entry) == {"workflow", "features"}
        for row in entry["features"]:
            assert {"feature", "path"} <= set(row)
            for engine in ENGINES:
                if engine not in row:
                    continue
                cell = row[engine]
                totals[engine][cell["support"]] += 1
                if cell["support"] == "exact":
                    assert "note" not in cell
                    continue
                note = notes[cell["note"]]
                assert (note["feature"], note["support"], note["reason"]) == (
                    row["feature"],
                    cell["support"],
                    cell["reason"],
                )
                assert engine in note["engines"] and entry["workflow"] in note["workflows"]
    assert matrix["summary"] == {engine: dict(counts) for engine, counts in totals.items()}
    assert matrix["engines"] == ENGINES
    keys = [(n["feature"], n["support"], n["reason"]) for n in matrix["notes"]]
    assert len(keys) == len(set(keys))
    (retention,) = [c for c in matrix["constructs"] if c["feature"] == "retention"]
    assert retention["engines"]["temporal"]["support"] == "unsupported"
    assert retention["engines"]["temporal"]["levels"] == {"unsupported": 15}


def _artifact(workflow: str, engine: EngineName, *records: Support) -> Artifact:
    return Artifact(workflow, "1.0.0", engine, engine, workflow, {}, records)


def test_one_reason_on_several_engines_is_one_note_naming_them() -> None:
    """Support records written by hand: no example construct has one reason on two engines
    now that each engine says what it renders."""
    reason = "rendered nowhere: the engine has no such thing"
    artifacts = [
        _artifact("retail/w", engine, Support("map.batchSize", "approximated", "/x", reason))
        for engine in ("stepfunctions", "argo")
    ]
    text = compat_text(compat_report(artifacts, ["stepfunctions", "temporal", "argo"]))
    notes = [line for line in text if "map.batchSize:" in line]
    assert notes == ["[1] map.batchSize: approx. on stepfunctions, argo (1 place in 1 workflow)"]


def test_a_construct_with_mixed_levels_shows_its_worst_and_where() -> None:
    """Support records written by hand: no example workflow has a construct that one engine
    runs exactly at some places and not at others."""
    heartbeat = "a hung container is stopped only by its timeout"
    artifacts = [
        _artifact(
            f"retail/w{i}",
            "argo",
            Support(
                "task.heartbeat", "approximated" if i == 0 else "exact", "/spec/steps/0", heartbeat
            ),
        )
        for i in range(3)
    ]
    text = compat_text(compat_report(artifacts, ["argo"]))
    assert _rows("\n".join(text))["task.heartbeat"] == ["3", "3", "approx. 1/3"]
    assert (
        "LEVEL n/m    that level at n of its m places on the engine; the others do better" in text
    )
    assert "[1] task.heartbeat: approx. on argo (1 place in 1 workflow)" in text
