"""JSON Schema (draft 2020-12) of the document kinds, generated from the models."""

from __future__ import annotations

from typing import Any

from controlplane.spec.load import KINDS

KIND_NAMES = tuple(KINDS)
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: str) -> dict[str, Any]:
    """The schema of one kind (`Workflow`, `Environment` or `Waiver`)."""
    schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": DIALECT,
        "$id": f"https://cpl.dev/schemas/v1/{kind.lower()}.json",
        **schema,
        "title": f"cpl {kind}",
    }
