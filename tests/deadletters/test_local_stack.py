"""`cpl local up` provisions, on the Step Functions emulator it runs, the dead-letter queues
and object-store buckets the environment binds there (moto, as `cpl local up` starts it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.local import provision
from controlplane.spec.environment import StoreBinding
from controlplane.spec.load import load_environment

pytestmark = pytest.mark.integration


def test_queues_and_buckets_bound_on_the_emulator_are_created(
    repo: Path, moto_endpoint: str, sqs: Any
) -> None:
    environment = load_environment(repo, "test").model_copy(deep=True)
    queues = environment.spec.bindings.queues
    del queues["late-dlq"]  # test_temporal.py needs it missing until it creates it
    sfn_url = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq-fresh-sfn"
    queues["fresh-dlq"] = {"temporal": "dlq-fresh", "stepfunctions": sfn_url}
    environment.spec.bindings.stores["artifacts"] = StoreBinding(url="s3://cpl-dlq-test/runs")

    made = provision(environment, moto_endpoint + "/")
    assert {"sqs:dlq-fresh", "sqs:dlq-fresh-sfn", "s3:cpl-dlq-test"} <= set(made)
    names = {url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]}
    assert {"dlq-fresh", "dlq-fresh-sfn", "dlq-temporal", "dlq-sfn"} <= names
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    s3.head_bucket(Bucket="cpl-dlq-test")
    assert set(provision(environment, moto_endpoint)) == set(made)  # again: nothing fails
    assert provision(environment, "http://127.0.0.1:1") == ()  # not this emulator's
