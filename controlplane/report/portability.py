"""The language-wide portability matrix of docs/portability.md: which constructs each engine
runs exactly, approximately or not at all, from the translators' FEATURES tables.

The per-workflow view of the same question (`cpl compat`, from Support records) is
`controlplane.report.compat`.
"""

from __future__ import annotations

from controlplane.engines.translator import GOVERNANCE_FEATURES, Feature


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
        "it on production. A construct not listed for an engine is exact there, except the "
        "parts of `access`, `slo` and `alerts`, which take the verdict of the whole.",
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
                # an engine that renders no governance construct (`alerts`) records it whole:
                # each part another engine renders (`alerts.duration`) has the whole's verdict
                whole = feature.split(".", 1)[0]
                parent = tables[engine].get(whole) if whole in GOVERNANCE_FEATURES else None
                cells.append(parent.support if parent is not None else "exact")
                continue
            cells.append(verdict.support)
            if verdict.reason:
                notes.append(f"- **{feature}** on {engine}: {verdict.reason}")
        lines.append(f"| `{feature}` | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", "## Notes", "", *notes, ""])
