"""Where an S3 audit sink keeps its objects, and the few S3 calls it makes.

An environment's chain lives under `<prefix>/<env>/` as `<sequence:012d>.jsonl` objects,
numbered from 1. The key depends on the sequence alone, so "create object n+1 unless it
exists" (PutObject with `If-None-Match: *`) is the one atomic step that extends the chain:
of two writers after the same head, exactly one creates the key and the other is answered
412 and re-links its batch after the new head. The time of a batch's first event is in the
object's metadata (`cpl-first-time`), not its key: a key that varied with the time would let
both writers create "their" object n.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from controlplane.audit.events import AuditError
from controlplane.redaction import redact_text
from controlplane.spec.environment import AwsSettings, S3Retention, Sink

SEQUENCE_DIGITS = 12
OBJECT_SUFFIX = ".jsonl"
CONTENT_TYPE = "application/cloudevents-batch+jsonl"
# S3 answers a lost conditional-write race with 412; a write racing an unfinished one on the
# same key may be answered 409 ConditionalRequestConflict: both mean "someone else's object".
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_OBJECT_NAME = re.compile(rf"^(\d{{{SEQUENCE_DIGITS}}})\{OBJECT_SUFFIX}$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    """The objects of one environment's chain in one bucket."""

    bucket: str
    prefix: str  # "" or a path without leading or trailing "/"
    environment: str

    @classmethod
    def parse(cls, url: str, environment: str) -> S3Location:
        """`s3://bucket[/prefix]` for `environment`, or an AuditError naming the URL."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not _BUCKET.match(parsed.netloc or ""):
            raise AuditError(f"audit s3 sink '{url}' is not s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path.strip("/"), environment)

    @property
    def folder(self) -> str:
        """The key prefix of the chain's objects, ending in "/"."""
        return f"{self.prefix}/{self.environment}/" if self.prefix else f"{self.environment}/"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.folder}"

    def key(self, sequence: int) -> str:
        return f"{self.folder}{sequence:0{SEQUENCE_DIGITS}d}{OBJECT_SUFFIX}"

    def sequence_of(self, key: str) -> int | None:
        """The sequence number in an object key of this chain, None for another name."""
        match = _OBJECT_NAME.match(key.removeprefix(self.folder))
        return int(match.group(1)) if match and key.startswith(self.folder) else None

    def show(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class Version:
    """One version of a key (or a delete marker) in a versioned bucket."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool


def s3_client(sink: Sink, aws: AwsSettings | None, timeout: float) -> Any:
    """A boto3 S3 client for the sink: its own `region` / `endpoint`, each falling back to the
    environment's `aws` settings. botocore does not retry: the sink does, with backoff.
    A loopback endpoint (an emulator) gets placeholder credentials when none are configured."""
    import boto3
    from botocore.config import Config

    region = sink.region or (aws.region if aws else None)
    endpoint = sink.endpoint or (aws.endpoint if aws else None)
    session = boto3.session.Session(region_name=region)
    options: dict[str, Any] = {
        "config": Config(
            retries={"total_max_attempts": 1},
            connect_timeout=timeout,
            read_timeout=timeout,
            s3={"addressing_style": "path"} if endpoint else {},
        )
    }
    if endpoint:
        options["endpoint_url"] = endpoint
        if urlparse(endpoint).hostname in _LOOPBACK and session.get_credentials() is None:
            options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
    return session.client("s3", **options)


class S3Store:
    """The S3 calls of the audit sink and `cpl audit verify` (errors pass through as boto's)."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self.client = client
        self.location = location

    def keys(self, start_after: str | None = None) -> Iterator[str]:
        """Every key under the chain's folder, in key order (after `start_after`)."""
        options: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": self.location.folder}
        if start_after:
            options["StartAfter"] = start_after
        for page in self.client.get_paginator("list_objects_v2").paginate(**options):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def versions(self) -> list[Version]:
        """Every version and delete marker under the folder (empty for an unversioned bucket)."""
        found: list[Version] = []
        paginator = self.client.get_paginator("list_object_versions")
        pages = paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.folder)
        for page in pages:
            for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
                for item in page.get(kind, []):
                    found.append(
                        Version(
                            str(item["Key"]),
                            str(item.get("VersionId")),
                            bool(item.get("IsLatest")),
                            marker,
                        )
                    )
        return found

    def read(self, key: str, limit: int) -> bytes:
        """The object's bytes; at most `limit` + 1 are read (a larger object is suspect)."""
        answer = self.client.get_object(Bucket=self.location.bucket, Key=key)
        body: bytes = answer["Body"].read(limit + 1)
        return body

    def create(
        self,
        key: str,
        body: bytes,
        metadata: dict[str, str],
        retention: S3Retention | None,
        now: dt.datetime,
    ) -> bool:
        """Create `key` unless it exists: True when created, False when another writer has it.

        With `retention`, the object is locked until `now` + days in its mode."""
        options: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Key": key,
            "Body": body,
            "IfNoneMatch": "*",
            "ContentType": CONTENT_TYPE,
            "Metadata": metadata,
            # Object Lock needs a checksum on every upload; SHA-256 also guards the bytes.
            "ChecksumAlgorithm": "SHA256",
        }
        if retention is not None:
            options["ObjectLockMode"] = retention.mode
            options["ObjectLockRetainUntilDate"] = now + dt.timedelta(days=retention.days)
        try:
            self.client.put_object(**options)
        except Exception as exc:
            if error_code(exc) in _CONFLICT_CODES:
                return False
            raise
        return True

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock enabled (a bucket without any says so by error)."""
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.location.bucket)
        except Exception as exc:
            if error_code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        configuration = answer.get("ObjectLockConfiguration", {})
        return bool(configuration.get("ObjectLockEnabled") == "Enabled")


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError, None for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def describe(exc: BaseException) -> str:
    """A one-line reason for an S3 failure, fit to print (no credentials)."""
    return redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
