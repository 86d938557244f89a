"""Payload offload on the real Temporal dev server, with the claim checks in S3 on moto.

The dev server refuses any payload above 2 MiB: a run whose input is 2.5 MiB cannot start
without offload. With `payload.offload` the same run starts, an activity returns 2.5 MiB, the
next activity receives both, and the run's result (above the limit too) comes back whole;
the large payloads are objects in the store, one per distinct payload.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from temporalio.api.common.v1 import Payload

from controlplane.engines.temporal.codec import (
    CLAIM_CHECK_ENCODING,
    ClaimCheckCodec,
    ClaimCheckError,
    Store,
    target_converter,
)
from controlplane.engines.temporal.runner import TemporalRunner
from controlplane.errors import ConfigError, EngineError

from .conftest import (
    BUCKET,
    INLINE,
    MIB,
    OFFLOADED,
    PLAIN,
    PREFIX,
    Offload,
    environment,
    workflow,
)

pytestmark = pytest.mark.integration

BIG = int(2.5 * MIB)
RUN_INPUT = {"blob": "i" * BIG, "mib": 2.5}


def test_a_run_above_the_payload_limit_fails_without_offload(offload: Offload) -> None:
    runner = TemporalRunner(offload.environment)
    with pytest.raises(EngineError) as refused:
        runner.start(INLINE, offload.target, offload.environment, RUN_INPUT)
    message = refused.value.message
    assert "refused to start retail/inline" in message and "size exceeds limit" in message


def test_offloaded_input_and_activity_result_above_the_limit_succeed(offload: Offload) -> None:
    runner = TemporalRunner(offload.environment)
    run_id = runner.start(OFFLOADED, offload.target, offload.environment, RUN_INPUT)
    outcome = runner.outcome(offload.target, run_id, timeout=60)

    assert outcome["status"] == "succeeded", outcome["error"]
    assert outcome["trace"] == ["grow", "measure"]
    output = outcome["output"]
    assert output["measured"] == {"grown": BIG, "input": BIG}  # what the activity received
    assert output["blob"] == RUN_INPUT["blob"]
    assert len(output["grown"]["blob"]) == BIG

    stored = offload.claim_checks()
    assert stored, "no payload was offloaded"
    for key in stored:
        assert re.fullmatch(rf"{PREFIX}/claim-checks/[0-9a-f]{{64}}", key), key
    # the run input, the activity inputs and result, the run's result: each above 2 MiB
    assert sum(size > 2 * MIB for size in stored.values()) >= 4

    # content-addressed: the same run again stores nothing new but its result, which
    # carries the run's own step timings (the input and activity payloads are reused)
    again = runner.start(OFFLOADED, offload.target, offload.environment, RUN_INPUT)
    assert runner.outcome(offload.target, again, timeout=60)["status"] == "succeeded"
    now = offload.claim_checks()
    assert now.items() >= stored.items()
    assert len(now) - len(stored) == 1


def test_an_activity_worker_without_the_codec_fails_on_large_data(offload: Offload) -> None:
    """Why Temporal's record is approximated: the activity worker must install the codec."""
    runner = TemporalRunner(offload.environment)
    result = runner.start(PLAIN, offload.target, offload.environment, {"mib": 2.5})
    failed = runner.outcome(offload.target, result, timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"] is not None
    assert failed["error"]["error"] == "PayloadsTooLarge"
    assert "exceeded the error limit" in failed["error"]["cause"]
    # an input above the threshold reaches it as a reference it cannot read
    pad = {"mib": 0.01, "pad": "p" * (300 * 1024)}
    unread = runner.start(PLAIN, offload.target, offload.environment, pad)
    failed = runner.outcome(offload.target, unread, timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"] == {"error": "Error", "cause": "Failed decoding arguments"}


def _codec(offload: Offload, threshold: int | None = 10, cap: int = MIB) -> ClaimCheckCodec:
    return ClaimCheckCodec(Store(BUCKET, PREFIX), threshold, s3=offload.s3, max_object_bytes=cap)


def _reference(**fields: object) -> Payload:
    return Payload(metadata={"encoding": CLAIM_CHECK_ENCODING}, data=json.dumps(fields).encode())


def test_small_payloads_stay_inline_and_large_ones_round_trip(offload: Offload) -> None:
    codec = _codec(offload, threshold=100)
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'"small"')
    large = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"x" * 500 + b'"')

    encoded = asyncio.run(codec.encode([small, large]))

    assert encoded[0] == small
    assert encoded[1].metadata["encoding"] == CLAIM_CHECK_ENCODING
    assert encoded[1].ByteSize() < 300
    assert asyncio.run(codec.decode(encoded)) == [small, large]


def test_decoding_refuses_references_outside_the_store_and_oversized_objects(
    offload: Offload,
) -> None:
    codec = _codec(offload, threshold=10, cap=200)
    large = Payload(metadata={"encoding": b"json/plain"}, data=b"y" * 150)
    [reference] = asyncio.run(codec.encode([large]))
    fields = json.loads(reference.data)

    outside = dict(fields, bucket="someone-elses-bucket")
    with pytest.raises(ClaimCheckError, match="outside the stores"):
        asyncio.run(codec.decode([_reference(**outside)]))
    other_key = dict(fields, key=f"{PREFIX}/secrets/{fields['sha256']}")
    with pytest.raises(ClaimCheckError, match="outside the stores"):
        asyncio.run(codec.decode([_reference(**other_key)]))
    with pytest.raises(ClaimCheckError, match="above the 100 bytes"):
        asyncio.run(_codec(offload, cap=100).decode([reference]))
    # an object replaced in the bucket no longer matches the hash it is stored under
    offload.s3.put_object(Bucket=BUCKET, Key=fields["key"], Body=b"z" * fields["size"])
    with pytest.raises(ClaimCheckError, match="does not match its hash"):
        asyncio.run(codec.decode([reference]))
    with pytest.raises(ClaimCheckError, match="malformed"):
        asyncio.run(codec.decode([_reference(bucket=BUCKET)]))


def test_one_codec_per_target_takes_the_smallest_threshold_and_one_store() -> None:
    env = environment("http://127.0.0.1:1", "127.0.0.1:7233", "default")
    target = env.target("temporal-offload")
    small = workflow("small", {"store": "artifacts", "threshold": "64KiB"})
    codec = target_converter(env, target, (OFFLOADED, small, INLINE)).payload_codec
    assert isinstance(codec, ClaimCheckCodec)
    assert codec.threshold == 64 * 1024
    assert codec.store == Store(BUCKET, PREFIX)

    reader = target_converter(env, target, (INLINE,)).payload_codec
    assert isinstance(reader, ClaimCheckCodec) and reader.threshold is None

    other = workflow("other", {"store": "elsewhere", "threshold": "1MiB"})
    with pytest.raises(ConfigError, match="different stores"):
        target_converter(env, target, (OFFLOADED, other))


def test_a_store_that_is_not_s3_is_a_config_error_where_it_is_used() -> None:
    env = environment("http://127.0.0.1:1", "127.0.0.1:7233", "default", "gs://bucket/x")
    with pytest.raises(ConfigError, match=r"spec.bindings.stores.artifacts.url"):
        target_converter(env, env.target("temporal-offload"), (OFFLOADED,))
    # a store no offloading workflow of the target uses may be bound for another engine
    reader = target_converter(env, env.target("temporal-offload"), (INLINE,)).payload_codec
    assert isinstance(reader, ClaimCheckCodec)
    assert reader.readable == {Store(f"{BUCKET}-other", "x")}
