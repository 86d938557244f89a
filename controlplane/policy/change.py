"""What changed in a workflow between two versions: action, version bump, breaking changes.

Used for the policy input's `change` document (CPL-P017) and by plan/apply. A change is
*breaking* when runs, callers or operators relying on the previous version can fail or
behave differently in a way they did not opt into:

- a step was removed or renamed (in-flight runs and dashboards refer to steps by name);
- the input schema became stricter: a property was removed, a property's type changed, or
  a property became required;
- retry/timeout semantics tightened: a timeout or heartbeat that is new or shorter (the
  whole-run `spec.timeout` included), a retry that was removed or allows fewer attempts, or
  error names newly marked non-retryable;
- the order of steps changed: a step that used to run after another now runs before it.

Paths are JSON pointers into the *current* normalized document (or the nearest node that
still exists, for removed things), so they map onto the YAML the user is editing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import semver

from controlplane.spec.model import Workflow
from controlplane.spec.normalize import to_document

Action = Literal["create", "update", "delete", "none"]
Bump = Literal["major", "minor", "patch", "none"]


@dataclass(frozen=True)
class Breaking:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Change:
    action: Action
    previous: dict[str, Any] | None
    breaking: tuple[Breaking, ...] = ()
    bump: Bump = "none"
    current: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The `change` document of the policy input (controlplane/policies/README.md)."""
        return {
            "action": self.action,
            "previous": self.previous,
            "breaking": [b.to_json() for b in self.breaking],
            "bump": self.bump,
        }


UNKNOWN = Change("none", None)
"""No base to compare with (no `--base`): nothing is known to have changed."""


def compare(previous: Workflow | None, current: Workflow | None) -> Change:
    """The change from `previous` to `current` (either may be None: create / delete)."""
    before = to_document(previous) if previous is not None else None
    after = to_document(current) if current is not None else None
    return compare_documents(before, after)


def compare_documents(before: dict[str, Any] | None, after: dict[str, Any] | None) -> Change:
    """Like `compare`, on normalized documents."""
    if before is None and after is None:
        return UNKNOWN
    if before is None:
        return Change("create", None, (), "none", after)
    if after is None:
        return Change("delete", before, (), "none", None)
    bump = version_bump(_version(before), _version(after))
    if before == after:
        return Change("none", before, (), bump, after)
    return Change("update", before, tuple(breaking_changes(before, after)), bump, after)


def _version(document: dict[str, Any]) -> str:
    return str(document.get("metadata", {}).get("version", "0.0.0"))


def version_bump(before: str, after: str) -> Bump:
    """Which part of the version went up: `none` when it stayed or went down."""
    try:
        old, new = semver.Version.parse(before), semver.Version.parse(after)
    except ValueError:
        return "none" if before == after else "patch"
    if new <= old:
        return "none"
    if new.major > old.major:
        return "major"
    if new.major == old.major and new.minor > old.minor:
        return "minor"
    return "patch"


def breaking_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Breaking]:
    """Every breaking change from `before` to `after` (normalized documents)."""
    found: list[Breaking] = []
    old_spec, new_spec = before.get("spec", {}), after.get("spec", {})
    found.extend(_schema_changes(old_spec, new_spec))
    found.extend(
        _tightened(
            "/spec/timeout", "workflow timeout", old_spec.get("timeout"), new_spec.get("timeout")
        )
    )
    old_scopes, new_scopes = dict(_scopes(old_spec)), dict(_scopes(new_spec))
    for key, new_scope in new_scopes.items():
        old_scope = old_scopes.get(key)
        if old_scope is not None:
            found.extend(_scope_changes(old_scope, new_scope))
    for key, old_scope in old_scopes.items():
        if key not in new_scopes:
            names = ", ".join(f"'{s['name']}'" for s in old_scope.steps)
            found.append(
                Breaking(
                    _nearest_pointer(key, new_scopes),
                    f"steps {names} removed with their enclosing step",
                )
            )
    return found


# --- steps ------------------------------------------------------------------------------


