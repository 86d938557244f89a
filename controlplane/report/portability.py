"""Portability reports: which constructs each engine runs exactly, approximately or not at all.

Built from Support records (per workflow, for `cpl compat`) and from the translators'
FEATURES tables (the whole language, for docs/portability.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from controlplane.engines.translator import Artifact, Feature, Support
from controlplane.spec.environment import ENGINE_NAMES

_MARK = {"exact": "exact", "approximated": "approx.", "unsupported": "UNSUPPORTED"}


def compat_matrix(artifacts: list[Artifact]) -> dict[str, Any]:
    """Per workflow, each construct (feature at a path) x engine → support and reason."""
    by_workflow: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    totals: dict[str, Counter[str]] = {engine: Counter() for engine in ENGINE_NAMES}
    for artifact in artifacts:
        for record in _distinct(artifact.support):
            row = by_workflow[artifact.workflow].setdefault(
                (record.feature, record.path), {"feature": record.feature, "path": record.path}
            )
            row[artifact.engine] = {"support": record.support, "reason": record.reason}
            totals[artifact.engine][record.support] += 1
    return {
        "workflows": [
            {"workflow": workflow, "features": sorted(rows.values(), key=_row_order)}
            for workflow, rows in sorted(by_workflow.items())
        ],
        "summary": {engine: dict(counts) for engine, counts in totals.items() if counts},
    }


def compat_text(matrix: dict[str, Any], engines: list[str]) -> list[str]:
    """A table per workflow, showing only constructs that are not exact everywhere."""
    lines: list[str] = []
    for entry in matrix["workflows"]:
        gaps = [
            row
            for row in entry["features"]
            if any(row.get(e, {}).get("support", "exact") != "exact" for e in engines)
        ]
        lines.append(f"{entry['workflow']}: {len(entry['features'])} constructs, {len(gaps)} gaps")
        for row in gaps:
            cells = "  ".join(
                f"{e}={_MARK[row[e]['support']]}" if e in row else f"{e}=-" for e in engines
            )
            lines.append(f"  {row['feature']:<28} {row['path']:<40} {cells}")
            for engine in engines:
                cell = row.get(engine)
                if cell and cell["support"] != "exact" and cell["reason"]:
                    lines.append(f"      {engine}: {cell['reason']}")
    lines.append("")
    for engine, counts in matrix["summary"].items():
        if engine in engines:
            summary = ", ".join(f"{counts.get(level, 0)} {level}" for level in _MARK)
            lines.append(f"{engine}: {summary}")
    return lines


def features_markdown(tables: dict[str, dict[str, Feature]]) -> str:
    """The language-wide matrix of docs/portability.md from the translators' FEATURES."""
    features = sorted({name for table in tables.values() for name in table})
    engines = list(tables)
    lines = [
        "# Portability of cpl constructs",
        "",
        "Generated from the translators' FEATURES tables "
        "(`CPL_REGENERATE=1 pytest tests/translate/test_portability_doc.py`). "
        "`exact`: the engine does what the spec says; `approximated`: it does nearly that, "
        "as the note says; `unsupported`: the engine cannot do it and policy CPL-P020 denies "
        "it on production. A construct not listed for an engine is exact there.",
        "",
        "| construct | " + " | ".join(engines) + " |",
        "|---|" + "---|" * len(engines),
    ]
    notes: list[str] = []
    for feature in features:
        cells = []
        for engine in engines:
            verdict = tables[engine].get(feature)
            if verdict is None:
                cells.append("exact")
                continue
            cells.append(verdict.support)
            if verdict.reason:
                notes.append(f"- **{feature}** on {engine}: {verdict.reason}")
        lines.append(f"| `{feature}` | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", "## Notes", "", *notes, ""])


def _distinct(records: tuple[Support, ...]) -> list[Support]:
    seen: dict[tuple[str, str], Support] = {}
    rank = {"exact": 0, "approximated": 1, "unsupported": 2}
    for record in records:
        key = (record.feature, record.path)
        if key not in seen or rank[record.support] > rank[seen[key].support]:
            seen[key] = record
    return list(seen.values())


def _row_order(row: dict[str, Any]) -> tuple[str, str]:
    return (row["path"], row["feature"])
