"""The cross-engine conformance scenarios: one small spec, one input, one expected run.

Each scenario runs on Temporal (cpl's interpreter) and on the Step Functions emulator (moto)
from the same spec, through the same translators `cpl render` uses
(tests/conformance/test_conformance.py). Both engines must produce the expected trace (the
spec's step names in the order they started; helper states of a translator are not steps) and
the expected output or error, unless the scenario declares, per engine, the construct whose
Support record (approximated or unsupported) explains the difference.

Activities echo their input on both engines: on moto a Lambda function returns its event, on
Temporal the conformance worker's `conf.echo` returns its argument. `conf.fail` fails: on moto
it is an `sqs:sendMessage` to a queue that does not exist, on Temporal an activity raising
`TaskFailed`; scenarios catch it with `"*"`, since the two error names differ.

The table also generates the "Conformance" section of docs/portability.md
(`conformance_markdown`), so the document and the test cannot disagree.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from controlplane.engines.translator import Feature
from controlplane.spec.environment import EngineName, Environment
from controlplane.spec.model import Workflow

TENANT = "conformance"
ACTIVITY_QUEUE = "cpl-conformance"
"""Task queue of the conformance worker (the interpreter and the conf.* activities)."""

DEAD_LETTER_QUEUE = "conf-dlq"
MISSING_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"
HANG_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/conf-hang"
"""An existing queue: conf.hang on moto sends to it and waits for a task token (never sent)."""
UNAVAILABLE = "SQS.SdkClientException"
"""The error of conf.unavailable on both engines (moto's sendMessage to a missing queue)."""
RUN_ENGINES: tuple[EngineName, ...] = ("temporal", "stepfunctions")
"""Engines the scenarios run on; Argo needs a Kubernetes API server, which cannot run here."""


@dataclass(frozen=True)
class Scenario:
    """One spec, its input and what every engine must do with it.

    `trace` is the expected trace; with `concurrent` only as a multiset (the order between
    concurrent branches or iterations is unspecified). A successful run must end with
    `output`; a failed one (`error` set) with that error name. `attempts` counts the
    attempts of task steps (run one at a time), as each engine's history shows them.
    `unobserved` names constructs the spec uses that the scenario cannot observe (delays
    between attempts): it proves nothing about them (tests/conformance/proofs.py).
    `diverges` maps an engine to the construct whose non-exact Support record declares how
    that engine differs, and `note` says how (both end up in docs/portability.md).
    """

    id: str
    title: str
    spec: str
    input: Any
    trace: tuple[str, ...]
    output: Any = None
    error: str | None = None
    concurrent: bool = False
    attempts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    unobserved: frozenset[str] = frozenset()
    diverges: Mapping[EngineName, str] = field(default_factory=lambda: MappingProxyType({}))
    note: str = ""
    dead_letter: bool = False
    """The failed run's dead-letter CloudEvent must reach the real queue bound for it."""

    def workflow(self) -> Workflow:
        """The scenario's spec as a workflow of tenant `conformance` named after its id."""
        document = {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": {
                "name": self.id,
                "tenant": TENANT,
                "version": "1.0.0",
                "owner": "team-cpl",
                "description": self.title,
            },
            "spec": yaml.safe_load(textwrap.dedent(self.spec)),
        }
        return Workflow.model_validate(document)


