"""The engine-module contract: read / create / update / delete / diff of live resources.

One engine module per engine implements `EngineClient` for one target. The same
implementation serves the `direct` backend (apply), drift detection (read, diff, the
`inventory` of unmanaged candidates) and the Pulumi dynamic provider of `stacks/`.

A `LiveResource.document` has the *shape of the artifact document* after normalization
(`normalize.py`), so `diff(artifact, live)` is a field-level comparison with JSON-pointer paths
and an unchanged resource diffs empty. `desired_document(artifact, live)` is the document the
live one is compared with (normalized the same way, holding only what the engine can hold):
drift compares the two for plain equality first and calls `diff` only when they differ.

Apply stamps the artifact's digest on what it writes (tag `cpl:digest`, label
`cpl.dev/digest`); the artifact document itself never contains it.

Errors are results where a batch is concerned: every failure of one resource is a
`ResourceError` (transient or permanent) naming the resource, and `each` runs an operation over
many resources without letting one failure stop the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypedDict, TypeVar

from controlplane.engines.translator import Artifact
from controlplane.errors import EngineError
from controlplane.spec.environment import EngineName, Target

MANAGED_TAG = "cpl:managed"
DIGEST_TAG = "cpl:digest"
WORKFLOW_TAG = "cpl:workflow"
MANAGED_LABEL = "cpl.dev/managed"
DIGEST_LABEL = "cpl.dev/digest"


class Change(TypedDict):
    """One field that differs: `expected` is the desired value, `actual` the live one."""

    path: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class LiveResource:
    """One resource as it lives in an engine, normalized to the shape of its artifact document.

    `id` is the engine's identifier (state machine ARN, `<namespace>/<resource>` on Temporal,
    the manifest file or `<namespace>/<kind>/<name>` on Argo); `resource` the artifact's
    resource name; `tags` the cpl marks found on it (tags, labels, schedule memo).
    """

    engine: EngineName
    target: str
    resource: str
    id: str
    document: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str | None:
        """The artifact digest apply stamped on the resource, if any."""
        return self.tags.get(DIGEST_TAG)

    @property
    def workflow(self) -> str | None:
        """The workflow key (`tenant/name`) the resource says it belongs to, if any."""
        return self.tags.get(WORKFLOW_TAG)


@dataclass
class ResourceError(EngineError):
    """An operation on one resource failed; `transient` when retrying later may succeed."""

    engine: str = ""
    target: str = ""
    resource: str = ""
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "target": self.target,
            "resource": self.resource,
            "transient": self.transient,
            "message": self.message,
        }


class EngineClient(Protocol):
    """CRUD and diff of the live resources of one target (one implementation per engine)."""

    engine: EngineName
    target: Target

    def read(self, artifact: Artifact) -> LiveResource | None:
        """The live resource the artifact describes, normalized; None when it does not exist."""
        ...

    def create(self, artifact: Artifact) -> LiveResource:
        """Create every live resource of the artifact (stamping its digest); the result read."""
        ...

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        """Converge `live` onto the artifact (stamping its digest); the result read."""
        ...

    def delete(self, resource_id: str) -> None:
        """Delete the resource with this `LiveResource.id`; a missing one is not an error."""
        ...

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        """Field-level differences between the artifact and the live resource."""
        ...

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        """The artifact's document as `diff` compares it with `live`: normalized like the live
        side, reduced to what the engine holds. When it equals `live.document`, `diff` finds
        nothing (drift's fast path relies on it and skips `diff` then)."""
        ...

    def list_managed(self) -> list[LiveResource]:
        """Every resource of the target that carries cpl's marks, read in full."""
        ...

    def inventory(self, known: set[str]) -> list[LiveResource]:
        """The target's live resources that may be unmanaged, light: names and cpl's marks
        (`tags`), not full documents (drift reports their `document` as it is).

        `known` holds the resource names some desired artifact describes: they are read in
        full anyway, so an implementation may leave them out (and save their calls); drift
        ignores any it returns. Drift calls this instead of `list_managed`, which reads every
        managed resource one after the other (measured on 500 + 500 resources: longer than
        all concurrent reads together, bench/RESULTS.md).
        """
        ...


def json_pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer of a path given as keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


_MISSING_KINDS = ("dictionary_item_added", "iterable_item_added")
_ABSENT_KINDS = ("dictionary_item_removed", "iterable_item_removed")


_DIFFING = threading.Lock()


def diff_documents(expected: dict[str, Any], actual: dict[str, Any]) -> list[Change]:
    """Field-level changes between two normalized documents, sorted by path.

    A field only the live side has reports `expected: None`; one it lacks, `actual: None`.
    """
    # imported on first use: the registry (and with it this module) loads for every command
    # that checks engine names, `cpl validate` included, and DeepDiff alone takes ~80 ms
    from deepdiff import DeepDiff

    # One diff at a time, whichever thread asks (drift and plan read concurrently): DeepDiff
    # parses paths with `ast`, and CPython 3.11's AST constructor is not thread-safe ("AST
    # constructor recursion depth mismatch"). Diffing is CPU-bound under the GIL anyway.
    with _DIFFING:
        delta = DeepDiff(expected, actual, view="tree", verbose_level=2)
        changes: dict[str, Change] = {}
        for kind, items in delta.items():
            for item in items:
                path = json_pointer(item.path(output_format="list"))
                before = None if kind in _MISSING_KINDS else item.t1
                after = None if kind in _ABSENT_KINDS else item.t2
                changes[path] = {"path": path, "expected": _plain(before), "actual": _plain(after)}
    return [changes[path] for path in sorted(changes)]


def _plain(value: Any) -> Any:
    """DeepDiff marks an absent side with its `NotPresent` sentinel: that is None here."""
    return None if type(value).__name__ == "NotPresent" else value


Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Outcome(Generic[Item, Result]):
    """What `each` did: results per item that succeeded, errors per item that failed."""

    done: list[tuple[Item, Result]] = field(default_factory=list)
    failed: list[tuple[Item, ResourceError]] = field(default_factory=list)


def each(items: Iterable[Item], operation: Callable[[Item], Result]) -> Outcome[Item, Result]:
    """Run `operation` on every item; a ResourceError of one item does not stop the others."""
    outcome: Outcome[Item, Result] = Outcome()
    for item in items:
        try:
            outcome.done.append((item, operation(item)))
        except ResourceError as error:
            outcome.failed.append((item, error))
    return outcome
