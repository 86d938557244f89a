"""Retry delays on the engines: backoff grows them up to maxInterval; full jitter spreads
them at random within the backoff.

A conformance scenario counts attempts; the delays between them need times: on the Step
Functions emulator from the execution history (moto executes the rendered Retry), on
Temporal from when each attempt of the conformance activity started.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from controlplane.engines import ENGINES
from controlplane.engines.stepfunctions.runner import execution_outcome, start_execution
from controlplane.engines.temporal.translate import spec_payload
from controlplane.spec.model import Workflow

from .conftest import ATTEMPT_TIMES, StepFunctionsEngine, TemporalEngine
from .scenarios import MISSING_QUEUE, TARGETS, Scenario, environment

pytestmark = pytest.mark.integration

ATTEMPTS = 6
INTERVAL = 2.0

JITTERED = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.unavailable
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: ping}}
    retry: {{maxAttempts: {ATTEMPTS}, initialInterval: {INTERVAL:g}s, backoffRate: 1,
             jitter: full}}
    end: true
"""


BACKOFF = f"""
start: call
steps:
  - name: call
    type: task
    activity: conf.unavailable
    parameters: {{QueueUrl: "{MISSING_QUEUE}", MessageBody: ping}}
    retry: {{maxAttempts: 4, initialInterval: 1s, backoffRate: 2, maxInterval: 2s}}
    end: true
"""
EXPECTED_DELAYS = [1.0, 2.0, 2.0]
"""1 s, doubled, then capped by maxInterval (4 s without the cap)."""
SLACK = 1.0
"""Seconds an engine may add to a delay (scheduling); well under the cap's difference."""


def _deployed(engine: str, name: str, text: str, sfn: StepFunctionsEngine, endpoint: str) -> Any:
    workflow = Scenario(name, name, text, {}, ("call",)).workflow()
    env = environment(endpoint)
    target = env.target(TARGETS[engine])
    artifact = ENGINES[engine].translator.render(workflow, target, env)
    if engine == "stepfunctions":
        assert target.role_arn is not None
        sfn.deploy(artifact, target.role_arn)
    return workflow, target, artifact


def _sfn_delays(sfn: StepFunctionsEngine, target: Any, workflow: Workflow) -> list[float]:
    execution = start_execution(sfn.client, target, workflow, {})
    outcome = execution_outcome(sfn.client, execution, 60, poll=0.1)
    assert outcome["status"] == "failed"
    return _delays(sfn.client, execution)


@pytest.mark.parametrize("engine", ["temporal", "stepfunctions"])
def test_backoff_doubles_the_delay_up_to_max_interval(
    engine: str,
    sfn_engine: StepFunctionsEngine,
    temporal_engine: TemporalEngine,
    moto_endpoint: str,
) -> None:
    workflow, target, artifact = _deployed(
        engine, "retry-backoff", BACKOFF, sfn_engine, moto_endpoint
    )
    if engine == "temporal":
        workflow_id = f"retry-delays-{uuid.uuid4().hex[:8]}"
        run = temporal_engine.run(spec_payload(artifact), {}, workflow_id)
        assert run.outcome["status"] == "failed"
        times = ATTEMPT_TIMES[workflow_id]
        delays = [later - earlier for earlier, later in itertools.pairwise(times)]
    else:
        delays = _sfn_delays(sfn_engine, target, workflow)

    assert len(delays) == len(EXPECTED_DELAYS), delays
    for delay, expected in zip(delays, EXPECTED_DELAYS, strict=True):
        assert expected - 0.05 <= delay <= expected + SLACK, (delays, EXPECTED_DELAYS)


def _delays(client: Any, execution: str) -> list[float]:
    """Seconds from each failed attempt to the next attempt, from the execution history."""
    events = client.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    failed = [e["timestamp"] for e in events if e["type"] == "TaskFailed"]
    scheduled = [e["timestamp"] for e in events if e["type"] == "TaskScheduled"]
    return [(nxt - prev).total_seconds() for prev, nxt in zip(failed, scheduled[1:], strict=False)]


def test_stepfunctions_full_jitter_spreads_retry_delays(
    sfn_engine: StepFunctionsEngine, moto_endpoint: str
) -> None:
    workflow, target, _ = _deployed(
        "stepfunctions", "retry-jitter", JITTERED, sfn_engine, moto_endpoint
    )
    delays = _sfn_delays(sfn_engine, target, workflow)

    assert len(delays) == ATTEMPTS - 1
    # each delay is drawn from [0, INTERVAL] (a little slack for the engine's own work) ...
    assert all(0 <= delay <= INTERVAL + 0.75 for delay in delays), delays
    # ... at random: without jitter every delay would be INTERVAL (chance of five draws all
    # this close to it: 0.1**5)
    assert min(delays) < INTERVAL * 0.9, delays