ENVIRONMENT = f"""
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: conformance}}
spec:
  tier: development
  targets:
    - name: sfn-conformance
      engine: stepfunctions
      region: us-east-1
      endpoint: http://127.0.0.1:4566
      roleArn: arn:aws:iam::123456789012:role/cpl-sfn
    - name: temporal-conformance
      engine: temporal
      address: 127.0.0.1:7233
      namespace: default
      taskQueue: {ACTIVITY_QUEUE}
    - name: argo-conformance
      engine: argo
      delivery: gitops
      path: deploy/argo
      namespace: workflows
  bindings:
    activities:
      conf.echo:
        stepfunctions: {{resource: "arn:aws:lambda:us-east-1:123456789012:function:conf-echo"}}
        temporal: {{activity: conf.echo, taskQueue: {ACTIVITY_QUEUE}}}
        argo: {{image: "ghcr.io/acme/conformance:1.0.0", command: [echo]}}
      conf.unavailable:
        stepfunctions: {{resource: "arn:aws:states:::sqs:sendMessage"}}
        temporal: {{activity: conf.unavailable, taskQueue: {ACTIVITY_QUEUE}}}
        argo: {{image: "ghcr.io/acme/conformance:1.0.0", command: [unavailable]}}
      conf.hang:
        stepfunctions: {{resource: "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}}
        temporal: {{activity: conf.hang, taskQueue: {ACTIVITY_QUEUE}}}
        argo: {{image: "ghcr.io/acme/conformance:1.0.0", command: [hang]}}
      conf.fail:
        stepfunctions: {{resource: "arn:aws:states:::sqs:sendMessage"}}
        temporal: {{activity: conf.fail, taskQueue: {ACTIVITY_QUEUE}}}
        argo: {{image: "ghcr.io/acme/conformance:1.0.0", command: [fail]}}
    queues:
      {DEAD_LETTER_QUEUE}:
        stepfunctions: "https://sqs.us-east-1.amazonaws.com/123456789012/{DEAD_LETTER_QUEUE}"
        temporal: {DEAD_LETTER_QUEUE}
        argo: {DEAD_LETTER_QUEUE}
  aws: {{region: us-east-1, endpoint: "http://127.0.0.1:4566"}}
"""
"""Where the scenarios run: one target per engine, the conf.* bindings, the dead-letter queue
(SQS on the Step Functions emulator, also for Temporal through `spec.aws`)."""


def environment(moto_endpoint: str | None = None) -> Environment:
    """The conformance environment (with the Step Functions target on `moto_endpoint`)."""
    document = yaml.safe_load(ENVIRONMENT)
    if moto_endpoint is not None:
        document["spec"]["targets"][0]["endpoint"] = moto_endpoint
        document["spec"]["aws"]["endpoint"] = moto_endpoint
    return Environment.model_validate(document)


TARGETS: dict[EngineName, str] = {
    "stepfunctions": "sfn-conformance",
    "temporal": "temporal-conformance",
    "argo": "argo-conformance",
}

ORDER = {
    "orderId": "o-1",
    "total": 120,
    "customer": {"id": "c-1", "email": "ada@example.com"},
    "items": [{"sku": "sku-1", "qty": 2}, {"sku": "sku-2", "qty": 1}],
}

LINEAR = """
start: reserve
steps:
  - name: reserve
    type: task
    activity: conf.echo
    parameters:
      orderId: $.orderId
      first: $.items[0].sku
      customer: {id: $.customer.id, channel: web}
      tags: [web, $.orderId]
    resultPath: $.reservation
    next: charge
  - name: charge
    type: task
    activity: conf.echo
    parameters: {amount: $.total, ref: $.reservation.orderId}
    resultPath: $.payment.charge
    next: confirm
  - name: confirm
    type: task
    activity: conf.echo
    parameters: {orderId: $.orderId, charged: $.payment.charge.amount}
    next: done
  - {name: done, type: succeed}
"""

CHOICE = """
start: route
steps:
  - name: route
    type: choice
    rules:
      - when: {path: $.total, gt: 1000}
        next: large
      - when:
          all:
            - {path: $.country, eq: DE}
            - any:
                - {path: $.tier, in: [gold, platinum]}
                - not: {path: $.express, eq: false}
        next: priority
    default: standard
  - name: large
    type: task
    activity: conf.echo
    parameters: {route: large, total: $.total}
    resultPath: $.routed
    end: true
  - name: priority
    type: task
    activity: conf.echo
    parameters: {route: priority, country: $.country}
    resultPath: $.routed
    end: true
  - {name: standard, type: succeed}
"""

PARALLEL = """
start: fan-out
steps:
  - name: fan-out
    type: parallel
    resultPath: $.branches
    branches:
      - start: price
        steps:
          - {name: price, type: task, activity: conf.echo,
             parameters: {sku: $.sku, kind: price}, end: true}
      - start: stock
        steps:
          - {name: stock, type: task, activity: conf.echo,
             parameters: {sku: $.sku, kind: stock}, resultPath: $.stock, next: stock-checked}
          - {name: stock-checked, type: succeed}
    next: done
  - {name: done, type: succeed}
"""

