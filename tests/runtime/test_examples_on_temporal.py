"""Every example workflow under workflows/ runs on the interpreter of a real Temporal dev server.

Each example is rendered by the Temporal translator (for a target selecting every workflow of
`environments/local.yaml`) and started with its spec payload. Every activity type bound for
Temporal in local.yaml is hosted on its bound task queue by a scripted test activity: it
returns the response the case scripts for it (or raises the error it scripts), else echoes
its input. Approvals are answered by signal once the run waits on them; schedules are not
deployed (runs are started directly); `wait` durations are shortened to keep the suite fast.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from controlplane.engines.temporal.runner import start_run
from controlplane.engines.temporal.runtime.payload import SpecPayload
from controlplane.engines.temporal.translate import TemporalTranslator, spec_payload
from controlplane.spec.environment import Environment, Selector
from controlplane.spec.load import load_environment, load_workflows
from controlplane.spec.model import Workflow
from tests.conftest import ROOT

from .conftest import CALLED, INTERPRETER_QUEUE, SCRIPTS, Harness, Raise, Responses

pytestmark = pytest.mark.integration

SHORT_WAIT = 0.2
"""Seconds a `wait` step with a duration waits in these tests."""


# --- the environment, its workers and the rendered examples ---------------------------------


@pytest.fixture(scope="module")
def local() -> Environment:
    environment = load_environment(ROOT, "local")
    targets = [
        t.model_copy(update={"select": Selector()}) if t.engine == "temporal" else t
        for t in environment.spec.targets
    ]
    return environment.model_copy(
        update={"spec": environment.spec.model_copy(update={"targets": targets})}
    )


@pytest.fixture(scope="module")
def examples(local: Environment) -> dict[str, tuple[Workflow, SpecPayload]]:
    result = load_workflows(ROOT)
    assert result.ok, result.diagnostics
    target = local.target("temporal-local")
    translator = TemporalTranslator()
    return {
        loaded.model.key: (
            loaded.model,
            spec_payload(translator.render(loaded.model, target, local)),
        )
        for loaded in result.workflows
    }


# --- cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    workflow: str
    input: dict[str, Any]
    script: dict[str, Any] = field(default_factory=dict)  # logical activity → response
    approvals: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    status: str = "succeeded"
    error: str | None = None
    trace: list[str] | None = None  # the exact trace (no concurrency)
    steps: set[str] | None = None  # the trace as a set (concurrent branches / DAG)
    known_issue: str | None = None


def approve(step: str, signal: str, role: str, approved: bool = True) -> tuple[str, str, Any]:
    return (step, signal, {"approved": approved, "by": f"{role}@example.com", "roles": [role]})


ORDER = {
    "orderId": "ORD-00000001",
    "customer": {"id": "c-1", "verified": True, "email": "ada@example.com"},
    "items": [{"sku": "sku-1", "quantity": 2}],
    "total": 50,
    "currency": "EUR",
    "shipping": {"method": "standard", "warehouse": "w-1", "address": {"city": "Berlin"}},
}
ORDER_SCRIPT = {
    "inventory.reserve": {"id": "res-1"},
    "payments.charge": {"id": "pay-1"},
    "shipping.create-shipment": {"id": "ship-1"},
}
INTAKE = {
    "intakeId": "5f0c7a52-1111-4c1e-9b7e-2a3a4b5c6d7e",
    "patient": {"firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1815-12-10"},
    "insurance": {"payerId": "payer-1", "memberId": "m-1"},
    "consents": ["treatment", "privacy-notice"],
    "clinicId": "clinic-1",
}
PRIOR_AUTH = {
    "requestId": "pa-1",
    "patientId": "p-1",
    "payerId": "payer-1",
    "procedureCodes": ["99213"],
    "diagnosisCodes": ["M54.5"],
}
RETURN = {
    "returnId": "rt-1",
    "orderId": "o-1",
    "customerId": "c-1",
    "email": "ada@example.com",
    "reason": "defective",
    "refund": {"amount": 750, "currency": "EUR"},
}
PAYOUT = {"batchId": "PB-000123", "approvedBy": "cfo@example.com", "valueDate": "2026-05-04"}
PAYOUT_SCRIPT = {
    "payouts.load-batch": {
        "status": "approved",
        "currency": "EUR",
        "total": 125000,
        "payees": [{"id": "v-1"}],
    },
    "payouts.send": {"entries": [{"account": "2000", "amount": 125000}]},
}

CASES = [
    Case(
        "fx-rates-refresh",
        "finance/fx-rates-refresh",
        {"asOf": "2026-05-04T10:00:00Z"},
        {"fx.fetch-rates": {"maxMovePercent": 1.2, "values": {"USD": 1.08}}},
        trace=["fetch-rates", "rates-plausible", "store-rates"],
    ),
    Case(
        "fx-rates-refresh-implausible",
        "finance/fx-rates-refresh",
        {"asOf": "2026-05-04T10:00:00Z"},
        {"fx.fetch-rates": {"maxMovePercent": 7.5, "values": {"USD": 1.2}}},
        status="failed",
        error="ImplausibleRates",
        trace=["fetch-rates", "rates-plausible", "rates-implausible"],
    ),
    Case(
        "month-end-close",
        "finance/month-end-close",
        {"period": "2026-04", "entities": ["de", "us"]},
        {"reports.generate-financials": {"id": "tb-2026-04"}},
        approvals=[
            approve("controller-signoff", "controller-signoff", "intern"),  # refused
            approve("controller-signoff", "controller-signoff", "controller"),
        ],
        steps={
            "lock-period",
            "run-close-tasks",
            "run-accruals",
            "eliminate-intercompany",
            "revalue-fx",
            "trial-balance",
            "controller-signoff",
            "close-period",
            "period-closed",
        },
    ),
    Case(
        "payment-reconciliation",
        "finance/payment-reconciliation",
        {"businessDate": "2026-04-30"},
        {
            "payments.fetch-bank-statements": {
                "accounts": [{"accountId": "acc-1", "statementUri": "s3://st/acc-1"}]
            },
            "reports.publish-reconciliation": {"unmatchedAmount": 12000, "uri": "s3://rep"},
        },
        steps={
            "fetch-statements",
            "fetch-ledger",
            "reconcile-accounts",
            "reconcile-account",
            "publish-exceptions",
            "open-treasury-case",
        },
    ),
    Case(
        "payment-reconciliation-no-accounts",
        "finance/payment-reconciliation",
        {"businessDate": "2026-04-30"},
        {
            "payments.fetch-bank-statements": {"accounts": []},
            "reports.publish-reconciliation": {"unmatchedAmount": 0, "unmatchedCount": 0},
        },
        steps={"fetch-statements", "fetch-ledger", "reconcile-accounts", "publish-exceptions"},
    ),
    Case(
        "vendor-payout",
        "finance/vendor-payout",
        PAYOUT,
        PAYOUT_SCRIPT,
        steps={
            "load-batch",
            "check-batch",
            "screen-and-validate",
            "screen-sanctions",
            "validate-accounts",
            "send-payments",
            "post-journal",
            "payouts-sent",
        },
    ),
    Case(
        "vendor-payout-sanctions-hit",
        "finance/vendor-payout",
        PAYOUT,
        {**PAYOUT_SCRIPT, "payouts.screen-sanctions": Raise("SanctionsHit")},
        status="failed",
        error="BatchOnHold",
    ),
    Case(
        "appointment-reminders",
        "health/appointment-reminders",
        {"window": "2026-05-04T10"},
        {
            "appointments.list-upcoming": {
                "smsCount": 1,
                "sms": [{"appointmentId": "ap-1", "phone": "+15550100"}],
                "emailCount": 1,
                "email": [{"appointmentId": "ap-2", "email": "ada@example.com"}],
            }
        },
        steps={
            "list-appointments",
            "send-sms",
            "send-sms-reminder",
            "send-email",
            "send-email-reminder",
            "record-reminders",
        },
    ),
    Case(
        "appointment-reminders-no-email",
        "health/appointment-reminders",
        {"window": "2026-05-04T10"},
        {
            "appointments.list-upcoming": {
                "smsCount": 1,
                "sms": [{"appointmentId": "ap-1", "phone": "+15550100"}],
                "emailCount": 0,
                "email": [],
            }
        },
        steps={"list-appointments", "send-sms", "send-sms-reminder", "record-reminders"},
    ),
    Case(
        "claims-batch-adjudication",
        "health/claims-batch-adjudication",
        {"cycleDate": "2026-05-04"},
        {
            "claims.load-pending": {"claims": [{"claimId": "cl-1"}, {"claimId": "cl-2"}]},
            "claims.adjudicate": {"batchId": "b-1", "suspendedCount": 0, "maxAllowedAmount": 90},
        },
        trace=[
            "load-pending-claims",
            "adjudicate-claims",
            "adjudicate-batch",
            "route-outcomes",
            "batch-done",
            "publish-remittance",
        ],
    ),
    Case(
        "claims-batch-adjudication-suspended",
        "health/claims-batch-adjudication",
        {"cycleDate": "2026-05-04"},
        {
            "claims.load-pending": {"claims": [{"claimId": "cl-1"}]},
            "claims.adjudicate": {
                "batchId": "b-1",
                "suspendedCount": 1,
                "suspended": [{"claimId": "cl-1", "reasonCode": "CO-50"}],
            },
        },
        trace=[
            "load-pending-claims",
            "adjudicate-claims",
            "adjudicate-batch",
            "route-outcomes",
            "queue-manual-review",
            "publish-remittance",
        ],
    ),
    Case(
        "claims-batch-adjudication-no-claims",
        "health/claims-batch-adjudication",
        {"cycleDate": "2026-05-04"},
        {"claims.load-pending": {"claims": []}},
        trace=["load-pending-claims", "adjudicate-claims", "publish-remittance"],
    ),
    Case(
        "lab-results-ingest",
        "health/lab-results-ingest",
        {"labId": "lab-1", "messageId": "msg-1"},
        {
            "labs.normalize": {
                "patientId": "p-1",
                "observations": [{"loinc": "2345-7", "value": 450}],
                "criticalCount": 1,
                "orderingProvider": "dr-1",
                "critical": [{"loinc": "2345-7"}],
            }
        },
        steps={"fetch-result", "normalize-result", "attach-to-chart", "page-clinician"},
    ),
    Case(
        "patient-intake",
        "health/patient-intake",
        INTAKE,
        {"patients.register": {"patientId": "p-1"}},
        steps={
            "register-patient",
            "prepare-records",
            "has-insurance",
            "verify-eligibility",
            "open-chart",
            "record-consents",
            "notify-care-team",
        },
    ),
    Case(
        "patient-intake-duplicate",
        "health/patient-intake",
        INTAKE,
        {"patients.register": Raise("DuplicatePatient")},
        status="failed",
        error="DuplicatePatient",
        trace=["register-patient", "duplicate-patient"],
    ),
    Case(
        "prior-authorization",
        "health/prior-authorization",
        PRIOR_AUTH,
        {
            "priorauth.submit": {"trackingId": "trk-1"},
            "priorauth.check-status": Responses(
                [{"decision": "pending"}, {"decision": "approved", "authNumber": "A-1"}]
            ),
        },
        trace=[
            "submit-request",
            "wait-for-payer",
            "check-status",
            "route-decision",
            "wait-for-payer",
            "check-status",
            "route-decision",
            "record-approval",
            "authorized",
        ],
    ),
    Case(
        "prior-authorization-denied",
        "health/prior-authorization",
        PRIOR_AUTH,
        {
            "priorauth.submit": {"trackingId": "trk-1"},
            "priorauth.check-status": {"decision": "denied"},
        },
        approvals=[approve("clinical-review", "clinical-review", "medical-director", False)],
        status="failed",
        error="AuthorizationDenied",
        trace=[
            "submit-request",
            "wait-for-payer",
            "check-status",
            "route-decision",
            "clinical-review",
            "record-denial",
            "denied",
        ],
    ),
    Case(
        "prior-authorization-appeal",
        "health/prior-authorization",
        PRIOR_AUTH,
        {
            "priorauth.submit": {"trackingId": "trk-1"},
            "priorauth.check-status": Responses(
                [{"decision": "denied"}, {"decision": "approved", "authNumber": "A-2"}]
            ),
        },
        approvals=[approve("clinical-review", "clinical-review", "clinical-reviewer")],
        steps={
            "submit-request",
            "wait-for-payer",
            "check-status",
            "route-decision",
            "clinical-review",
            "file-appeal",
            "record-approval",
            "authorized",
        },
    ),
    Case(
        "abandoned-cart-reminder",
        "retail/abandoned-cart-reminder",
        {"cartId": "cart-1", "customerId": "c-1", "email": "ada@example.com"},
        {"cart.get-status": {"status": "open", "itemCount": 2, "items": ["sku-1", "sku-2"]}},
        trace=[
            "wait-for-reminder-time",
            "check-cart",
            "still-abandoned",
            "send-reminder",
            "reminder-sent",
        ],
    ),
    Case(
        "inventory-sync",
        "retail/inventory-sync",
        {"scheduledAt": "2026-05-04T10:15:00Z", "lastRun": "2026-05-04T10:00:00Z"},
        {
            "inventory.list-changed-skus": {
                "count": 1,
                "skus": [{"sku": "sku-1", "warehouse": "wms-eu"}],
            },
            "inventory.fetch-stock": {
                "batchId": "b-1",
                "levels": [{"sku": "sku-1", "available": 5, "reserved": 1}],
            },
        },
        trace=[
            "list-changed-skus",
            "any-changes",
            "sync-batches",
            "fetch-stock",
            "update-storefront",
            "publish-summary",
        ],
    ),
    Case(
        "inventory-sync-no-changes",
        "retail/inventory-sync",
        {"scheduledAt": "2026-05-04T10:15:00Z", "lastRun": "2026-05-04T10:00:00Z"},
        {"inventory.list-changed-skus": {"count": 0, "skus": []}},
        trace=["list-changed-skus", "any-changes", "nothing-to-do"],
    ),
    Case(
        "legacy-catalog-import",
        "retail/legacy-catalog-import",
        {"exportDate": "2026-05-03"},
        {
            "catalog.fetch-legacy-dump": {"uri": "s3://dump"},
            "catalog.transform": {"uri": "s3://transformed", "rejected": 3},
        },
        trace=["fetch-dump", "transform-products", "load-products"],
    ),
    Case(
        "order-fulfillment",
        "retail/order-fulfillment",
        ORDER,
        ORDER_SCRIPT,
        trace=[
            "screen-order",
            "reserve-inventory",
            "charge-payment",
            "ship-order",
            "confirm-order",
            "order-completed",
        ],
    ),
    Case(
        "order-fulfillment-unverified",
        "retail/order-fulfillment",
        {**ORDER, "total": 5000, "customer": {"id": "c-2", "verified": False}},
        status="failed",
        error="VerificationRequired",
        trace=["screen-order", "reject-unverified"],
    ),
    Case(
        "price-feed-export",
        "retail/price-feed-export",
        {"feedDate": "2026-05-04", "channels": {"google": True, "meta": False}},
        {
            "pricing.extract-prices": {"uri": "s3://prices"},
            "pricing.extract-promotions": {"uri": "s3://promotions"},
            "pricing.merge-feed": {"uri": "s3://feed"},
            "pricing.validate-feed": {"passed": True, "reportUri": "s3://report"},
        },
        steps={
            "extract-prices",
            "extract-promotions",
            "merge-feed",
            "validate-feed",
            "publish-google",
            "archive-feed",
        },
    ),
    Case(
        "returns-processing",
        "retail/returns-processing",
        RETURN,
        {"returns.inspect": {"resellable": True}},
        approvals=[approve("manager-approval", "refund-approval", "care-manager")],
        trace=[
            "register-return",
            "inspect-item",
            "needs-approval",
            "manager-approval",
            "issue-refund",
            "notify-refunded",
        ],
    ),
]


class KnownIssue(Exception):
    """The run failed with the DataPathError its case's `known_issue` describes."""


