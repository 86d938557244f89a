"""Retries of transient engine errors: exponential backoff with full jitter, bounded attempts.

The one place that decides what is transient (throttling, 5xx, connection refused/reset or
timed out, Temporal UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED) and how long to
wait. botocore's own retries are switched off for the engine clients (see
`stepfunctions.aws_client`) so that every retry is counted and jittered here; temporalio's
core retries idempotent RPCs on its own and this layer comes on top for the rest.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from temporalio.service import RPCError, RPCStatusCode

Result = TypeVar("Result")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
    }
)
TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


class TransientError(Exception):
    """An engine module's own marker for a failure worth retrying (e.g. a failed connect)."""


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later may succeed."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or status == 429 or status >= 500
    if isinstance(
        error,
        EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError | ReadTimeoutError,
    ):
        return True
    if isinstance(error, RPCError):
        return error.status in TRANSIENT_RPC
    return isinstance(error, ConnectionRefusedError | ConnectionResetError | TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` calls at most; before call n+1, sleep U(0, min(cap, base * 2**n)) seconds."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The full-jitter delay after failed attempt number `attempt` (0-based)."""
        return float(rng() * min(self.cap, self.base * 2**attempt))


DEFAULT_POLICY = RetryPolicy()


def retry(
    operation: Callable[[], Result],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Call `operation`, retrying transient errors; the last error is raised as is."""
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as error:
            if not is_transient(error) or attempt == policy.attempts - 1:
                raise
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


async def aretry(
    operation: Callable[[], Awaitable[Result]],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Result:
    """`retry` for coroutines (Temporal's client is asynchronous)."""
    for attempt in range(policy.attempts):
        try:
            return await operation()
        except Exception as error:
            if not is_transient(error) or attempt == policy.attempts - 1:
                raise
            await asyncio.sleep(policy.delay(attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")