MAP = """
start: per-line
steps:
  - name: per-line
    type: map
    items: $.lines
    maxConcurrency: 2
    resultPath: $.lines
    start: price-line
    steps:
      - name: price-line
        type: task
        activity: conf.echo
        parameters: {sku: $.sku, qty: $.qty}
        resultPath: $.priced
        next: check-line
      - name: check-line
        type: choice
        rules: [{when: {path: $.qty, gt: 5}, next: bulk-line}]
        default: single-line
      - {name: bulk-line, type: succeed}
      - {name: single-line, type: succeed}
    next: done
  - {name: done, type: succeed}
"""

BATCHES = """
start: pack
steps:
  - name: pack
    type: map
    items: $.parcels
    batchSize: 2
    maxConcurrency: 1
    resultPath: $.manifests
    start: label-batch
    steps:
      - {name: label-batch, type: task, activity: conf.echo,
         parameters: {parcels: $, carrier: dhl}, end: true}
    next: done
  - {name: done, type: succeed}
"""

CATCH = f"""
start: risky
steps:
  - name: risky
    type: task
    activity: conf.fail
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: boom}}
    catch: [{{errors: ["*"], next: fallback}}]
    next: wrong
  - name: fallback
    type: parallel
    resultPath: $.fallback
    branches:
      - start: boom
        steps: [{{name: boom, type: fail, error: Boom, cause: injected}}]
    catch:
      - {{errors: [Other], next: wrong}}
      - {{errors: [Boom], next: recovered, resultPath: $.error}}
    next: wrong
  - {{name: wrong, type: fail, error: WrongRoute}}
  - {{name: recovered, type: succeed}}
"""

SAGA = """
start: reserve
steps:
  - name: reserve
    type: task
    activity: conf.echo
    parameters: {orderId: $.orderId}
    resultPath: $.reservation
    compensation: release
    next: charge
  - name: charge
    type: task
    activity: conf.echo
    parameters: {amount: $.total}
    resultPath: $.charge
    compensation: refund
    next: ship
  - name: ship
    type: parallel
    resultPath: $.shipment
    branches:
      - start: book-carrier
        steps:
          - {name: book-carrier, type: fail, error: CarrierUnavailable, cause: no carrier}
    next: shipped
  - {name: shipped, type: succeed}
  - name: release
    type: task
    activity: conf.echo
    parameters: {reservation: $.reservation}
  - name: refund
    type: task
    activity: conf.echo
    parameters: {charge: $.charge}
onError: {compensate: true}
"""

WAIT = """
start: cool-down
steps:
  - {name: cool-down, type: wait, duration: 1s, next: not-before}
  - {name: not-before, type: wait, until: $.notBefore, next: resume}
  - name: resume
    type: task
    activity: conf.echo
    parameters: {id: $.id, resumed: true}
    resultPath: $.resumed
    end: true
"""

DAG = """
steps:
  - name: load
    type: task
    activity: conf.echo
    parameters: {kind: $.kind}
    resultPath: $.loaded
  - name: express
    type: task
    activity: conf.echo
    dependsOn: [load]
    when: {path: $.loaded.kind, eq: express}
    parameters: {mode: express}
    resultPath: $.express
  - name: standard
    type: task
    activity: conf.echo
    dependsOn: [load]
    when: {path: $.loaded.kind, eq: standard}
    parameters: {mode: standard}
    resultPath: $.standard
  - name: notify
    type: task
    activity: conf.echo
    dependsOn: [express, standard]
    parameters: {express: $.express, standard: $.standard}
    resultPath: $.notify
"""

DAG_ALONE = """
steps:
  - name: load
    type: task
    activity: conf.echo
    parameters: {audit: $.audit}
    resultPath: $.loaded
  - name: audit-trail
    type: task
    activity: conf.echo
    dependsOn: [load]
    when: {path: $.audit, eq: true}
    parameters: {audited: true}
    resultPath: $.auditTrail
  - name: report
    type: task
    activity: conf.echo
    dependsOn: [audit-trail]
    parameters: {audit: $.auditTrail}
    resultPath: $.report
"""

