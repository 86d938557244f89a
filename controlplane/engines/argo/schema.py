"""Argo manifests checked against Argo's schema through hera's generated models.

hera's models (generated from Argo's OpenAPI schema) ignore fields they do not know, so a
plain `model_validate` accepts a misspelt or misplaced key and drops it. The check here is
therefore a round trip: validate, dump by alias without `None`s, and compare with the input.
Anything the round trip dropped or changed is reported by JSON pointer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from controlplane.errors import ConfigError

KINDS = ("CronWorkflow", "WorkflowTemplate")


@lru_cache(maxsize=1)
def _models() -> dict[str, type[BaseModel]]:
    """hera's generated Argo models; imported on first use (they take ~1 s to import)."""
    from hera.workflows.models import CronWorkflow, WorkflowTemplate

    return {"WorkflowTemplate": WorkflowTemplate, "CronWorkflow": CronWorkflow}


class ManifestSchemaError(ConfigError):
    """A manifest that Argo's schema rejects, or that its models would silently change."""

    def __init__(self, kind: str, name: str, problems: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.problems = problems
        listing = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"Argo {kind} '{name}' does not match Argo's schema:\n{listing}")


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Raise ManifestSchemaError unless `manifest` survives hera's models unchanged."""
    kind = str(manifest.get("kind", ""))
    name = str((manifest.get("metadata") or {}).get("name", "?"))
    model = _models().get(kind)
    if model is None:
        raise ManifestSchemaError(kind, name, [f"/kind: not one of {', '.join(KINDS)}"])
    try:
        parsed = model.model_validate(manifest)
    except ValidationError as exc:
        problems = [
            "/" + "/".join(str(part) for part in error["loc"]) + f": {error['msg']}"
            for error in exc.errors()
        ]
        raise ManifestSchemaError(kind, name, problems) from None
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    problems = list(differences(manifest, dumped, ""))
    if problems:
        raise ManifestSchemaError(kind, name, problems)


def differences(expected: Any, actual: Any, pointer: str) -> list[str]:
    """JSON pointers where `actual` (the round trip) lost or changed part of `expected`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(expected):
            child = f"{pointer}/{_escape(str(key))}"
            if key not in actual:
                found.append(f"{child}: dropped (not a field of Argo's schema here)")
            else:
                found.extend(differences(expected[key], actual[key], child))
        found.extend(
            f"{pointer}/{_escape(str(key))}: added by the models"
            for key in sorted(set(actual) - set(expected))
        )
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{pointer or '/'}: {len(expected)} items became {len(actual)}"]
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found.extend(differences(left, right, f"{pointer}/{index}"))
        return found
    if expected != actual or type(expected) is not type(actual):
        return [f"{pointer or '/'}: {expected!r} became {actual!r}"]
    return []


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
