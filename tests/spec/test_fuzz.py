"""Random mutations of valid specs never crash the loader: a diagnostic or success, always."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.spec.load import Source, load_sources
from tests.conftest import ROOT

SEEDS = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "workflows").rglob("*.yaml"))]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["$", "$.a[0]", "1h", "5xs", "task", "choice", "", "0 2 * * *", "UTC"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)


def _nodes(value: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [trail]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_nodes(child, (*trail, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_nodes(child, (*trail, index)))
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        trail = draw(st.sampled_from(_nodes(document)))
        if not trail:
            continue
        parent = document
        for key in trail[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "insert", "duplicate"]))
        key = trail[-1]
        if action == "replace":
            parent[key] = draw(junk)
        elif action == "delete":
            del parent[key]
        elif action == "insert" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_documents_never_crash_the_loader(document: Any) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    result = load_sources([Source("workflows/fuzz.yaml", text)])
    if result.workflows:
        assert result.ok or all(d.code.startswith("CPL-S") for d in result.diagnostics)
    else:
        assert result.diagnostics, "a rejected document always says why"
    for diagnostic in result.diagnostics:
        assert diagnostic.line >= 1 and diagnostic.column >= 1
        assert diagnostic.code.startswith("CPL-S")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mangled_yaml_text_never_crashes_the_loader(data: st.DataObject) -> None:
    seed = yaml.safe_dump(data.draw(st.sampled_from(SEEDS)), sort_keys=False)
    start = data.draw(st.integers(0, len(seed) - 1))
    length = data.draw(st.integers(0, 20))
    insert = data.draw(st.text(alphabet=":-[]{}'\"#&*!|> \n\tab1$", max_size=6))
    text = seed[:start] + insert + seed[start + length :]
    result = load_sources([Source("workflows/fuzz.yaml", text)])
    assert result.workflows or result.diagnostics
