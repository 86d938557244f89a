"""The data document helpers the interpreter uses: paths, parameters, conditions, batches."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.engines.temporal.runtime.data import (
    DataError,
    chunks,
    evaluate,
    get_path,
    resolve,
    set_path,
    task_input,
)

DOC = {"order": {"id": "o-1", "lines": [{"sku": "a", "qty": 2}], "total": 1200}, "vip": False}


def test_get_path_reads_keys_and_indexes() -> None:
    assert get_path(DOC, "$") == DOC
    assert get_path(DOC, "$.order.lines[0].qty") == 2
    with pytest.raises(DataError):
        get_path(DOC, "$.order.missing")
    with pytest.raises(DataError):
        get_path(DOC, "order.id")


def test_set_path_copies_and_creates_objects() -> None:
    updated = set_path(DOC, "$.result.reservation", {"id": "r"})
    assert updated["result"] == {"reservation": {"id": "r"}}
    assert "result" not in DOC
    assert set_path(DOC, "$", [1]) == [1]
    assert set_path(DOC, "$.order.lines[0].qty", 5)["order"]["lines"][0]["qty"] == 5
    with pytest.raises(DataError):
        set_path(DOC, "$.order.lines[3]", 1)
    with pytest.raises(DataError):
        set_path([1, 2], "$.a", 1)


def test_parameters_resolve_paths_recursively_else_whole_document() -> None:
    step = {
        "parameters": {"id": "$.order.id", "nested": {"skus": ["$.order.lines[0].sku"]}, "n": 1}
    }
    assert task_input(step, DOC) == {"id": "o-1", "nested": {"skus": ["a"]}, "n": 1}
    assert task_input({}, DOC) == DOC
    assert resolve("$ not a path", DOC) == "$ not a path"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"path": "$.order.total", "gt": 1000}, True),
        ({"path": "$.order.total", "le": 1000}, False),
        ({"path": "$.order.total", "eq": "1200"}, False),
        ({"path": "$.vip", "eq": False}, True),
        ({"path": "$.vip", "eq": 0}, False),
        ({"path": "$.order.id", "ne": "o-2"}, True),
        ({"path": "$.order.id", "in": ["o-1", "o-3"]}, True),
        ({"path": "$.order.id", "matches": "^o-\\d$"}, True),
        ({"path": "$.order.id", "gt": 3}, False),
        ({"path": "$.missing", "exists": False}, True),
        ({"path": "$.missing", "ne": 1}, False),
        (
            {"all": [{"path": "$.vip", "eq": False}, {"not": {"path": "$.order.total", "lt": 10}}]},
            True,
        ),
        (
            {"any": [{"path": "$.vip", "eq": True}, {"path": "$.order.lines[0].sku", "eq": "b"}]},
            False,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    assert evaluate(condition, DOC) is expected


def test_a_condition_needs_exactly_one_operator() -> None:
    with pytest.raises(DataError):
        evaluate({"path": "$.vip", "eq": True, "ne": False}, DOC)


def test_chunks_batch_items() -> None:
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunks([1, 2], None) == [1, 2]