RETRY = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.unavailable
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: ping}}
    retry: {{maxAttempts: 3, initialInterval: 1s, backoffRate: 2, maxInterval: 1s}}
    catch: [{{errors: ["*"], next: gave-up, resultPath: $.failure}}]
    next: done
  - {{name: done, type: succeed}}
  - {{name: gave-up, type: succeed}}
"""

NON_RETRYABLE = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.unavailable
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: ping}}
    retry: {{maxAttempts: 3, initialInterval: 1s, nonRetryable: [{UNAVAILABLE}]}}
    next: done
  - {{name: done, type: succeed}}
"""

HANG = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.hang
    parameters: {{QueueUrl: "{HANG_QUEUE}", MessageBody: wait}}
    timeout: 2s
    catch: [{{errors: [Timeout], next: timed-out, resultPath: $.failure}}]
    next: done
  - {{name: done, type: succeed}}
  - {{name: timed-out, type: succeed}}
"""

SILENT = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.hang
    parameters: {{QueueUrl: "{HANG_QUEUE}", MessageBody: wait}}
    timeout: 30s
    heartbeat: 2s
    catch: [{{errors: [Timeout], next: timed-out}}]
    next: done
  - {{name: done, type: succeed}}
  - {{name: timed-out, type: succeed}}
"""

OPERATORS = """
start: screen
steps:
  - name: screen
    type: choice
    rules:
      - when:
          all:
            - {path: $.status, ne: closed}
            - {path: $.score, ge: 50}
            - {path: $.score, le: 50}
            - {path: $.attempts, lt: 3}
            - {path: $.ref, exists: true}
            - {path: $.voided, exists: false}
            - {path: $.ref, matches: "^INV-.*"}
            - {path: $.currency, matches: "^(EUR|GBP)$"}
        next: accepted
    default: rejected
  - name: accepted
    type: task
    activity: conf.echo
    parameters: {ref: $.ref}
    resultPath: $.accepted
    end: true
  - {name: rejected, type: succeed}
"""

APPROVAL_TIMEOUT = """
start: sign-off
steps:
  - name: sign-off
    type: approval
    signal: sign-off
    approvers: {roles: [controller]}
    timeout: 2s
    onTimeout: escalate
    next: approved
  - {name: approved, type: succeed}
  - name: escalate
    type: task
    activity: conf.echo
    parameters: {escalated: $.id}
    resultPath: $.escalation
    end: true
"""

WORKFLOW_TIMEOUT = """
timeout: 2s
start: hold
steps:
  - {name: hold, type: wait, duration: 60s, next: done}
  - {name: done, type: succeed}
"""

INVOICE = {"status": "open", "score": 50, "attempts": 2, "ref": "INV-7", "currency": "GBP"}
JITTER = f"""
start: flaky-call
steps:
  - name: flaky-call
    type: task
    activity: conf.fail
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: retry-me}}
    retry: {{maxAttempts: 3, initialInterval: 1s, backoffRate: 2.0, maxInterval: 2s, jitter: full}}
    catch: [{{errors: ["*"], next: gave-up}}]
    next: wrong
  - {{name: gave-up, type: succeed}}
  - {{name: wrong, type: fail, error: WrongRoute}}
"""

IDEMPOTENT = """
start: charge
steps:
  - name: charge
    type: task
    activity: conf.echo
    idempotencyKey: $.orderId
    parameters: {orderId: $.orderId, amount: $.total}
    retry: {maxAttempts: 2, initialInterval: 1s}
    resultPath: $.charge
    next: done
  - {name: done, type: succeed}
"""

BREAKER = """
start: quote
steps:
  - name: quote
    type: task
    activity: conf.echo
    circuitBreaker: {failureThreshold: 3, resetTimeout: 30s}
    parameters: {sku: $.sku}
    resultPath: $.quote
    catch: [{errors: [CircuitOpen], next: no-quote}]
    next: done
  - {name: no-quote, type: fail, error: NoQuote}
  - {name: done, type: succeed}
"""

