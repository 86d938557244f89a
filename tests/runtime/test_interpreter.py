"""The Temporal interpreter on a real dev server: docs/runtime.md behaviour, run by run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.worker import Replayer

from controlplane.engines.temporal.runtime.interpreter import CplInterpreter
from controlplane.engines.temporal.runtime.worker import sandbox_runner

from .conftest import CALLS, MAX_RUNNING, Harness

pytestmark = pytest.mark.integration


def task(name: str, activity: str = "test.echo", **fields: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name, "type": "task", "activity": activity, "timeout": 10}
    step.update(fields)
    if "next" not in step:
        step["end"] = True
    return step


def calls(workflow_id: str, activity: str | None = None) -> list[Any]:
    return [arg for name, arg, _ in CALLS[workflow_id] if activity in (None, name)]


def test_linear_tasks_resolve_parameters_and_write_results(harness: Harness) -> None:
    doc = harness.workflow(
        [
            task(
                "reserve",
                parameters={"order": "$.orderId", "qty": 2},
                resultPath="$.reservation",
                next="price",
            ),
            task(
                "price",
                "test.sum",
                parameters=["$.amounts[0]", "$.amounts[1]"],
                resultPath="$.total",
                next="echo",
            ),
            task("echo"),
        ],
        start="reserve",
    )
    workflow_id, result = harness.execute(doc, {"orderId": "o-1", "amounts": [3, 4]})
    description = harness.run(harness.client.get_workflow_handle(workflow_id).describe())
    assert harness.run(description.memo()) == {"cpl.version": "2.1.0", "cpl.digest": "sha256:test"}

    expected = {
        "orderId": "o-1",
        "amounts": [3, 4],
        "reservation": {"order": "o-1", "qty": 2},
        "total": 7,
    }
    steps = result.pop("steps")
    assert result == {
        "output": expected,
        "trace": ["reserve", "price", "echo"],
        "version": "2.1.0",
        "digest": "sha256:test",
    }
    assert [(s["name"], s["status"]) for s in steps] == [
        ("reserve", "succeeded"),
        ("price", "succeeded"),
        ("echo", "succeeded"),
    ]
    # no parameters: the task received the whole document; default resultPath `$` replaced it
    assert calls(workflow_id, "echo")[-1] == expected


def test_retries_until_success_with_the_specs_policy(harness: Harness) -> None:
    retry = {"maxAttempts": 3, "initialInterval": 0.1, "backoffRate": 1.0}
    doc = harness.workflow(
        [
            task(
                "flaky",
                "test.flaky",
                parameters={"failures": 2},
                retry=retry,
                resultPath="$.result",
            )
        ],
        start="flaky",
    )
    workflow_id, result = harness.execute(doc, {})

    assert result["output"] == {"result": {"attempts": 3}}
    assert [attempt for _, _, attempt in CALLS[workflow_id]] == [1, 2, 3]
    assert result["trace"] == ["flaky"]


def test_exhausted_and_non_retryable_errors_fail_with_their_name(harness: Harness) -> None:
    retry = {"maxAttempts": 2, "initialInterval": 0.1, "backoffRate": 1.0}
    doc = harness.workflow(
        [task("flaky", "test.flaky", parameters={"failures": 5}, retry=retry)], start="flaky"
    )
    workflow_id, error = harness.failure(doc, {})
    assert error.type == "Flaky"
    assert len(CALLS[workflow_id]) == 2

    retry = {"maxAttempts": 5, "initialInterval": 0.1, "nonRetryable": ["Fatal"]}
    doc = harness.workflow(
        [task("boom", "test.fail", parameters={"error": "Fatal"}, retry=retry)], start="boom"
    )
    workflow_id, error = harness.failure(doc, {})
    assert (error.type, error.message) == ("Fatal", "boom")
    assert len(CALLS[workflow_id]) == 1


def test_saga_compensates_in_reverse_then_dead_letters_then_fails(harness: Harness) -> None:
    doc = harness.workflow(
        [
            task(
                "reserve",
                parameters={"id": "r-1"},
                resultPath="$.reservation",
                next="charge",
                compensation="release",
            ),
            task(
                "charge",
                parameters={"id": "c-1"},
                resultPath="$.payment",
                next="ship",
                compensation="refund",
            ),
            task("ship", "test.fail", parameters={"error": "ShipFailed", "message": "no carrier"}),
            task("release", "test.undo", parameters={"undo": "reserve", "id": "$.reservation.id"}),
            task("refund", "test.undo", parameters={"undo": "charge", "id": "$.payment.id"}),
        ],
        start="reserve",
        onError={"compensate": True, "deadLetter": "orders-dlq"},
    )
    workflow_id, error = harness.failure(doc, {"orderId": "o-9"}, dead_letter="orders-dlq-test")

    assert (error.type, error.message) == ("ShipFailed", "no carrier")
    assert calls(workflow_id, "undo") == [
        {"undo": "charge", "id": "c-1"},
        {"undo": "reserve", "id": "r-1"},
    ]
    letters = harness.dead_letter_events()
    [letter] = [event["data"] for event in letters if event["data"]["runId"] == workflow_id]
    assert letter["workflow"] == "retail/runtime-test"
    assert letter["version"] == "2.1.0"
    assert letter["temporalRunId"]
    assert letter["input"] == {"orderId": "o-9"}
    assert (letter["error"], letter["cause"]) == ("ShipFailed", "no carrier")
    assert letter["trace"] == ["reserve", "charge", "ship", "refund", "release"]
    assert letter["compensations"] == [
        {"step": "refund", "status": "completed"},
        {"step": "release", "status": "completed"},
    ]


def test_catch_routes_by_error_name_and_wildcard(harness: Harness) -> None:
    doc = harness.workflow(
        [
            task(
                "reserve",
                "test.fail",
                parameters={"error": "OutOfStock", "message": "sku-1"},
                catch=[
                    {"errors": ["PaymentDeclined"], "next": "declined"},
                    {"errors": ["OutOfStock"], "next": "backorder", "resultPath": "$.error"},
                ],
                next="declined",
            ),
            task(
                "backorder",
                parameters={"error": "$.error.Error"},
                resultPath="$.backorder",
                next="slow",
            ),
            task(
                "slow",
                "test.slow",
                parameters={"seconds": 3},
                timeout=0.5,
                catch=[{"errors": ["*"], "next": "done", "resultPath": "$.timeout"}],
                next="declined",
            ),
            {"name": "done", "type": "succeed"},
            {"name": "declined", "type": "fail", "error": "Declined"},
        ],
        start="reserve",
    )
    _, result = harness.execute(doc, {"orderId": "o-2"})

    assert result["trace"] == ["reserve", "backorder", "slow", "done"]
    output = result["output"]
    assert output["error"] == {"Error": "OutOfStock", "Cause": "sku-1"}
    assert output["backorder"] == {"error": "OutOfStock"}
    assert output["timeout"]["Error"] == "Timeout"


def test_choice_follows_the_first_matching_rule_or_default(harness: Harness) -> None:
    doc = harness.workflow(
        [
            {
                "name": "route",
                "type": "choice",
                "rules": [
                    {
                        "when": {
                            "all": [
                                {"path": "$.total", "gt": 1000},
                                {"not": {"path": "$.vip", "eq": True}},
                            ]
                        },
                        "next": "review",
                    },
                    {
                        "when": {
                            "any": [
                                {"path": "$.country", "in": ["DE", "AT"]},
                                {"path": "$.email", "matches": "@example\\.de$"},
                            ]
                        },
                        "next": "eu",
                    },
                    {"when": {"path": "$.coupon", "exists": True}, "next": "coupon"},
                ],
                "default": "standard",
            },
            *[task(name) for name in ("review", "eu", "coupon", "standard")],
        ],
        start="route",
    )
    cases = [
        ({"total": 5000}, "review"),
        ({"total": 5000, "vip": True, "country": "AT"}, "eu"),
        ({"total": 10, "email": "a@example.de"}, "eu"),
        ({"total": 10, "coupon": None}, "coupon"),
        ({"total": 10}, "standard"),
    ]
    for run_input, route in cases:
        _, result = harness.execute(doc, run_input)
        assert result["trace"] == ["route", route], run_input


def test_parallel_branches_run_on_copies_and_collect_results(harness: Harness) -> None:
    branch = lambda name, seconds: {  # noqa: E731
        "start": name,
        "steps": [
            task(
                name,
                "test.slow",
                parameters={"seconds": seconds, "item": "$.orderId"},
                resultPath="$.slow",
            )
        ],
    }
    doc = harness.workflow(
        [
            {
                "name": "fan-out",
                "type": "parallel",
                "branches": [branch("left", 0.5), branch("right", 0.5)],
                "resultPath": "$.branches",
                "end": True,
            },
        ],
        start="fan-out",
    )
    workflow_id, result = harness.execute(doc, {"orderId": "o-3"})

    assert result["output"] == {
        "orderId": "o-3",
        "branches": [
            {"orderId": "o-3", "slow": {"slept": 0.5, "item": "o-3"}},
            {"orderId": "o-3", "slow": {"slept": 0.5, "item": "o-3"}},
        ],
    }
    assert result["trace"][0] == "fan-out"
    assert sorted(result["trace"][1:]) == ["left", "right"]
    assert MAX_RUNNING[workflow_id] == 2


def test_map_bounds_concurrency_and_batches(harness: Harness) -> None:
    doc = harness.workflow(
        [
            {
                "name": "each",
                "type": "map",
                "items": "$.items",
                "maxConcurrency": 2,
                "start": "work",
                "steps": [task("work", "test.slow", parameters={"seconds": 0.3, "item": "$.id"})],
                "resultPath": "$.results",
                "next": "batches",
            },
            {
                "name": "batches",
                "type": "map",
                "items": "$.numbers",
                "maxConcurrency": 3,
                "batchSize": 2,
                "start": "add",
                "steps": [task("add", "test.sum")],
                "resultPath": "$.sums",
                "end": True,
            },
        ],
        start="each",
    )
    items = [{"id": n} for n in range(6)]
    workflow_id, result = harness.execute(doc, {"items": items, "numbers": [1, 2, 3, 4, 5]})

    assert [r["item"] for r in result["output"]["results"]] == list(range(6))
    assert MAX_RUNNING[workflow_id] == 2
    assert result["output"]["sums"] == [3, 7, 5]
    assert calls(workflow_id, "sum") == [[1, 2], [3, 4], [5]]
    assert result["trace"] == ["each", *["work"] * 6, "batches", "add", "add", "add"]
    # the concurrent run replays deterministically from its history
    history = harness.run(harness.client.get_workflow_handle(workflow_id).fetch_history())
    replayer = Replayer(workflows=[CplInterpreter], workflow_runner=sandbox_runner())
    harness.run(replayer.replay_workflow(history))


def test_wait_for_a_duration_and_until_a_timestamp(harness: Harness) -> None:
    doc = harness.workflow(
        [
            {"name": "pause", "type": "wait", "duration": 1, "next": "until"},
            {"name": "until", "type": "wait", "until": "$.at", "next": "done"},
            task("done"),
        ],
        start="pause",
    )
    at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    started = time.monotonic()
    _, result = harness.execute(doc, {"at": at})

    assert time.monotonic() - started >= 1.9
    assert result["trace"] == ["pause", "until", "done"]


def _approval_doc(harness: Harness, timeout: float = 30) -> dict[str, Any]:
    return harness.workflow(
        [
            {
                "name": "approve",
                "type": "approval",
                "signal": "approve-order",
                "timeout": timeout,
                "onTimeout": "expired",
                "approvers": {"roles": ["finance"]},
                "catch": [
                    {
                        "errors": ["ApprovalRejected"],
                        "next": "rejected",
                        "resultPath": "$.rejection",
                    }
                ],
                "next": "approved",
            },
            task("approved"),
            task("rejected"),
            task("expired"),
        ],
        start="approve",
    )


def test_approval_refuses_wrong_roles_and_accepts_an_approver(harness: Harness) -> None:
    handle = harness.start(_approval_doc(harness), {"orderId": "o-4"})
    status = harness.wait_status(handle, lambda s: s["current"] == ["approve"])
    assert status["state"] == "waiting"

    harness.signal(handle, "approve-order", {"approved": True, "by": "mallory", "roles": ["sales"]})
    status = harness.wait_status(handle, lambda s: bool(s["refused"]))
    assert status["state"] == "waiting"
    assert [(r["by"], r["roles"]) for r in status["refused"]] == [("mallory", ["sales"])]

    harness.signal(
        handle, "approve-order", {"approved": True, "by": "alice", "roles": ["finance", "x"]}
    )
    result = harness.result(handle)
    assert result["trace"] == ["approve", "approved"]
    status = harness.status(handle)
    assert status["state"] == "completed"
    assert [a["by"] for a in status["approvals"]] == ["alice"]


def test_approval_rejected_is_a_catchable_error(harness: Harness) -> None:
    handle = harness.start(_approval_doc(harness), {"orderId": "o-5"})
    harness.signal(handle, "approve-order", {"approved": False, "by": "bob", "roles": ["finance"]})
    result = harness.result(handle)

    assert result["trace"] == ["approve", "rejected"]
    assert result["output"]["rejection"]["Error"] == "ApprovalRejected"


def test_approval_without_answer_goes_to_on_timeout(harness: Harness) -> None:
    _, result = harness.execute(_approval_doc(harness, timeout=1.5), {"orderId": "o-6"})
    assert result["trace"] == ["approve", "expired"]


def test_pause_resume_and_skip(harness: Harness) -> None:
    doc = harness.workflow(
        [
            task(
                "first", "test.slow", parameters={"seconds": 1}, resultPath="$.first", next="second"
            ),
            task("second", resultPath="$.second", next="third"),
            task("third", resultPath="$.third"),
        ],
        start="first",
    )
    handle = harness.start(doc, {"orderId": "o-7"})
    harness.wait_status(handle, lambda s: s["current"] == ["first"])
    harness.signal(handle, "pause")
    # the running step finishes; nothing new starts
    status = harness.wait_status(handle, lambda s: s["current"] == [] and s["state"] == "paused")
    time.sleep(0.5)
    status = harness.status(handle)
    assert (status["state"], status["trace"], status["current"]) == ("paused", ["first"], [])

    harness.signal(handle, "skip", "third")
    harness.signal(handle, "resume")
    result = harness.result(handle)

    assert result["trace"] == ["first", "second"]
    assert result["output"]["third"] is None
    assert result["output"]["second"] == {"orderId": "o-7", "first": {"slept": 1, "item": None}}
    assert harness.status(handle)["skipped"] == ["third"]


def test_dag_runs_ready_steps_concurrently_and_skips_false_when(harness: Harness) -> None:
    slow = {"seconds": 0.5}
    doc = harness.workflow(
        [
            task("customer", "test.slow", parameters=slow, resultPath="$.customer"),
            task("stock", "test.slow", parameters=slow, resultPath="$.stock"),
            task(
                "express",
                parameters={"kind": "$.kind"},
                resultPath="$.express",
                dependsOn=["customer", "stock"],
                when={"path": "$.kind", "eq": "express"},
            ),
            task(
                "standard",
                parameters={"kind": "$.kind"},
                resultPath="$.standard",
                dependsOn=["customer", "stock"],
                when={"path": "$.kind", "eq": "standard"},
            ),
            task(
                "notify",
                parameters={"express": "$.express"},
                resultPath="$.notify",
                dependsOn=["express", "standard"],
            ),
        ]
    )
    for step in doc["spec"]["steps"]:
        step.pop("end")
    workflow_id, result = harness.execute(doc, {"kind": "express"})

    assert MAX_RUNNING[workflow_id] == 2
    assert sorted(result["trace"][:2]) == ["customer", "stock"]
    assert result["trace"][2:] == ["express", "notify"]
    output = result["output"]
    assert output["express"] == {"kind": "express"}
    assert output["standard"] is None  # skipped by its `when`: null at its resultPath
    assert output["notify"] == {"express": {"kind": "express"}}
    assert set(output) == {"kind", "customer", "stock", "express", "standard", "notify"}


def test_input_schema_rejection_fails_with_input_invalid(harness: Harness) -> None:
    schema = {
        "type": "object",
        "required": ["orderId"],
        "properties": {"orderId": {"type": "string"}},
    }
    doc = harness.workflow([task("never")], start="never", input={"schema": schema})
    workflow_id, error = harness.failure(doc, {"orderId": 42})

    assert error.type == "InputInvalid"
    assert "/orderId" in error.message
    assert CALLS[workflow_id] == []


def test_fail_step_fails_the_run_with_its_error(harness: Harness) -> None:
    doc = harness.workflow(
        [
            task("check", next="stop"),
            {"name": "stop", "type": "fail", "error": "OrderInvalid", "cause": "missing lines"},
        ],
        start="check",
    )
    workflow_id, error = harness.failure(doc, {})

    assert (error.type, error.message) == ("OrderInvalid", "missing lines")
    status = harness.status(harness.client.get_workflow_handle(workflow_id))
    assert status["state"] == "failed"
    assert status["error"] == {"Error": "OrderInvalid", "Cause": "missing lines"}
    assert status["trace"] == ["check", "stop"]
    assert status["version"] == "2.1.0"


def test_missed_heartbeat_is_a_timeout(harness: Harness) -> None:
    doc = harness.workflow(
        [task("silent", "test.slow", parameters={"seconds": 3}, timeout=10, heartbeat=0.5)],
        start="silent",
    )
    _, error = harness.failure(doc, {})
    assert error.type == "Timeout"