@dataclass
class _Scope:
    """The steps of one state machine or DAG level: the workflow, a branch or a map body."""

    pointer: str
    steps: list[dict[str, Any]]
    start: str | None
    dag: bool

    def index(self) -> dict[str, int]:
        return {step.get("name", ""): i for i, step in enumerate(self.steps)}


ScopeKey = tuple[str | int, ...]


def _scopes(spec: dict[str, Any]) -> Iterator[tuple[ScopeKey, _Scope]]:
    """Every scope, keyed by step names (not indexes) so that reordering keeps the key."""
    steps = spec.get("steps") or []
    yield from _walk_scope((), "/spec/steps", steps, spec.get("start"), "start" not in spec)


def _walk_scope(
    key: ScopeKey, pointer: str, steps: list[dict[str, Any]], start: str | None, dag: bool
) -> Iterator[tuple[ScopeKey, _Scope]]:
    yield key, _Scope(pointer, steps, start, dag)
    for index, step in enumerate(steps):
        name = step.get("name", str(index))
        here = f"{pointer}/{index}"
        if step.get("type") == "parallel":
            for b, branch in enumerate(step.get("branches") or []):
                yield from _walk_scope(
                    (*key, name, b),
                    f"{here}/branches/{b}/steps",
                    branch.get("steps") or [],
                    branch.get("start"),
                    False,
                )
        elif step.get("type") == "map":
            yield from _walk_scope(
                (*key, name), f"{here}/steps", step.get("steps") or [], step.get("start"), False
            )


def _nearest_pointer(key: ScopeKey, scopes: dict[ScopeKey, _Scope]) -> str:
    """Pointer of the innermost scope of `key` that still exists (for removed scopes)."""
    for length in range(len(key) - 1, -1, -1):
        scope = scopes.get(key[:length])
        if scope is not None:
            return scope.pointer
    return "/spec/steps"


def _scope_changes(old: _Scope, new: _Scope) -> Iterator[Breaking]:
    old_index, new_index = old.index(), new.index()
    removed = [s for s in old.steps if s.get("name") not in new_index]
    added = [s for s in new.steps if s.get("name") not in old_index]
    for step in removed:
        twin = next((a for a in added if _same_but_name(step, a)), None)
        if twin is not None:
            yield Breaking(
                f"{new.pointer}/{new_index[twin['name']]}/name",
                f"step '{step['name']}' renamed to '{twin['name']}'",
            )
        else:
            yield Breaking(new.pointer, f"step '{step['name']}' removed")
    for name, i in new_index.items():
        if name in old_index:
            yield from _step_changes(old.steps[old_index[name]], new.steps[i], f"{new.pointer}/{i}")
    yield from _order_changes(old, new)


