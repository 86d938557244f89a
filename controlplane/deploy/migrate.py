"""Moving an environment's deploy state (and its applied specs) from one backend to another.

The caller holds the locks of both. The document is written to the destination as it is (same
lineage and serial), then every applied spec; then both are read back and compared with the
source. The source is never changed or deleted: after a verified copy the user points
`deploy.state` at the destination. Running it again finds an equal destination and only
completes what is missing, so an interrupted migration is finished by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.deploy.stores import StateBackend
from controlplane.errors import ConfigError

STATE_MIGRATED = "dev.cpl.state.migrated"
STATE_UNLOCKED = "dev.cpl.state.unlocked"


@dataclass(frozen=True)
class Migration:
    """What a migration found and did."""

    environment: str
    source: str
    destination: str
    lineage: str
    serial: int
    resources: int
    specs: int
    specs_copied: int
    state_copied: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "from": self.source,
            "to": self.destination,
            "lineage": self.lineage,
            "serial": self.serial,
            "resources": self.resources,
            "specs": self.specs,
            "specsCopied": self.specs_copied,
            "stateCopied": self.state_copied,
        }


def migrate(environment: str, source: StateBackend, destination: StateBackend) -> Migration:
    """Copy the state of `environment` from `source` to `destination` and verify the copy."""
    if source.lock_key == destination.lock_key:
        raise ConfigError(f"the state is already in {destination.location}")
    state = source.read()
    if state is None:
        raise ConfigError(f"there is no deploy state in {source.location} to migrate")
    if state.environment != environment:
        raise ConfigError(
            f"{source.location} holds the state of environment '{state.environment}', "
            f"not '{environment}'"
        )
    existing = destination.read()
    if existing is None:
        destination.put(state)
    elif existing != state:
        raise ConfigError(
            f"{destination.location} already holds another state (lineage {existing.lineage}, "
            f"serial {existing.serial}; the source has lineage {state.lineage}, serial "
            f"{state.serial}): refusing to replace it"
        )
    specs: dict[tuple[str, str], str] = {}
    for workflow, version in source.specs():
        text = source.read_spec(workflow, version)
        if text is not None:
            specs[(workflow, version)] = text
    copied = 0
    for (workflow, version), text in specs.items():
        if destination.read_spec(workflow, version) != text:
            destination.write_spec(workflow, version, text)
            copied += 1
    _verify(source, destination, state, specs)
    return Migration(
        environment,
        source.location,
        destination.location,
        state.lineage,
        state.serial,
        len(state.resources),
        len(specs),
        copied,
        existing is None,
    )


def _verify(
    source: StateBackend,
    destination: StateBackend,
    state: Any,
    specs: dict[tuple[str, str], str],
) -> None:
    """Read the destination back: the document and every spec must equal the source's."""
    unchanged = f"; {source.location} is unchanged"
    if destination.read() != state:
        raise ConfigError(f"{destination.location} reads back differently{unchanged}")
    for (workflow, version), text in specs.items():
        if destination.read_spec(workflow, version) != text:
            raise ConfigError(
                f"the spec {workflow}@{version} reads back differently from "
                f"{destination.location}{unchanged}"
            )
