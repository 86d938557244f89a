"""The hash chain of an audit log: how a line's `cplhash` and its successor's `cplprevhash`
are computed. Shared by the file sink (writing) and `verify` (checking)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

PREVHASH: Final = "cplprevhash"
HASH: Final = "cplhash"
# The first line's `cplprevhash`: the sha256 of the empty string (there is no previous line).
GENESIS: Final = hashlib.sha256(b"").hexdigest()


def line_hash(line: bytes) -> str:
    """The `cplprevhash` the next line must carry: sha256 of this line's bytes, without `\\n`."""
    return hashlib.sha256(line.removesuffix(b"\n")).hexdigest()


def event_hash(event: dict[str, Any]) -> str:
    """`cplhash`: sha256 over the canonical JSON (sorted keys, no spaces, UTF-8) of the
    structured-mode event without its own `cplhash`."""
    body = {key: value for key, value in event.items() if key != HASH}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
