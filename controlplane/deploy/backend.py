"""The backend contract: how `apply` makes one planned change live.

`apply(plan, decision, backend)` (controlplane.deploy.apply) owns everything around a change:
it refuses a denied plan, takes the environment's lock, orders the changes, records `pending`
state before and `applied` / `failed` state after each one, emits the audit events and reports
progress. A backend only does the engine work of *one* change and says what now lives:

- `create` / `update`: converge the engine onto `change.artifact` and return the
  `ResourceState` to record (status `applied`, `resource_id` the live id, `artifact_digest`
  the digest it stamped). Creating a resource that already exists must converge it, not
  duplicate it (apply re-runs changes after a crash).
- `delete`: remove `change.resource_id` (a resource that is already gone is not an error) and
  return None: apply then forgets the key.
- any failure of the change: raise `controlplane.engines.ResourceError` naming the engine,
  target and resource (`transient=True` when retrying later may succeed, e.g. the engine is
  unreachable). Apply records the failure and goes on with the other changes.

`apply_change` is called from worker threads (one change at a time per target, targets in
parallel): a backend must not share unsynchronized per-call state across targets.

Registered by name in `BACKENDS` ("module:class", imported only when chosen, so the `pulumi`
SDK loads only for `--backend pulumi`); `open_backend(name, environment, repo)` builds one.
A backend class takes `(environment: Environment, *, repo: Path)` and must raise a
`controlplane.errors.CplError` with a clear message when what it needs is missing (e.g. the
Pulumi CLI).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from controlplane.errors import ConfigError

if TYPE_CHECKING:
    from controlplane.deploy.plan import PlannedChange
    from controlplane.deploy.state import ResourceState
    from controlplane.spec.environment import Environment

BACKENDS: dict[str, str] = {
    "direct": "controlplane.deploy.direct:DirectBackend",
    "pulumi": "controlplane.deploy.pulumi_backend:PulumiBackend",
}


@runtime_checkable
class Backend(Protocol):
    """Makes one planned change live (see the module docstring for the full contract)."""

    name: str

    def apply_change(self, change: PlannedChange) -> ResourceState | None:
        """Create/update → the ResourceState to record; delete → None. ResourceError on failure."""
        ...

    def close(self) -> None:
        """Release connections (called once, after the last change)."""
        ...


def open_backend(name: str, environment: Environment, *, repo: Path) -> Backend:
    """The backend called `name` for `environment` (ConfigError for an unknown name)."""
    if name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown deploy backend '{name}' (known: {known})")
    module, attribute = BACKENDS[name].split(":")
    factory = getattr(importlib.import_module(module), attribute)
    backend: Backend = factory(environment, repo=repo)
    return backend
