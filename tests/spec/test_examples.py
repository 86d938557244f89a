"""The example control repo: it validates, round-trips, and matches the JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from controlplane.spec.load import load_repo
from controlplane.spec.normalize import to_data, to_document
from controlplane.spec.schema import json_schema
from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "workflows").rglob("*.yaml"))
DOCUMENTS = sorted(
    [*EXAMPLES, *(ROOT / "environments").glob("*.yaml"), *(ROOT / "waivers").glob("*.yaml")]
)


def test_the_example_repo_is_valid() -> None:
    result = load_repo(ROOT)
    assert [d.format() for d in result.diagnostics] == []
    assert len(result.workflows) >= 10
    assert {w.model.metadata.tenant for w in result.workflows} >= {"retail", "health", "finance"}
    assert {e.model.name for e in result.environments} == {"local", "staging", "prod"}


def test_the_examples_use_every_step_type_and_both_forms() -> None:
    from controlplane.report.validation import summary
    from controlplane.spec.validate import validate_repo

    facts = summary(validate_repo(ROOT))
    assert set(facts["stepTypes"]) == {
        "task",
        "choice",
        "parallel",
        "map",
        "wait",
        "approval",
        "succeed",
        "fail",
    }
    assert set(facts["forms"]) == {"dag", "state-machine"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_round_trips(path: Path) -> None:
    original = yaml.safe_load(path.read_text())
    (loaded,) = load_repo(ROOT, [path]).workflows
    assert to_data(loaded.model) == _stringify_dates(original)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_json_schema_accepts_every_example(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    schema = json_schema(document["kind"])
    jsonschema.Draft202012Validator(schema).validate(_stringify_dates(document))


@pytest.mark.parametrize("kind", ["Workflow", "Environment", "Waiver"])
def test_the_json_schema_is_valid_2020_12(kind: str) -> None:
    schema = json_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


BROKEN = {
    "unknown key": ("spec", {"retryz": 1}),
    "unknown step type": ("step", {"type": "sleep"}),
    "bad duration": ("spec", {"timeout": "2 hours"}),
    "bad classification": ("metadata", {"classification": "secret"}),
    "bad name": ("metadata", {"name": "Order_Flow"}),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_the_json_schema_rejects_broken_documents(case: str) -> None:
    document = yaml.safe_load(EXAMPLES[0].read_text())
    where, change = BROKEN[case]
    target = document["spec"]["steps"][0] if where == "step" else document[where]
    target.update(change)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema("Workflow")).validate(document)


def test_the_normalized_document_has_typed_values_and_defaults() -> None:
    loaded = load_repo(ROOT).workflows
    with_defaults = [w for w in loaded if w.model.spec.defaults and w.model.spec.defaults.timeout]
    assert with_defaults, "an example sets spec.defaults.timeout"
    document = to_document(with_defaults[0].model)
    tasks = [s for s in document["spec"]["steps"] if s["type"] == "task"]
    assert tasks and all(isinstance(t["timeout"], int | float) for t in tasks)
    assert document["metadata"]["classification"]


def _stringify_dates(value: object) -> object:
    """YAML turns 2027-01-31 into a date; the models keep dates as ISO strings in JSON."""
    import datetime as dt

    if isinstance(value, dict):
        return {k: _stringify_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_dates(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