def _same_but_name(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = ("name",)
    return {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }


def _step_changes(old: dict[str, Any], new: dict[str, Any], pointer: str) -> Iterator[Breaking]:
    label = f"step '{new.get('name')}'"
    if old.get("type") != new.get("type"):
        yield Breaking(
            f"{pointer}/type", f"{label} changed type {old.get('type')} → {new.get('type')}"
        )
        return
    for name in ("timeout", "heartbeat"):
        yield from _tightened(f"{pointer}/{name}", f"{label} {name}", old.get(name), new.get(name))
    yield from _retry_changes(
        old.get("retry"), new.get("retry"), f"{pointer}/retry", label, pointer
    )


def _tightened(pointer: str, what: str, old: Any, new: Any) -> Iterator[Breaking]:
    if new is None or old == new:
        return
    if old is None:
        yield Breaking(pointer, f"{what} is new ({_seconds(new)}): runs that took longer now fail")
    elif isinstance(old, int | float) and isinstance(new, int | float) and new < old:
        yield Breaking(pointer, f"{what} shortened {_seconds(old)} → {_seconds(new)}")


def _retry_changes(
    old: dict[str, Any] | None, new: dict[str, Any] | None, pointer: str, label: str, step: str
) -> Iterator[Breaking]:
    if not old or old == new:
        return
    old_attempts = int(old.get("maxAttempts", 1))
    if new is None:
        if old_attempts > 1:
            yield Breaking(step, f"{label} no longer retries (was up to {old_attempts} attempts)")
        return
    new_attempts = int(new.get("maxAttempts", 1))
    if new_attempts < old_attempts:
        yield Breaking(
            f"{pointer}/maxAttempts",
            f"{label} retries less: maxAttempts {old_attempts} → {new_attempts}",
        )
    gained = sorted(set(new.get("nonRetryable") or []) - set(old.get("nonRetryable") or []))
    if gained:
        yield Breaking(
            f"{pointer}/nonRetryable",
            f"{label} no longer retries errors {', '.join(gained)}",
        )


def _seconds(value: Any) -> str:
    return f"{value:g}s" if isinstance(value, int | float) else str(value)


# --- order ------------------------------------------------------------------------------


def _order_changes(old: _Scope, new: _Scope) -> Iterator[Breaking]:
    """Pairs of steps present in both versions whose precedence flipped."""
    common = set(old.index()) & set(new.index())
    before_old = _precedence(old, common)
    before_new = _precedence(new, common)
    moved: set[str] = set()
    new_index = new.index()
    for a, b in sorted(before_old):
        if (b, a) in before_new and (a, b) not in before_new and b not in moved:
            moved.add(b)
            yield Breaking(
                f"{new.pointer}/{new_index[b]}",
                f"step '{b}' now runs before '{a}' (it ran after it)",
            )


def _precedence(scope: _Scope, names: set[str]) -> set[tuple[str, str]]:
    """(a, b) for steps a and b in `names` where b can only run after a (a reaches b)."""
    edges: dict[str, set[str]] = {s.get("name", ""): set() for s in scope.steps}
    for step in scope.steps:
        name = step.get("name", "")
        if scope.dag:
            for dependency in step.get("dependsOn") or []:
                edges.setdefault(dependency, set()).add(name)
        else:
            edges[name] |= _successors(step)
    reach: dict[str, set[str]] = {}
    for name in edges:
        seen: set[str] = set()
        stack = list(edges.get(name, ()))
        while stack:
            nxt = stack.pop()
            if nxt not in seen:
                seen.add(nxt)
                stack.extend(edges.get(nxt, ()))
        reach[name] = seen
    return {
        (a, b)
        for a in names
        for b in reach.get(a, set()) & names
        if a != b and a not in reach.get(b, set())  # loops are no order
    }


def _successors(step: dict[str, Any]) -> set[str]:
    found = {step.get("next"), step.get("default"), step.get("onTimeout")}
    found |= {rule.get("next") for rule in step.get("rules") or []}
    found |= {catch.get("next") for catch in step.get("catch") or []}
    return {n for n in found if isinstance(n, str)}


# --- input schema -----------------------------------------------------------------------


def _schema_changes(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> Iterator[Breaking]:
    old = (old_spec.get("input") or {}).get("schema")
    new = (new_spec.get("input") or {}).get("schema")
    if new is None or old == new:
        return
    yield from _object_schema_changes(old or {}, new, "/spec/input/schema", "input")


def _object_schema_changes(
    old: dict[str, Any], new: dict[str, Any], pointer: str, where: str
) -> Iterator[Breaking]:
    old_props: dict[str, Any] = old.get("properties") or {}
    new_props: dict[str, Any] = new.get("properties") or {}
    for name in old_props:
        if name not in new_props:
            yield Breaking(
                f"{pointer}/properties" if new_props else pointer,
                f"{where} property '{name}' removed",
            )
    newly_required = sorted(set(new.get("required") or []) - set(old.get("required") or []))
    for name in newly_required:
        yield Breaking(f"{pointer}/required", f"{where} property '{name}' is now required")
    for name, schema in new_props.items():
        before = old_props.get(name)
        if not isinstance(before, dict) or not isinstance(schema, dict):
            continue
        here = f"{pointer}/properties/{_escape(name)}"
        if "type" in before and "type" in schema and before["type"] != schema["type"]:
            yield Breaking(
                f"{here}/type",
                f"{where} property '{name}' changed type {before['type']} → {schema['type']}",
            )
        elif schema.get("type") == "object" or "properties" in schema:
            yield from _object_schema_changes(before, schema, here, f"{where}.{name}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