IDEMPOTENT_CHAIN = """
start: reserve
steps:
  - name: reserve
    type: task
    activity: conf.echo
    idempotencyKey: $.orderId
    parameters: {orderId: $.orderId, lines: $.lines}
    resultPath: $.reservation
    next: confirm
  - name: confirm
    type: task
    activity: conf.echo
    idempotencyKey: $.orderId
    end: true
"""

DEAD_LETTER = f"""
start: reserve
steps:
  - name: reserve
    type: task
    activity: conf.echo
    next: reject
  - {{name: reject, type: fail, error: OrderRejected, cause: not in stock}}
onError: {{deadLetter: {DEAD_LETTER_QUEUE}}}
"""

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "linear-tasks",
        "linear tasks: parameters (nested objects, list items, lists with paths) and resultPath",
        LINEAR,
        ORDER,
        ("reserve", "charge", "confirm", "done"),
        output={"orderId": "o-1", "charged": 120},
    ),
    Scenario(
        "choice-numeric",
        "choice: a numeric rule matches",
        CHOICE,
        {"total": 1500, "country": "FR"},
        ("route", "large"),
        output={"total": 1500, "country": "FR", "routed": {"route": "large", "total": 1500}},
    ),
    Scenario(
        "choice-all-any-not",
        "choice: string eq, in, all/any/not",
        CHOICE,
        {"total": 10, "country": "DE", "tier": "silver", "express": True},
        ("route", "priority"),
        output={
            "total": 10,
            "country": "DE",
            "tier": "silver",
            "express": True,
            "routed": {"route": "priority", "country": "DE"},
        },
    ),
    Scenario(
        "choice-missing-paths",
        "choice: missing paths make comparisons false (not an error), so `not` holds",
        CHOICE,
        {"country": "DE"},
        ("route", "priority"),
        output={"country": "DE", "routed": {"route": "priority", "country": "DE"}},
    ),
    Scenario(
        "choice-default",
        "choice: no rule matches, the default is taken",
        CHOICE,
        {"total": 10, "country": "DE", "tier": "silver", "express": False},
        ("route", "standard"),
        output={"total": 10, "country": "DE", "tier": "silver", "express": False},
    ),
    Scenario(
        "parallel",
        "parallel: branches start from a copy; the result is the list of branch documents",
        PARALLEL,
        {"sku": "sku-1"},
        ("fan-out", "price", "stock", "stock-checked", "done"),
        output={
            "sku": "sku-1",
            "branches": [
                {"sku": "sku-1", "kind": "price"},
                {"sku": "sku-1", "stock": {"sku": "sku-1", "kind": "stock"}},
            ],
        },
        concurrent=True,
    ),
    Scenario(
        "map-max-concurrency",
        "map with maxConcurrency: an iteration's document is its item",
        MAP,
        {"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 9}, {"sku": "c", "qty": 2}]},
        (
            "per-line",
            *("price-line", "check-line", "single-line"),
            *("price-line", "check-line", "bulk-line"),
            *("price-line", "check-line", "single-line"),
            "done",
        ),
        output={
            "lines": [
                {"sku": "a", "qty": 1, "priced": {"sku": "a", "qty": 1}},
                {"sku": "b", "qty": 9, "priced": {"sku": "b", "qty": 9}},
                {"sku": "c", "qty": 2, "priced": {"sku": "c", "qty": 2}},
            ]
        },
        concurrent=True,
    ),
    Scenario(
        "map-batch-size",
        "map with batchSize: an iteration's document is the list of its batch (`$`)",
        BATCHES,
        {"parcels": [1, 2, 3, 4, 5]},
        ("pack", "label-batch", "label-batch", "label-batch", "done"),
        output={
            "parcels": [1, 2, 3, 4, 5],
            "manifests": [
                {"parcels": [1, 2], "carrier": "dhl"},
                {"parcels": [3, 4], "carrier": "dhl"},
                {"parcels": [5], "carrier": "dhl"},
            ],
        },
    ),
    Scenario(
        "catch-routing",
        "catch: `*` keeps the document without resultPath; a named error routes past a "
        "non-matching catcher and writes {Error, Cause}",
        CATCH,
        {"id": "c-1"},
        ("risky", "fallback", "boom", "recovered"),
        output={"id": "c-1", "error": {"Error": "Boom", "Cause": "injected"}},
    ),
    Scenario(
        "saga",
        "saga: compensations run newest first after an unhandled failure, then the run fails",
        SAGA,
        {"orderId": "o-1", "total": 120},
        ("reserve", "charge", "ship", "book-carrier", "refund", "release"),
        error="CarrierUnavailable",
    ),
    Scenario(
        "wait",
        "wait: a duration, then a timestamp already past",
        WAIT,
        {"id": "w-1", "notBefore": "2020-01-01T00:00:00Z"},
        ("cool-down", "not-before", "resume"),
        output={
            "id": "w-1",
            "notBefore": "2020-01-01T00:00:00Z",
            "resumed": {"id": "w-1", "resumed": True},
        },
    ),
    Scenario(
        "dag-when",
        "DAG: `when` true runs a step, `when` false skips it (not in the trace) and writes "
        "null at its resultPath for its dependents",
        DAG,
        {"kind": "express"},
        ("load", "express", "notify"),
        output={
            "kind": "express",
            "loaded": {"kind": "express"},
            "express": {"mode": "express"},
            "standard": None,
            "notify": {"express": {"mode": "express"}, "standard": None},
        },
    ),
    Scenario(
        "dag-when-alone",
        "DAG: a step skipped by `when` alone in its layer writes null for its dependent",
        DAG_ALONE,
        {"audit": False},
        ("load", "report"),
        output={
            "audit": False,
            "loaded": {"audit": False},
            "auditTrail": None,
            "report": {"audit": None},
        },
    ),
    Scenario(
        "retry-exhausted",
        "retry: maxAttempts attempts (backoff capped by maxInterval), then the catch",
        RETRY,
        {"id": "r-1"},
        ("call", "gave-up"),
        output={
            "id": "r-1",
            "failure": {"Error": UNAVAILABLE, "Cause": "The specified queue does not exist."},
        },
        attempts={"call": 3},
        unobserved=frozenset({"retry.backoff", "retry.maxInterval"}),
    ),
    Scenario(
        "retry-non-retryable",
        "retry: an error listed in nonRetryable fails at the first attempt",
        NON_RETRYABLE,
        {"id": "r-2"},
        ("call",),
        error=UNAVAILABLE,
        attempts={"call": 1},
        unobserved=frozenset({"retry.backoff"}),
    ),
    Scenario(
        "task-timeout",
        "task timeout: an attempt that does not finish in `timeout` fails with Timeout",
        HANG,
        {"id": "t-1"},
        ("call", "timed-out"),
        output={
            "id": "t-1",
            "failure": {"Error": "Timeout", "Cause": "activity timed out (START_TO_CLOSE)"},
        },
        diverges={"stepfunctions": "catch.Timeout.resultPath"},
        note="the caught error is written as {Error: States.Timeout, Cause: ''}",
    ),
    Scenario(
        "task-heartbeat",
        "task heartbeat: an attempt silent for `heartbeat` fails with Timeout",
        SILENT,
        {"id": "t-2"},
        ("call", "timed-out"),
        output={"id": "t-2"},
    ),
    Scenario(
        "choice-operators",
        "choice: ne, ge and le at the boundary, lt, exists true/false, matches (prefix and "
        "alternatives) all hold",
        OPERATORS,
        INVOICE,
        ("screen", "accepted"),
        output={**INVOICE, "accepted": {"ref": "INV-7"}},
    ),
    Scenario(
        "choice-operators-false",
        "choice: one comparison false (lt at the boundary) makes `all` false: the default",
        OPERATORS,
        {**INVOICE, "attempts": 3},
        ("screen", "rejected"),
        output={**INVOICE, "attempts": 3},
    ),
    Scenario(
        "choice-operators-missing",
        "choice: `ne` on a missing path is false (not true), like every comparison",
        OPERATORS,
        {key: value for key, value in INVOICE.items() if key != "status"},
        ("screen", "rejected"),
        output={key: value for key, value in INVOICE.items() if key != "status"},
    ),
    Scenario(
        "approval-timeout",
        "approval: no answer within `timeout` goes to onTimeout",
        APPROVAL_TIMEOUT,
        {"id": "a-1"},
        ("sign-off", "escalate"),
        output={"id": "a-1", "escalation": {"escalated": "a-1"}},
    ),
    Scenario(
        "workflow-timeout",
        "workflow timeout: a run longer than `timeout` fails with Timeout",
        WORKFLOW_TIMEOUT,
        {},
        ("hold",),
        error="Timeout",
    ),
    Scenario(
        "retry-jitter",
        "retry with full jitter: every attempt fails, the retries wait a random share of "
        "the capped backoff, then the failure is caught (the document unchanged)",
        JITTER,
        {"id": "j-1"},
        ("flaky-call", "gave-up"),
        output={"id": "j-1"},
        attempts={"flaky-call": 3},
        unobserved=frozenset({"retry.backoff", "retry.maxInterval", "retry.jitter"}),
    ),
    Scenario(
        "idempotency-key",
        "a task with idempotencyKey runs as any task (the key reaches the activity: on "
        "Temporal as its activity id)",
        IDEMPOTENT,
        {"orderId": "o-1", "total": 120},
        ("charge", "done"),
        output={"orderId": "o-1", "total": 120, "charge": {"orderId": "o-1", "amount": 120}},
        unobserved=frozenset({"task.idempotencyKey"}),
    ),
    Scenario(
        "circuit-breaker-closed",
        "a task behind a closed circuit breaker calls its activity as any task",
        BREAKER,
        {"sku": "sku-1"},
        ("quote", "done"),
        output={"sku": "sku-1", "quote": {"sku": "sku-1"}},
        unobserved=frozenset({"task.circuitBreaker", "circuitBreaker"}),
    ),
    Scenario(
        "idempotency-key-chain",
        "idempotencyKey: the activity's input and result are the task's, as without a key "
        "(on Step Functions the key rides along with the Lambda invocation)",
        IDEMPOTENT_CHAIN,
        {"orderId": "o-1", "lines": 2},
        ("reserve", "confirm"),
        output={"orderId": "o-1", "lines": 2, "reservation": {"orderId": "o-1", "lines": 2}},
        unobserved=frozenset({"task.idempotencyKey"}),
    ),
    Scenario(
        "dead-letter",
        "onError.deadLetter: an unhandled failure sends the dead-letter CloudEvent to the "
        "bound SQS queue, then the run fails with its error",
        DEAD_LETTER,
        {"orderId": "o-dl"},
        ("reserve", "reject"),
        error="OrderRejected",
        dead_letter=True,
    ),
)
"""Every scenario, in the order of the documentation."""


