"""Shared fixtures: one real embedded OPA engine per session, and small documents built as
YAML text and loaded through the real loader."""

from __future__ import annotations

import copy
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import controlplane  # noqa: F401
except ModuleNotFoundError:  # the project is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controlplane.policy.decision import Decision, evaluate
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.inputs import Rendered, build_inputs
from controlplane.policy.library import load_library, policy_config
from controlplane.spec.environment import Environment
from controlplane.spec.load import LoadResult, Source, load_sources

TODAY = dt.date(2026, 11, 25)
PROJECT = Path(__file__).resolve().parents[2]

ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  targets:
    - {name: sfn, engine: stepfunctions, region: eu-west-1, regulated: true}
  bindings:
    activities:
      orders.charge: {stepfunctions: {resource: "arn:aws:lambda:eu-west-1:1:function:charge"}}
      orders.refund: {stepfunctions: {resource: "arn:aws:lambda:eu-west-1:1:function:refund"}}
      orders.item: {stepfunctions: {resource: "arn:aws:lambda:eu-west-1:1:function:item"}}
      partner.call: {stepfunctions: {resource: "arn:p"}, external: true}
    queues: {orders-dlq: {stepfunctions: "https://sqs.eu-west-1.amazonaws.com/1/dlq"}}
    keys: {orders-kms: {stepfunctions: "arn:aws:kms:eu-west-1:1:key/k"}}
"""

# Compliant with every built-in rule on a production, regulated Step Functions target.
WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: orders, tenant: retail, version: 1.0.0, owner: team, classification: pii}
spec:
  input:
    schema: {type: object, required: [orderId], properties: {orderId: {type: string}}}
    maxInlineBytes: 64KiB
  timeout: 1h
  retention: 30d
  defaults:
    timeout: 5m
    retry: {maxAttempts: 3, initialInterval: 1s, backoffRate: 2.0, maxInterval: 1m, jitter: full}
  start: charge
  steps:
    - {name: charge, type: task, activity: orders.charge, idempotencyKey: $.orderId,
       compensation: refund, next: done}
    - {name: done, type: succeed}
    - {name: refund, type: task, activity: orders.refund, idempotencyKey: $.orderId, end: true}
  onError: {deadLetter: orders-dlq, compensate: true}
  slo: {completionTime: {p95: 10m}, successRate: 0.99}
  alerts: [{metric: failureRate, above: 0.02, window: 15m}]
  access:
    start: {roles: [orders-service]}
    admin: {roles: [sre], jit: {maxDuration: 1h}}
  security: {encryption: {key: orders-kms}}
"""

WORKFLOW_FILE = "workflows/retail/orders.yaml"


def data(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def mutate(text: str, change: Callable[[dict[str, Any]], object]) -> str:
    document = copy.deepcopy(data(text))
    change(document)
    return dump(document)


def load(
    workflows: dict[str, str] | None = None,
    environment: str = ENVIRONMENT,
    waivers: dict[str, str] | None = None,
) -> tuple[LoadResult, Environment]:
    sources = [
        Source(file, text) for file, text in (workflows or {WORKFLOW_FILE: WORKFLOW}).items()
    ]
    sources += [Source(file, text) for file, text in (waivers or {}).items()]
    sources.append(Source("environments/env.yaml", environment))
    result = load_sources(sources, today=TODAY)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result, result.environments[0].model


@pytest.fixture(scope="session")
def engine() -> Iterator[EmbeddedOpa]:
    """The built-in library on real OPA, loaded once (config: library defaults)."""
    with EmbeddedOpa(load_library()) as opa:
        yield opa


Decide = Callable[..., Decision]


def spec_only(*_: object) -> Rendered:
    """No translator output: the spec rules alone (rendered rules get explicit stubs)."""
    return Rendered({}, [])


@pytest.fixture
def decide(engine: EmbeddedOpa) -> Decide:
    """Load documents, build inputs and decide with the shared engine."""

    def run(
        workflows: dict[str, str] | None = None,
        environment: str = ENVIRONMENT,
        waivers: dict[str, str] | None = None,
        *,
        previous: dict[str, str] | None = None,
        render: Callable[..., Rendered] | None = None,
        today: dt.date = TODAY,
    ) -> Decision:
        result, env = load(workflows, environment, waivers)
        before = load(previous, environment)[0] if previous is not None else None
        inputs, problems = build_inputs(result, env, before, render=render or spec_only)
        opa = engine
        owned = None
        if policy_config(env):
            owned = EmbeddedOpa(load_library(), policy_config(env))
            opa = owned
        try:
            return evaluate(
                inputs,
                env,
                result.waivers,
                today,
                engine=opa,
                locate=result.locate,
                diagnostics=problems,
            )
        finally:
            if owned is not None:
                owned.close()

    return run


def fired(decision: Decision) -> set[tuple[str, str]]:
    """(rule, path) of every violation, whatever its outcome."""
    return {(v.rule, v.path) for v in decision.violations}
