"""`cpl audit verify` for an S3 sink: the chain across an environment's objects.

The objects `000000000001.jsonl`, `000000000002.jsonl`, ... read in sequence order are one
hash-chained log (`verify.py` checks their lines: an edited line fails its `cplhash`, a
removed, inserted or moved one breaks a `cplprevhash` link). On top of that, the objects
themselves are checked, and the first problem is named with its object:

- a name that is not `<sequence:012d>.jsonl` under the folder: not written by cpl;
- a gap in the sequence: an object was deleted (or, before object n+1 was written, never
  created: cpl writes n+1 only after reading n);
- an empty object, or one whose last line is cut: truncated;
- in a versioned bucket (Object Lock turns versioning on), a delete marker on a key (the
  object was deleted, including the last one: a truncated tail) or a key with more than one
  version (cpl creates each object once: it was rewritten).

Deleting the last objects of an unversioned bucket leaves a shorter chain that is good;
`cpl audit verify --env` also holds the events against the deploy state
(`reconcile.py`) to catch that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from controlplane.audit.chain import GENESIS, line_hash
from controlplane.audit.s3sink import MAX_OBJECT_BYTES
from controlplane.audit.s3store import S3Store, describe
from controlplane.audit.verify import _first_problem


@dataclass(frozen=True)
class S3VerifyResult:
    """The verdict on one S3 chain; `bad_object` / `bad_line` (1-based, within the object)
    name the first problem."""

    sink: str
    ok: bool
    objects: int
    lines: int
    bad_object: str | None = None
    bad_line: int | None = None
    reason: str | None = None
    head: str | None = None
    events: tuple[bytes, ...] = ()  # the chain's lines, for the deploy-state check and export

    def to_json(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "ok": self.ok,
            "objects": self.objects,
            "lines": self.lines,
            "firstBadObject": self.bad_object,
            "firstBadLine": self.bad_line,
            "reason": self.reason,
            "head": self.head,
        }

    @property
    def where(self) -> str:
        """The bad object (and line) as text, or the sink."""
        if self.bad_object is None:
            return self.sink
        return self.bad_object + (f":{self.bad_line}" if self.bad_line else "")


def verify_s3(store: S3Store) -> S3VerifyResult:
    """Check every object of the chain under `store.location` (none: an empty, good chain)."""
    location = store.location
    try:
        keys = list(store.keys())
        versions = store.versions()
    except Exception as exc:  # botocore's errors: the sink cannot be read at all
        return S3VerifyResult(
            location.url, False, 0, 0, reason=f"cannot list the objects: {describe(exc)}"
        )

    def bad(objects: int, key: str | None, reason: str, line: int | None = None) -> S3VerifyResult:
        shown = location.show(key) if key else None
        return S3VerifyResult(location.url, False, objects, 0, shown, line, reason)

    for key in keys:
        if location.sequence_of(key) is None:
            return bad(len(keys), key, "not an audit object written by cpl (unexpected name)")
    present = {location.sequence_of(key): key for key in keys}
    problem = _version_problem(store, versions, present)
    if problem:
        return bad(len(keys), *problem)
    sequences = sorted(s for s in present if s is not None)
    for expected, sequence in enumerate(sequences, start=1):
        if sequence != expected:
            missing = location.key(expected)
            return bad(
                len(keys),
                missing,
                f"the object is missing: the sequence jumps from {expected - 1} to {sequence} "
                "(an object was deleted)",
            )
    lines: list[bytes] = []
    owners: list[tuple[str, int]] = []  # (key, line within it) of each chain line
    for sequence in sequences:
        key = present[sequence]
        try:
            body = store.read(key, MAX_OBJECT_BYTES)
        except Exception as exc:
            return bad(len(keys), key, f"cannot read the object: {describe(exc)}")
        if len(body) > MAX_OBJECT_BYTES:
            return bad(len(keys), key, f"the object is larger than {MAX_OBJECT_BYTES} bytes")
        if not body:
            return bad(len(keys), key, "the object is empty (truncated)")
        parts = body.split(b"\n")
        if parts[-1]:
            return bad(
                len(keys), key, "the last line is incomplete (the object was cut)", len(parts)
            )
        for number, line in enumerate(parts[:-1], start=1):
            lines.append(line)
            owners.append((key, number))
    found = _first_problem(lines)
    if found:
        number, reason = found
        owner, within = owners[number - 1]
        return bad(len(keys), owner, f"{reason} (line {number} of the chain)", within)
    head = line_hash(lines[-1]) if lines else GENESIS
    return S3VerifyResult(location.url, True, len(keys), len(lines), head=head, events=tuple(lines))


def _version_problem(
    store: S3Store, versions: list[Any], present: dict[int | None, str]
) -> tuple[str, str] | None:
    """The first key (by sequence) deleted or rewritten, per the bucket's versions."""
    location = store.location
    counts = Counter(v.key for v in versions if not v.delete_marker)
    deleted = {v.key for v in versions if v.delete_marker and v.latest}
    keys = sorted(set(counts) | deleted, key=lambda k: location.sequence_of(k) or 0)
    last = max((s for s in present if s is not None), default=0)
    for key in keys:
        sequence = location.sequence_of(key)
        if sequence is None:
            continue
        if key in deleted:
            where = "the last object of the chain" if sequence > last else "an object"
            return key, (
                f"{where} was deleted: a delete marker hides it (its versions are still in "
                "the bucket)"
            )
        if counts[key] > 1:
            return key, (
                f"the object was rewritten: it has {counts[key]} versions (cpl creates each "
                "object once)"
            )
    return None