def conformance_markdown(
    scenarios: tuple[Scenario, ...], features: Mapping[str, Mapping[str, Feature]]
) -> str:
    """The "Conformance" section of docs/portability.md: each scenario's result per engine.

    `features` is each engine's FEATURES table (for the support level of a declared
    divergence).
    """
    engines = [*RUN_ENGINES, "argo"]
    lines = [
        "## Conformance",
        "",
        "Generated from `tests/conformance/scenarios.py`; `tests/conformance/test_conformance.py` "
        "runs every scenario on a real Temporal dev server (cpl's interpreter) and on the "
        "Step Functions emulator (moto) and checks the trace (step names in the order they "
        "started; translator helper states are not steps) and the output or error against "
        "the expected ones. `same`: the engine does exactly that; otherwise the construct "
        "whose Support record declares the difference. Argo manifests are rendered but not "
        "run (no Kubernetes API server can run here).",
        "",
        "| scenario | checks | " + " | ".join(engines) + " |",
        "|---|---|" + "---|" * len(engines),
    ]
    notes: list[str] = []
    for scenario in scenarios:
        cells = []
        for engine in RUN_ENGINES:
            construct = scenario.diverges.get(engine)
            if construct is None:
                cells.append("same")
                continue
            verdict = features[engine].get(construct, Feature("exact"))
            cells.append(f"differs: `{construct}` ({verdict.support})")
            notes.append(f"- **{scenario.id}** on {engine}: {scenario.note}")
        cells.append("rendered, not run")
        lines.append(f"| `{scenario.id}` | {scenario.title} | " + " | ".join(cells) + " |")
    if notes:
        lines.extend(["", "Declared differences:", "", *notes])
    return "\n".join([*lines, ""])
