"""The deploy state in a directory of the repo (the default backend).

`<dir>/state.json` (atomic writes, `state.json.bak`, see controlplane.deploy.state) and the
applied specs as `<dir>/specs/<tenant>/<name>@<version>.json`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from controlplane.deploy.state import STATE_FILE, State, load_state, read_state, save_state
from controlplane.deploy.state import write_state as _write_state
from controlplane.deploy.stores.base import StateBackend
from controlplane.files import write_atomic

SPECS_DIRECTORY = "specs"


class LocalStore(StateBackend):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = str(directory / STATE_FILE)
        self.lock_key = str(directory.resolve())

    def read(self) -> State | None:
        return read_state(self.directory)

    def load(self, environment: str) -> State:
        return load_state(self.directory, environment)

    def save(self, state: State) -> State:
        return save_state(self.directory, state)

    def put(self, state: State) -> None:
        _write_state(self.directory, state)

    def spec_path(self, workflow: str, version: str) -> Path:
        return self.directory / SPECS_DIRECTORY / f"{workflow}@{version}.json"

    def read_spec(self, workflow: str, version: str) -> str | None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return self.spec_path(workflow, version).read_text("utf-8")
        return None

    def write_spec(self, workflow: str, version: str, text: str) -> None:
        write_atomic(self.spec_path(workflow, version), text)

    def specs(self) -> list[tuple[str, str]]:
        root = self.directory / SPECS_DIRECTORY
        found = []
        for path in root.glob("*/*@*.json"):
            name, _, version = path.name.removesuffix(".json").partition("@")
            found.append((f"{path.parent.name}/{name}", version))
        return sorted(found)
