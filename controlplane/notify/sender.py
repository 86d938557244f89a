"""Posting one body to a webhook: bounded retries with backoff, Retry-After honoured.

Connection errors, timeouts, 408, 425, 429 and 5xx are retried with exponential backoff and
jitter; a `Retry-After` of at most `retry_after_cap` seconds replaces the backoff, a longer
one ends the attempts (the body waits in the spool instead of the command). Any other
answer is a rejection. Redirects are not followed: a webhook that moved is reported, and a
body is never carried to a host (or a scheme) the environment did not name. Error texts
never hold the URL's path: see `webhook.scrub`.
"""

from __future__ import annotations

import email.utils
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.notify.spool import Failure
from controlplane.notify.webhook import scrub, shown_url
from controlplane.redaction import redact_text

_RETRYABLE_STATUS = frozenset({408, 425, 429})
# Answers about the message itself (bad request, too large, unprocessable): no retry and no
# later flush would change them.
_MALFORMED_STATUS = frozenset({400, 413, 422})
_MAX_ANSWER = 64 * 1024  # bytes of an answer read at most (an untrusted server)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` POSTs, `base_delay` doubling up to `max_delay` between them (jitter),
    `timeout` per POST, a server's Retry-After followed up to `retry_after_cap` seconds."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 5.0
    retry_after_cap: float = 30.0


DEFAULT_RETRY = RetryPolicy()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


@dataclass(frozen=True)
class _Answer:
    error: str  # "" on success
    retryable: bool = False
    retry_after: float | None = None
    malformed: bool = False


def post(
    url: str,
    body: bytes,
    policy: RetryPolicy | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Failure | None:
    """POST `body` (JSON) to `url` with bounded retries: None once it is accepted (2xx),
    else why it was not (no part of the URL but its scheme and host)."""
    policy = policy or DEFAULT_RETRY
    answer = _Answer("not attempted")
    for attempt in range(max(1, policy.attempts)):
        if attempt:
            delay = _backoff(policy, attempt)
            if answer.retry_after is not None:
                if answer.retry_after > policy.retry_after_cap:
                    return Failure(
                        f"{answer.error} (Retry-After {answer.retry_after:g}s: not waiting)"
                    )
                delay = answer.retry_after
            sleep(delay)
        answer = _post_once(url, body, policy.timeout)
        if not answer.error:
            return None
        if not answer.retryable:
            return Failure(answer.error, answer.malformed)
    return Failure(f"{answer.error} (after {policy.attempts} attempts)")


def _post_once(url: str, body: bytes, timeout: float) -> _Answer:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "cpl"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(_MAX_ANSWER)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        retryable = exc.code in _RETRYABLE_STATUS or exc.code >= 500
        retry_after = _retry_after(exc.headers.get("Retry-After")) if exc.headers else None
        said = redact_text(scrub(str(exc.reason), url))[:200]
        error = f"HTTP {exc.code} {said}".strip()
        return _Answer(error, retryable, retry_after, exc.code in _MALFORMED_STATUS)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cause: object = getattr(exc, "reason", None) or exc
        text = redact_text(scrub(str(cause), url))[:300]
        return _Answer(f"unreachable at {shown_url(url)}: {text}", True)
    if 200 <= status < 300:
        return _Answer("")
    return _Answer(f"HTTP {status}")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    """Exponential, capped, with "equal jitter": half fixed, half random."""
    delay = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)
