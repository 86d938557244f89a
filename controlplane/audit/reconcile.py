"""`cpl audit verify --env`: compare an environment's audit log with its deploy state.

A hash chain proves that the lines a log holds were not edited, inserted or reordered, but
not that none were cut from its end, nor that the log is there at all. The deploy state
knows how far the environment got: its `serial` grows with every write, and apply events
carry the serial the state had when they were recorded (`APPLY_COMPLETED` always, the
per-change events since cpl recorded it there). So, for a log whose chain is good:

- a state that applied something (serial > 0) with no apply event in the log: the log was
  deleted, replaced or cut;
- the log's highest serial below the state's, or its last apply without a completion event,
  while no apply of the state was left unfinished (a resource `pending`, from an apply that
  was killed): the log lost its tail;
- the log's highest serial above the state's: the state was restored from an older copy or
  replaced;
- a resource the state records as applied without a succeeded apply event for the same
  workflow, target and artifact digest: that event is missing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.audit.verify import VerifyResult
from controlplane.deploy.apply import (
    APPLY_COMPLETED,
    APPLY_FAILED,
    APPLY_STARTED,
    APPLY_SUCCEEDED,
)
from controlplane.deploy.state import State

_APPLY_EVENTS = frozenset({APPLY_STARTED, APPLY_COMPLETED, APPLY_FAILED, APPLY_SUCCEEDED})


@dataclass
class _Applies:
    """What a log says about the applies of one environment."""

    events: int = 0
    serial: int = 0
    unfinished: bool = False  # the last apply started has no completion event
    applied: set[tuple[str, str, str]] = field(default_factory=set)


def against_state(result: VerifyResult, state: State) -> VerifyResult:
    """`result`, failed when its chain is good but the log lacks what `state` records; the
    bad line is the one after the last (where the missing lines would be)."""
    if not result.ok:
        return result
    problem = state_problem(result.path, state)
    if problem is None:
        return result
    return dataclasses.replace(result, ok=False, first_bad_line=result.lines + 1, reason=problem)


def state_problem(path: Path, state: State) -> str | None:
    """Why the log at `path` (whose chain is good) does not match `state`, or None."""
    if state.serial == 0:
        return None
    lines = path.read_bytes().splitlines() if path.exists() else []
    return lines_problem(lines, path.exists(), state)


def lines_problem(lines: Iterable[bytes], exists: bool, state: State) -> str | None:
    """`state_problem` for a log's lines read from anywhere (an S3 sink's objects, say);
    `exists` says whether there is a log at all."""
    if state.serial == 0:
        return None
    applies = _read_applies(lines, state.environment)
    applied = [r for r in state.resources if r.status == "applied"]
    at = f"the deploy state of '{state.environment}' is at serial {state.serial}"
    if applies.events == 0:
        what = "there is no log" if not exists else "the log has no apply event"
        return (
            f"{at} ({len(applied)} resource(s) applied) but {what}: the log was deleted, "
            "replaced or cut"
        )
    if applies.serial > state.serial:
        return (
            f"the log records serial {applies.serial} but {at}: the state was restored from "
            "an older copy or replaced"
        )
    unfinished = any(r.status == "pending" for r in state.resources)
    if applies.serial < state.serial and not unfinished:
        return (
            f"the log ends at serial {applies.serial} but {at}: the events of later applies "
            "are missing (lines were cut from the end of the log)"
        )
    if applies.unfinished and not unfinished:
        return (
            f"{at} with no apply left unfinished, but the log's last apply has no completion "
            "event: lines were cut from the end of the log (or cpl was killed as that apply "
            "ended)"
        )
    for resource in applied:
        if (resource.workflow, resource.target, resource.artifact_digest) not in applies.applied:
            return (
                f"{at} and records {resource.key} applied (digest {resource.artifact_digest}) "
                "but the log has no apply event for it: lines were cut from the log"
            )
    return None


def _read_applies(lines: Iterable[bytes], environment: str) -> _Applies:
    applies = _Applies()
    for line in lines:
        if not line.strip():
            continue
        event: dict[str, Any] = json.loads(line)
        data = event.get("data")
        if event.get("type") not in _APPLY_EVENTS or not isinstance(data, dict):
            continue
        if data.get("environment") != environment:
            continue
        applies.events += 1
        if event["type"] in (APPLY_STARTED, APPLY_COMPLETED):
            applies.unfinished = event["type"] == APPLY_STARTED
        serial = data.get("serial")
        if isinstance(serial, int):
            applies.serial = max(applies.serial, serial)
        if event["type"] == APPLY_SUCCEEDED and data.get("action") != "delete":
            key = (str(data.get("workflow")), str(data.get("target")), str(data.get("digest")))
            applies.applied.add(key)
    return applies
