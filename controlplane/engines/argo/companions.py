"""The files GitOps delivery keeps next to a workflow's manifest (its Argo Events manifests,
its service account and role): written with the workflow, removed when it no longer has
them, and read back into its live document under one key, so plan and drift compare them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from controlplane.engines.live import LiveResource, ResourceError
from controlplane.files import write_atomic


def write_companion(
    path: Path, manifests: list[dict[str, Any]] | None, text_of: Callable[[list[Any]], str]
) -> None:
    """Write `manifests` (as `text_of` renders them) to `path`, or remove a stale file."""
    if manifests:
        write_atomic(path, text_of(manifests))
    else:
        path.unlink(missing_ok=True)


def with_companion(
    live: LiveResource, path: Path, key: str, error: Callable[[str, str], ResourceError]
) -> LiveResource:
    """`live` with the manifests of the file at `path` (if any) as `document[key]`."""
    if not path.exists():
        return live
    try:
        manifests = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as problem:
        raise error(live.resource, f"cannot read {path}: {problem}") from None
    return dataclasses.replace(live, document={**live.document, key: manifests})
