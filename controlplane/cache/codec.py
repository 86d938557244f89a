"""Artifacts, diagnostics, rules and located findings as JSON data for cache entries."""

from __future__ import annotations

import importlib
from typing import Any

from controlplane.engines.translator import Artifact, FileWriter, Support, no_files
from controlplane.errors import Diagnostic
from controlplane.policy.decision import Located
from controlplane.policy.library import Finding, RuleInfo


def writer_name(writer: FileWriter) -> str | None:
    """How to find an artifact's file writer again: a module-level function of cpl, by name
    (None for anything else: such an artifact is not cached)."""
    module = getattr(writer, "__module__", "") or ""
    qualname = getattr(writer, "__qualname__", "") or ""
    if not module.startswith("controlplane.") or not qualname.isidentifier():
        return None
    return f"{module}:{qualname}"


def writer_of(name: str) -> FileWriter | None:
    module, _, qualname = name.partition(":")
    if not module.startswith("controlplane.") or not qualname.isidentifier():
        return None
    try:
        found = getattr(importlib.import_module(module), qualname, None)
    except ImportError:
        return None
    return found if callable(found) else None


def artifact_json(artifact: Artifact) -> dict[str, Any] | None:
    writer = no_files if artifact.write_files is no_files else artifact.write_files
    name = writer_name(writer)
    if name is None:
        return None
    return {
        "workflow": artifact.workflow,
        "version": artifact.version,
        "target": artifact.target,
        "engine": artifact.engine,
        "resource": artifact.resource,
        "document": artifact.document,
        "support": [s.to_json() for s in artifact.support],
        "writer": name,
        "sharedBy": list(artifact.shared_by),
    }


def artifact_of(data: Any) -> Artifact | None:
    """The artifact of an entry, or None when the entry is not one (treated as a miss)."""
    try:
        writer = writer_of(str(data["writer"]))
        if writer is None:
            return None
        return Artifact(
            workflow=str(data["workflow"]),
            version=str(data["version"]),
            target=str(data["target"]),
            engine=data["engine"],
            resource=str(data["resource"]),
            document=dict(data["document"]),
            support=tuple(Support(**s) for s in data["support"]),
            write_files=writer,
            shared_by=tuple(data["sharedBy"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def diagnostic_json(diagnostic: Diagnostic) -> list[Any]:
    d = diagnostic
    return [d.file, d.line, d.column, d.code, d.message, d.path, d.severity]


def diagnostic_of(data: list[Any]) -> Diagnostic:
    file, line, column, code, message, path, severity = data
    return Diagnostic(file, int(line), int(column), code, message, path, severity)


def located_json(place: Located) -> list[Any]:
    f = place.finding
    return [f.rule, f.message, f.path, f.kind, place.source, place.line, place.column]


def located_of(data: list[Any]) -> Located:
    rule, message, path, kind, source, line, column = data
    return Located(Finding(rule, message, path, kind), source, int(line), int(column))


def rule_json(info: RuleInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "package": info.package,
        "title": info.title,
        "description": info.description,
        "severity": info.severity,
        "controls": list(info.controls),
        "file": info.file,
    }


def rule_of(data: dict[str, Any]) -> RuleInfo:
    return RuleInfo(**{**data, "controls": tuple(data["controls"])})
