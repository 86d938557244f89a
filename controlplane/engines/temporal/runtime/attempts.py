"""The pure rules behind a task's attempts: idempotent activity ids, jittered retry delays and
injected faults (the interpreter's attempt loop, `calls.py`, carries them out).

Imported by the workflow sandbox: standard library and cpl's pure runtime modules only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.engines.temporal.runtime.data import DataError, get_path
from controlplane.engines.temporal.runtime.payload import FaultSpec

DEFAULT_RETRY_ATTEMPTS = 3
"""maxAttempts of a `retry` that does not set it (the Step Functions default)."""

DEFAULT_INITIAL_INTERVAL = 1.0
DEFAULT_BACKOFF_RATE = 2.0

MAX_KEY_CHARS = 200
"""A resolved key longer than this is replaced by its SHA-256 (activity ids are bounded)."""


@dataclass(frozen=True)
class RetrySettings:
    """A step's `retry` with the interpreter's defaults filled in (no retry: one attempt)."""

    max_attempts: int = 1
    initial_interval: float = DEFAULT_INITIAL_INTERVAL
    backoff_rate: float = DEFAULT_BACKOFF_RATE
    max_interval: float | None = None
    jitter: bool = False
    non_retryable: tuple[str, ...] = ()

    @classmethod
    def of(cls, step: Mapping[str, Any]) -> RetrySettings:
        retry = step.get("retry")
        if not retry:
            return cls()
        return cls(
            max_attempts=int(retry.get("maxAttempts", DEFAULT_RETRY_ATTEMPTS)),
            initial_interval=float(retry.get("initialInterval", DEFAULT_INITIAL_INTERVAL)),
            backoff_rate=float(retry.get("backoffRate", DEFAULT_BACKOFF_RATE)),
            max_interval=float(retry["maxInterval"]) if "maxInterval" in retry else None,
            jitter=retry.get("jitter") == "full",
            non_retryable=tuple(retry.get("nonRetryable", [])),
        )

    def ceiling(self, failed_attempt: int) -> float:
        """The un-jittered delay after the 1-based `failed_attempt`: Temporal's backoff,
        initialInterval * backoffRate^(n-1), capped at maxInterval."""
        delay = self.initial_interval * self.backoff_rate ** (failed_attempt - 1)
        return delay if self.max_interval is None else min(delay, self.max_interval)

    def delay(self, failed_attempt: int, uniform: Callable[[float, float], float]) -> float:
        """Seconds to wait before the next attempt: full jitter draws uniform(0, ceiling)."""
        ceiling = self.ceiling(failed_attempt)
        return uniform(0.0, ceiling) if self.jitter else ceiling

    def retries(self, error: str, failed_attempt: int, retryable: bool = True) -> bool:
        """Whether a failure named `error` of attempt `failed_attempt` is tried again.

        As with Temporal's RetryPolicy, `Timeout` is always retried and an error the activity
        raised as non-retryable never is.
        """
        if failed_attempt >= self.max_attempts or not retryable:
            return False
        return error == "Timeout" or error not in self.non_retryable


def activity_id(step: Mapping[str, Any], document: Any) -> str | None:
    """`<step name>:<resolved key>` for a step with `idempotencyKey`, else None.

    The key is resolved against the data document (as `parameters` are): a string as is, any
    other value as canonical JSON. A path that does not resolve, or resolves to null, fails
    the step with the catchable DataPathError.
    """
    path = step.get("idempotencyKey")
    if not path:
        return None
    value = get_path(document, path)
    if value is None:
        raise DataError(f"idempotencyKey {path} is null")
    key = (
        value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, separators=(",", ":"))
    )
    if len(key) > MAX_KEY_CHARS:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return f"{step['name']}:{key}"


def faults_for(faults: Sequence[FaultSpec], step: str, attempt: int) -> list[FaultSpec]:
    """The injected faults hitting the 1-based `attempt` of `step`, in plan order."""
    hits = []
    for fault in faults:
        attempts = fault.get("attempts")
        if fault["step"] == step and (attempts is None or attempt in attempts):
            hits.append(fault)
    return hits