def _params() -> Iterator[Any]:
    for case in CASES:
        marks = []
        if case.known_issue:
            marks.append(pytest.mark.xfail(reason=case.known_issue, raises=KnownIssue, strict=True))
        yield pytest.param(case, id=case.id, marks=marks)


def test_every_example_has_a_case() -> None:
    keys = {loaded.model.key for loaded in load_workflows(ROOT).workflows}
    assert keys == {case.workflow for case in CASES if not case.known_issue}


def shortened(spec: SpecPayload) -> SpecPayload:
    """The spec payload with every `wait` duration cut to SHORT_WAIT seconds."""
    document = json.loads(json.dumps(spec["workflow"]))

    def walk(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if step["type"] == "wait" and "duration" in step:
                step["duration"] = SHORT_WAIT
            for branch in step.get("branches", []):
                walk(branch["steps"])
            if step["type"] == "map":
                walk(step["steps"])

    walk(document["spec"]["steps"])
    return {**spec, "workflow": document}


def start_example(
    harness: Harness,
    spec: SpecPayload,
    case: Case,
    types: dict[str, str],
    run_input: dict[str, Any],
) -> Any:
    workflow_id = f"example-{case.id}-{uuid.uuid4().hex[:8]}"
    SCRIPTS[workflow_id] = {types[logical]: value for logical, value in case.script.items()}
    return harness.run(
        start_run(
            harness.client,
            shortened(spec),
            run_input,
            task_queue=INTERPRETER_QUEUE,
            workflow_id=workflow_id,
        )
    )


@pytest.mark.parametrize("case", list(_params()))
def test_example_runs_on_temporal(
    harness: Harness,
    examples: dict[str, tuple[Workflow, SpecPayload]],
    activity_workers: dict[str, str],
    case: Case,
) -> None:
    workflow, spec = examples[case.workflow]
    run_input = dict(case.input)
    if case.workflow == "retail/abandoned-cart-reminder":
        run_input["remindAt"] = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    handle = start_example(harness, spec, case, activity_workers, run_input)

    for step, signal, answer in case.approvals:
        harness.wait_status(handle, lambda s, step=step: step in s["current"])
        harness.signal(handle, signal, answer)
    if case.status == "succeeded":
        try:
            result = harness.result(handle)
        except WorkflowFailureError as failure:
            cause = failure.cause
            known = case.known_issue is not None and isinstance(cause, ApplicationError)
            if known and isinstance(cause, ApplicationError) and cause.type == "DataPathError":
                raise KnownIssue(cause.message) from None
            raise
        trace = result["trace"]
        assert result["version"] == workflow.metadata.version
    else:
        with pytest.raises(WorkflowFailureError) as caught:
            harness.result(handle)
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == case.error, cause
        trace = cause.details[0]["trace"]

    # the trace starts at the spec's start step (a DAG: at a step without dependencies)
    body = workflow.spec
    roots = {s.name for s in body.steps if not s.depends_on} if body.is_dag else {body.start}
    assert trace[0] in roots
    if case.trace is not None:
        assert trace == case.trace
    if case.steps is not None:
        assert set(trace) == case.steps
    if case.approvals:  # answers whose roles miss approvers.roles are refused, not used
        refused = [answer for *_, answer in case.approvals if answer["roles"] == ["intern"]]
        assert len(harness.status(handle)["refused"]) == len(refused)


def test_saga_compensates_in_reverse_order(
    harness: Harness,
    examples: dict[str, tuple[Workflow, SpecPayload]],
    activity_workers: dict[str, str],
) -> None:
    """order-fulfillment: shipping fails after reserve and charge succeeded."""
    _, spec = examples["retail/order-fulfillment"]
    case = Case(
        "order-fulfillment-saga",
        "retail/order-fulfillment",
        ORDER,
        {**ORDER_SCRIPT, "shipping.create-shipment": Raise("CarrierUnavailable")},
    )
    handle = start_example(harness, spec, case, activity_workers, ORDER)
    with pytest.raises(WorkflowFailureError) as caught:
        harness.result(handle)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CarrierUnavailable"
    assert cause.details[0]["trace"] == [
        "screen-order",
        "reserve-inventory",
        "charge-payment",
        "ship-order",
        "refund-payment",  # compensations: the last completed step first
        "release-inventory",
    ]
    assert CALLED[handle.id] == [
        "InventoryReserve",
        "PaymentsCharge",
        "ShippingCreateShipment",
        "PaymentsRefund",
        "InventoryRelease",
    ]
    spooled = harness.dead_letter_events()
    (letter,) = [event["data"] for event in spooled if event["data"]["runId"] == handle.id]
    assert [c["step"] for c in letter["compensations"]] == ["refund-payment", "release-inventory"]
    assert all(c["status"] == "completed" for c in letter["compensations"])
