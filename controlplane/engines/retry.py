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
    """An engine module's own marker for a failure worth retrying (e.g. HTTP 503)."""


class NoAnswer(TransientError):
    """An engine module's marker for an engine that did not answer (a failed connect)."""


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


def is_unanswered(error: BaseException) -> bool:
    """Whether the engine did not answer at all (no connection, or no reply in time), as
    opposed to answering "not now" (throttling, a 5xx): the errors a frozen engine gives."""
    if isinstance(error, TransientError):
        return isinstance(error, NoAnswer)
    if isinstance(error, RPCError):
        return error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(
        error,
        EndpointConnectionError
        | ConnectionClosedError
        | ConnectTimeoutError
        | ReadTimeoutError
        | ConnectionRefusedError
        | ConnectionResetError
        | TimeoutError,
    )


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


Notify = Callable[[BaseException], None]


def _give_up(
    error: BaseException,
    attempt: int,
    policy: RetryPolicy,
    delay: float,
    deadline: float | None,
    clock: Callable[[], float],
) -> bool:
    """Whether to raise `error` instead of waiting `delay` and trying again.

    A retry that would start after the deadline is not made: the deadline bounds the whole
    request, retries included (a target that does not answer is not waited on five times).
    """
    if not is_transient(error) or attempt == policy.attempts - 1:
        return True
    return deadline is not None and clock() + delay >= deadline


def retry(
    operation: Callable[[], Result],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_transient: Notify | None = None,
) -> Result:
    """Call `operation`, retrying transient errors; the last error is raised as is.

    `deadline` (on `clock`, monotonic seconds) is when to stop retrying; `on_transient` is
    told of every transient failure that will be retried.
    """
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as error:
            delay = policy.delay(attempt)
            if _give_up(error, attempt, policy, delay, deadline, clock):
                raise
            if on_transient is not None:
                on_transient(error)
            sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def aretry(
    operation: Callable[[], Awaitable[Result]],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_transient: Notify | None = None,
) -> Result:
    """`retry` for coroutines (Temporal's client is asynchronous)."""
    for attempt in range(policy.attempts):
        try:
            return await operation()
        except Exception as error:
            delay = policy.delay(attempt)
            if _give_up(error, attempt, policy, delay, deadline, clock):
                raise
            if on_transient is not None:
                on_transient(error)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
