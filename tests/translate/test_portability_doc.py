"""docs/portability.md is generated: the translators' FEATURES tables plus the conformance
scenarios (tests/conformance/scenarios.py). The test fails when the file is out of date and
rewrites it with `CPL_REGENERATE=1` (never when `CI` is set)."""

from __future__ import annotations

import os
from pathlib import Path

from controlplane.engines import ENGINES
from controlplane.engines.translator import Feature
from controlplane.report.portability import features_markdown
from tests.conformance.proofs import proofs_markdown
from tests.conformance.scenarios import SCENARIOS, conformance_markdown, environment

DOC = Path(__file__).resolve().parents[2] / "docs" / "portability.md"


def portability_markdown() -> str:
    """The whole document: the construct matrix, then the conformance results."""
    tables: dict[str, dict[str, Feature]] = {
        name: engine.translator.FEATURES for name, engine in ENGINES.items()
    }
    return "\n".join(
        [
            features_markdown(tables),
            conformance_markdown(SCENARIOS, tables),
            proofs_markdown(environment()),
        ]
    )


def test_portability_doc_is_up_to_date() -> None:
    expected = portability_markdown()
    if os.environ.get("CPL_REGENERATE") and not os.environ.get("CI"):
        DOC.write_text(expected, encoding="utf-8")
    assert DOC.exists(), f"{DOC} is missing: run CPL_REGENERATE=1 pytest {__file__}"
    assert DOC.read_text(encoding="utf-8") == expected, (
        f"{DOC.name} is out of date: regenerate with "
        "CPL_REGENERATE=1 pytest tests/translate/test_portability_doc.py"
    )


def test_portability_doc_lists_every_construct_and_scenario() -> None:
    text = portability_markdown()
    for translator in (e.translator for e in ENGINES.values()):
        for feature in translator.FEATURES:
            assert f"| `{feature}` |" in text
    for scenario in SCENARIOS:
        assert f"| `{scenario.id}` |" in text
