"""S3 buckets and DynamoDB lock tables on the session's moto server, unique per test, and a
control repo whose `local` environment keeps its state in them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane.deploy.aws import deploy_client
from controlplane.deploy.state import ResourceState
from controlplane.spec.environment import AwsSettings
from tests.deploy.conftest import ControlRepo, write_repo


@dataclass
class Remote:
    """A bucket and a lock table of the emulator, and clients to look into them."""

    aws: AwsSettings
    bucket: str
    table: str
    s3: Any
    dynamodb: Any

    @property
    def state_url(self) -> str:
        return f"s3://{self.bucket}/cpl"

    @property
    def lock_url(self) -> str:
        return f"dynamodb://{self.table}"

    def object_text(self, key: str) -> str:
        return str(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode())

    def object_keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return sorted(str(entry["Key"]) for entry in listed)


def make_remote(endpoint: str, *, versioned: bool = False) -> Remote:
    aws = AwsSettings(region="us-east-1", endpoint=endpoint)
    suffix = uuid.uuid4().hex[:10]
    s3, dynamodb = deploy_client(aws, "s3"), deploy_client(aws, "dynamodb")
    bucket, table = f"cpl-state-{suffix}", f"cpl-locks-{suffix}"
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Remote(aws, bucket, table, s3, dynamodb)


def resource(name: str, version: str = "1.0.0") -> ResourceState:
    """A record of a Step Functions workflow `retail/<name>` as apply writes it."""
    return ResourceState(
        workflow=f"retail/{name}",
        target="aws",
        engine="stepfunctions",
        resource_id=f"arn:aws:states:us-east-1:123456789012:stateMachine:retail-{name}",
        artifact_digest="sha256:" + "0" * 64,
        spec_version=version,
        applied_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


@pytest.fixture
def remote(moto_endpoint: str) -> Remote:
    return make_remote(moto_endpoint)


def use_remote_state(repo: ControlRepo | Path, remote: Remote) -> None:
    """Point the repo's `local` environment at the remote state and lock."""
    root = repo.root if isinstance(repo, ControlRepo) else repo
    path = root / "environments/local.yaml"
    text = path.read_text()
    old = "    state: .cpl/state/local\n"
    assert old in text
    path.write_text(
        text.replace(
            old,
            f"    state: {remote.state_url}\n"
            f"    lock: {remote.lock_url}\n"
            f"    aws: {{region: us-east-1, endpoint: '{remote.aws.endpoint}'}}\n",
        )
    )


@pytest.fixture
def offline_repo(tmp_path: Path, moto_endpoint: str) -> ControlRepo:
    """A control repo for state commands only: no engine is called."""
    return write_repo(tmp_path / "repo", moto_endpoint, "127.0.0.1:1")
