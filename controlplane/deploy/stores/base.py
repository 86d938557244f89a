"""The contract of a state backend (see controlplane.deploy.stores)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from controlplane.deploy.state import State


class StateBackend(ABC):
    """The state document of one environment and its applied specs, in one place."""

    location: str
    """Where the document is, as a user names it in messages (a path or an s3:// URL)."""

    lock_key: str
    """What a lock on this state is keyed by (a lock guards exactly one state)."""

    @abstractmethod
    def read(self) -> State | None:
        """The document, or None when there is none (and no trace that there was one)."""

    @abstractmethod
    def load(self, environment: str) -> State:
        """The document of `environment`, or a new empty one when there is none yet."""

    @abstractmethod
    def save(self, state: State) -> State:
        """Write `state` as the next serial, refusing another lineage or a changed document."""

    @abstractmethod
    def put(self, state: State) -> None:
        """Write `state` as it is where there is no document yet (a migration)."""

    @abstractmethod
    def read_spec(self, workflow: str, version: str) -> str | None:
        """The stored spec of `workflow` at `version`, if any."""

    @abstractmethod
    def write_spec(self, workflow: str, version: str, text: str) -> None:
        """Store the spec of `workflow` at `version` (replacing an older copy)."""

    @abstractmethod
    def specs(self) -> list[tuple[str, str]]:
        """Every (workflow, version) whose spec is stored, sorted."""
