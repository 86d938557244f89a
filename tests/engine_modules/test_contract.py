"""Engine-independent parts of the contract: retries, normalization, field-level diffs."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from temporalio.service import RPCError, RPCStatusCode

from controlplane.engines import ENGINES, diff_documents, normalize
from controlplane.engines.retry import RetryPolicy, TransientError, is_transient, retry
from controlplane.spec.environment import ENGINE_NAMES


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_client_error("ThrottlingException", 400), True),
        (_client_error("InternalServerError", 500), True),
        (_client_error("Anything", 503), True),
        (_client_error("InvalidArn", 400), False),
        (_client_error("StateMachineDoesNotExist", 400), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (RPCError("down", RPCStatusCode.UNAVAILABLE, b""), True),
        (RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""), True),
        (RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b""), False),
        (RPCError("gone", RPCStatusCode.NOT_FOUND, b""), False),
        (ValueError("bug"), False),
    ],
)
def test_what_is_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_retry_backs_off_with_full_jitter_and_stops_at_success() -> None:
    slept: list[float] = []
    outcomes: list[Exception | str] = [TransientError("1"), TransientError("2"), "ok"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(attempts=5, base=1.0, cap=1.5)
    assert retry(flaky, policy, sleep=slept.append) == "ok"
    assert len(slept) == 2
    assert 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 1.5  # U(0, min(cap, base * 2**n))
    assert policy.delay(10, rng=lambda: 1.0) == 1.5


def test_retry_gives_up_after_the_attempts_and_never_retries_permanent_errors() -> None:
    calls: list[int] = []

    def always(error: Exception) -> None:
        calls.append(1)
        raise error

    with pytest.raises(TransientError):
        retry(lambda: always(TransientError("x")), RetryPolicy(attempts=3), sleep=lambda _: None)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        retry(lambda: always(ValueError("x")), RetryPolicy(attempts=3), sleep=lambda _: None)
    assert len(calls) == 1


def test_retry_of_a_timed_out_call_stops_at_the_deadline() -> None:
    """Each attempt times out after 10 s (a frozen engine): with a 25 s deadline there are
    three attempts, not five, and no retry starts after the deadline."""
    now = [0.0]
    starts: list[float] = []
    told: list[BaseException] = []

    def frozen() -> None:
        starts.append(now[0])
        now[0] += 10.0
        raise TimeoutError("no answer")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(attempts=5, base=1.0, cap=1.0)
    with pytest.raises(TimeoutError):
        retry(
            frozen,
            policy,
            sleep=sleep,
            deadline=25.0,
            clock=lambda: now[0],
            on_transient=told.append,
        )
    assert len(starts) == 3 and all(start < 25.0 for start in starts)
    assert len(told) == 2  # told of each failure that is retried


def test_normalize_strips_engine_fields_defaults_and_ignore_patterns() -> None:
    live = {
        "configuration": {
            "stateMachineArn": "arn:...",
            "creationDate": "2026-01-01",
            "description": "",
            "tags": {"cpl:managed": "true", "cpl:digest": "sha256:x", "aws:cfn": "y"},
        },
        "schedule": {
            "Target": {
                "Arn": "a",
                "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
            }
        },
        "extra": {"deep": {"note": 1, "keep": 2}},
    }
    assert normalize("stepfunctions", live, ignore=["/extra/**/note"]) == {
        "configuration": {"tags": {"cpl:managed": "true"}},
        "schedule": {"Target": {"Arn": "a"}},
        "extra": {"deep": {"keep": 2}},
    }
    # a default somebody changed is drift, not noise
    changed = {"schedule": {"Target": {"RetryPolicy": {"MaximumRetryAttempts": 0}}}}
    assert normalize("stepfunctions", changed) == changed


def test_normalize_argo_manifests() -> None:
    live = {
        "manifests": [
            {
                "metadata": {
                    "name": "a",
                    "uid": "u",
                    "resourceVersion": "7",
                    "labels": {"cpl.dev/managed": "true", "cpl.dev/digest": "sha256-x"},
                    "annotations": {"cpl.dev/digest": "sha256:x"},
                },
                "status": {"phase": "x"},
            }
        ]
    }
    assert normalize("argo", live) == {
        "manifests": [{"metadata": {"name": "a", "labels": {"cpl.dev/managed": "true"}}}]
    }


def test_diff_documents_uses_json_pointers() -> None:
    expected = {"a": {"b/c": 1, "gone": True}, "list": [1, 2], "tags": {"x": "1"}}
    actual = {"a": {"b/c": 2, "new": "n"}, "list": [1], "tags": {"x": "1"}}
    assert diff_documents(expected, actual) == [
        {"path": "/a/b~1c", "expected": 1, "actual": 2},
        {"path": "/a/gone", "expected": True, "actual": None},
        {"path": "/a/new", "expected": None, "actual": "n"},
        {"path": "/list/1", "expected": 2, "actual": None},
    ]
    assert diff_documents(expected, expected) == []


def test_every_bundle_is_registered_under_its_own_name() -> None:
    for name, engine in ENGINES.items():
        assert engine.name == name
        assert engine.translator.engine == name
        assert engine.title
        assert callable(engine.connect)


def test_engine_names_are_the_registry_s_even_when_it_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert list(ENGINE_NAMES) == ["stepfunctions", "temporal", "argo"]
    monkeypatch.setitem(ENGINES, "other", ENGINES["argo"])
    assert "other" in ENGINE_NAMES and ENGINE_NAMES[-1] == "other"
