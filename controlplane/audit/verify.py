"""`cpl audit verify`: check an audit log's hash chain and name its first bad line.

Line k is good when it is a complete line holding a CloudEvents 1.0 event (the SDK parses
it), its `cplhash` matches its content, its `cplprevhash` is the hash of line k-1 (`GENESIS`
for line 1) and its `id` has not been seen before. The first line that is not good is named,
with the reason: an edited line fails its own `cplhash`; a removed, inserted or moved line
breaks the `cplprevhash` link of the line where the chain stops matching.

A hash chain cannot tell that whole lines were cut from the *end* of a log: `cpl audit
verify --env` also holds the log against the deploy state (`controlplane.audit.reconcile`);
for events after the last apply, compare `head` (the last line's hash) with a copy kept
elsewhere, such as the HTTP collector.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from controlplane.audit.chain import GENESIS, HASH, PREVHASH, event_hash, line_hash


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one log: `first_bad_line` is 1-based, None when the log is good."""

    path: Path
    ok: bool
    lines: int
    first_bad_line: int | None = None
    reason: str | None = None
    head: str | None = None  # the line hash a next line would chain to (GENESIS when empty)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "ok": self.ok,
            "lines": self.lines,
            "firstBadLine": self.first_bad_line,
            "reason": self.reason,
            "head": self.head,
        }


def verify(path: Path) -> VerifyResult:
    """Check every line of the log at `path` (a missing file is an empty, good log)."""
    if not path.exists():
        return VerifyResult(path=path, ok=True, lines=0, head=GENESIS)
    raw = _read_settled(path)
    lines = raw.split(b"\n")
    complete = lines[:-1]  # the text after the last "\n": b"" in a well-formed file
    if lines[-1]:
        total = len(complete) + 1
        problem = _first_problem(complete)
        if problem:
            return _bad(path, total, *problem)
        return _bad(path, total, total, "the line is incomplete (a write was cut short)")
    problem = _first_problem(complete)
    if problem:
        return _bad(path, len(complete), *problem)
    head = line_hash(complete[-1]) if complete else GENESIS
    return VerifyResult(path=path, ok=True, lines=len(complete), head=head)


def _read_settled(path: Path) -> bytes:
    """The log's bytes, read under a shared lock so a line being appended is not mistaken for
    a truncated one (the file sink appends under an exclusive lock)."""
    with path.open("rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        return handle.read()


def _bad(path: Path, lines: int, number: int, reason: str) -> VerifyResult:
    return VerifyResult(path=path, ok=False, lines=lines, first_bad_line=number, reason=reason)


def _first_problem(lines: list[bytes]) -> tuple[int, str] | None:
    hashes = [line_hash(line) for line in lines]
    where = {digest: number for number, digest in enumerate(hashes, start=1)}
    seen_ids: dict[str, int] = {}
    expected = GENESIS
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line)
        if problem is not None:
            return number, problem
        document: dict[str, Any] = json.loads(line)
        if document[PREVHASH] != expected:
            return number, _link_problem(number, where.get(document[PREVHASH]))
        event_id = document["id"]
        if event_id in seen_ids:
            return number, f"event id {event_id} repeats line {seen_ids[event_id]}"
        seen_ids[event_id] = number
        expected = hashes[number - 1]
    return None


def _line_problem(line: bytes) -> str | None:
    if not line.strip():
        return "empty line"
    try:
        document = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno}): truncated or edited"
    except UnicodeDecodeError:
        return "not UTF-8 text: edited or corrupted"
    if not isinstance(document, dict):
        return "not a JSON object"
    for attribute in (PREVHASH, HASH):
        if not isinstance(document.get(attribute), str):
            return f"no {attribute} attribute: not written by cpl's audit file sink"
    try:
        JSONFormat().read(CloudEvent, line)
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        return f"not a CloudEvents 1.0 event: {exc}"
    if document[HASH] != event_hash(document):
        return "cplhash does not match the line's content: the line was edited"
    return None


def _link_problem(number: int, chained_to: int | None) -> str:
    if number == 1:
        return (
            "cplprevhash is not the genesis hash: the log does not start here "
            "(its first lines were removed, or this line was inserted or moved)"
        )
    if chained_to is None:
        return (
            f"cplprevhash does not match line {number - 1}: a line was removed or inserted "
            "here, or the previous line was edited"
        )
    if chained_to >= number:
        return f"cplprevhash matches line {chained_to}, which comes after it: lines were reordered"
    return (
        f"cplprevhash matches line {chained_to}, not line {number - 1}: a line was inserted "
        "or lines were moved"
    )
