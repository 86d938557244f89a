"""The pure rules behind the interpreter's controls: jittered delays, retry decisions,
idempotent activity ids, fault selection and circuit-breaker transitions (no engine needed)."""

from __future__ import annotations

import random

import pytest

from controlplane.engines.temporal.runtime.attempts import (
    RetrySettings,
    activity_id,
    faults_for,
)
from controlplane.engines.temporal.runtime.breaker import (
    BreakerSettings,
    acquire,
    new_state,
    record,
)
from controlplane.engines.temporal.runtime.data import DataError
from controlplane.engines.temporal.runtime.payload import FaultSpec

RETRY = {"maxAttempts": 5, "initialInterval": 1, "backoffRate": 3, "maxInterval": 5}


def test_full_jitter_draws_below_the_capped_backoff() -> None:
    settings = RetrySettings.of({"retry": {**RETRY, "jitter": "full"}})
    assert [settings.ceiling(n) for n in (1, 2, 3, 4)] == [1, 3, 5, 5]
    draws = random.Random(7)
    delays = [settings.delay(n, draws.uniform) for n in (1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= delay <= 5 for delay in delays)
    assert len(set(delays)) == len(delays)  # random, not fixed
    plain = RetrySettings.of({"retry": RETRY})
    assert plain.delay(2, draws.uniform) == 3  # without jitter: the backoff itself


def test_retry_decisions_follow_temporal() -> None:
    settings = RetrySettings.of({"retry": {"maxAttempts": 3, "nonRetryable": ["Fatal", "Timeout"]}})
    assert settings.retries("Flaky", 1) and settings.retries("Flaky", 2)
    assert not settings.retries("Flaky", 3)  # attempts used up
    assert not settings.retries("Fatal", 1)  # nonRetryable
    assert settings.retries("Timeout", 1)  # timeouts are retried, as Temporal does
    assert not settings.retries("Flaky", 1, retryable=False)  # raised as non-retryable
    assert RetrySettings.of({}).max_attempts == 1  # no retry: one attempt


def test_activity_id_is_the_step_and_the_resolved_key() -> None:
    step = {"name": "charge", "idempotencyKey": "$.order.id"}
    assert activity_id(step, {"order": {"id": "o-7"}}) == "charge:o-7"
    assert activity_id(step, {"order": {"id": {"b": 1, "a": 2}}}) == 'charge:{"a":2,"b":1}'
    assert activity_id({"name": "charge"}, {}) is None
    long = activity_id(step, {"order": {"id": "x" * 500}})
    assert long is not None and long.startswith("charge:sha256:") and len(long) < 100
    with pytest.raises(DataError, match=r"\$\.order\.id"):
        activity_id(step, {"order": {}})
    with pytest.raises(DataError, match="null"):
        activity_id(step, {"order": {"id": None}})


def test_faults_hit_the_attempts_they_name() -> None:
    faults: list[FaultSpec] = [
        {
            "step": "a",
            "attempts": [1, 3],
            "error": "E",
            "cause": "c",
            "timeout": False,
            "delay": None,
        },
        {
            "step": "a",
            "attempts": None,
            "error": None,
            "cause": "c",
            "timeout": False,
            "delay": 1.0,
        },
        {
            "step": "b",
            "attempts": None,
            "error": "F",
            "cause": "c",
            "timeout": False,
            "delay": None,
        },
    ]
    assert faults_for(faults, "a", 1) == faults[:2]
    assert faults_for(faults, "a", 2) == faults[1:2]
    assert faults_for(faults, "c", 1) == []


def test_breaker_opens_after_consecutive_failures_then_one_trial_decides() -> None:
    settings: BreakerSettings = {"failureThreshold": 2, "resetTimeout": 10.0}
    state = new_state(settings)
    assert acquire(state, settings, 0)["allowed"]
    record(state, False, 1)
    record(state, True, 2)  # a success resets the count: failures must be consecutive
    record(state, False, 3)
    assert state["state"] == "closed"
    record(state, False, 4)
    assert state["state"] == "open"
    assert not acquire(state, settings, 13)["allowed"]
    trial = acquire(state, settings, 14)
    assert trial == {"allowed": True, "state": "half-open", "trial": True}
    assert not acquire(state, settings, 15)["allowed"]
    record(state, False, 16)  # the trial failed: open again, for another resetTimeout
    assert state["state"] == "open" and state["openedAt"] == 16
    assert not acquire(state, settings, 25)["allowed"]
    assert acquire(state, settings, 26)["trial"]
    # a trial that never reports is replaced after resetTimeout
    assert acquire(state, settings, 36)["trial"]
    record(state, True, 37)
    assert state["state"] == "closed" and state["failures"] == 0
