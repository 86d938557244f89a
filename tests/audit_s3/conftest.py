"""S3 audit sinks on the session's moto server: control repos ("runners") whose environment
`prod` writes its audit chain to a bucket there, with or without Object Lock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

import controlplane.audit
from controlplane.audit import s3sink
from controlplane.audit.httpsink import RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, timeout=2.0, cooldown=0)


@pytest.fixture(autouse=True)
def fast_s3_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 sinks retry quickly here, and none outlives a test (each test is a new runner)."""
    monkeypatch.setattr(s3sink, "DEFAULT_RETRY", FAST)
    monkeypatch.setattr(controlplane.audit, "_S3_SINKS", {})


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="cpl-local",
        aws_secret_access_key="cpl-local",
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    """A bucket without Object Lock (and without versioning)."""
    name = f"audit-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def locked_bucket(s3: Any) -> str:
    """A bucket created with Object Lock enabled (so versioned)."""
    name = f"audit-locked-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def write_environment(repo: Path, sink: str, endpoint: str) -> None:
    """environments/prod.yaml with one audit sink (YAML flow text) and `aws.endpoint`."""
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    (repo / "environments" / "prod.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: prod}\n"
        "spec:\n  tier: production\n"
        "  targets: [{name: sfn, engine: stepfunctions, region: us-east-1}]\n"
        f"  aws: {{region: us-east-1, endpoint: '{endpoint}'}}\n"
        f"  audit: {{sinks: [{sink}]}}\n"
    )


@pytest.fixture
def runner(tmp_path: Path, moto_endpoint: str) -> Callable[..., Path]:
    """`runner(name, bucket, extra="")`: a fresh control repo writing to s3://bucket/audit."""

    def make(name: str, bucket: str, extra: str = "") -> Path:
        repo = tmp_path / name
        write_environment(repo, f"{{s3: 's3://{bucket}/audit'{extra}}}", moto_endpoint)
        return repo

    return make


def object_keys(s3: Any, bucket: str) -> list[str]:
    answer = s3.list_objects_v2(Bucket=bucket, Prefix="audit/prod/")
    return [item["Key"] for item in answer.get("Contents", [])]


def key(sequence: int) -> str:
    return f"audit/prod/{sequence:012d}.jsonl"
