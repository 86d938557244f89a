"""Payload offload on Temporal: a claim-check payload codec that keeps large payloads in S3.

Temporal refuses a payload above its blob limit (2 MiB by default). With `spec.payload.offload`
a payload larger than the threshold is written to the bound store (`bindings.stores.<name>.url`,
`s3://bucket/prefix`) and replaced, in the history, by a small reference payload
(metadata `encoding: binary/cpl-claim-check`, data `{"bucket", "key", "size", "sha256"}`).
The object key is content-addressed, `<prefix>/claim-checks/<sha256 of the payload>`: a retried
activity or a replayed workflow task writes the same object again, never a new one.

Decoding is bounded: a reference is read only from a store the environment binds, only if its
object is at most `MAX_OBJECT_BYTES`, and only if the bytes hash to the key they were stored
under. S3 is reached through the environment's `spec.aws` (region, endpoint); credentials come
from the usual AWS chain.

cpl's own worker and clients get theirs from `target_converter`; activity workers of your own
call `claim_check_converter` (docs/runtime.md, "Payload offload").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings, Environment, Target
from controlplane.spec.model import Workflow
from controlplane.spec.types import parse_size

__all__ = [
    "CLAIM_CHECK_ENCODING",
    "ClaimCheckCodec",
    "ClaimCheckError",
    "Store",
    "claim_check_converter",
    "target_converter",
]

CLAIM_CHECK_ENCODING = b"binary/cpl-claim-check"
"""The `encoding` metadata of a reference payload."""

MAX_OBJECT_BYTES = 256 * 1024 * 1024
"""The largest offloaded payload a codec reads back (an untrusted reference could name any)."""

MAX_REFERENCE_BYTES = 4096
"""A reference payload is a few hundred bytes; anything larger is not one of ours."""

KEY_FOLDER = "claim-checks"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ClaimCheckError(Exception):
    """A reference payload that cannot (or must not) be resolved, or a store that failed."""


@dataclass(frozen=True)
class Store:
    """An S3 location of offloaded payloads: bucket and key prefix (no slashes at its ends)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str, where: str = "store url") -> Store:
        """`s3://bucket/prefix` → Store; ConfigError naming `where` otherwise."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not _BUCKET.match(parsed.netloc or ""):
            raise ConfigError(
                f"{where} is '{url}': payload offload needs an S3 location, s3://bucket/prefix"
            )
        return cls(parsed.netloc, parsed.path.strip("/"))

    def key(self, digest: str) -> str:
        return "/".join(part for part in (self.prefix, KEY_FOLDER, digest) if part)

    def holds(self, bucket: str, key: str) -> bool:
        """Whether `bucket`/`key` is an offloaded payload of this store."""
        if bucket != self.bucket:
            return False
        digest = key.rsplit("/", 1)[-1]
        return key == self.key(digest) and bool(_DIGEST.match(digest))

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


class ClaimCheckCodec(PayloadCodec):
    """Offloads payloads larger than `threshold` bytes to `store`; resolves references found
    in `store` or in any of `readable`.

    `threshold=None` offloads nothing (a decode-only codec). `s3` is a boto3 S3 client, or
    None to make one from `aws` on first use (so a codec that never meets a large payload
    never touches AWS).
    """

    def __init__(
        self,
        store: Store | None,
        threshold: int | None,
        *,
        readable: Iterable[Store] = (),
        aws: AwsSettings | None = None,
        s3: Any = None,
        max_object_bytes: int = MAX_OBJECT_BYTES,
    ) -> None:
        if threshold is not None and store is None:
            raise ValueError("a codec that offloads needs a store")
        self.store = store
        self.threshold = threshold
        self.readable = frozenset([*readable, *([store] if store else [])])
        self.max_object_bytes = max_object_bytes
        self._aws = aws or AwsSettings()
        self._s3 = s3
        self._lock = threading.Lock()

    # -- the codec ----------------------------------------------------------------------------

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [await self._encode_one(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [await self._decode_one(payload) for payload in payloads]

    async def _encode_one(self, payload: Payload) -> Payload:
        if self.threshold is None or payload.ByteSize() <= self.threshold:
            return payload
        assert self.store is not None
        # the whole Payload (metadata and data) is stored, so decoding restores its encoding
        blob = payload.SerializeToString(deterministic=True)
        digest = hashlib.sha256(blob).hexdigest()
        key = self.store.key(digest)
        await asyncio.to_thread(self._put, self.store.bucket, key, blob)
        reference = {"bucket": self.store.bucket, "key": key, "size": len(blob), "sha256": digest}
        return Payload(
            metadata={"encoding": CLAIM_CHECK_ENCODING},
            data=json.dumps(reference, sort_keys=True).encode(),
        )

    async def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != CLAIM_CHECK_ENCODING:
            return payload
        bucket, key, size, digest = self._reference(payload.data)
        blob = await asyncio.to_thread(self._get, bucket, key, size)
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ClaimCheckError(f"offloaded payload s3://{bucket}/{key} does not match its hash")
        return Payload.FromString(blob)

    def _reference(self, data: bytes) -> tuple[str, str, int, str]:
        """bucket, key, size, digest of a reference, checked against the readable stores."""
        if len(data) > MAX_REFERENCE_BYTES:
            raise ClaimCheckError("a claim-check reference larger than a reference can be")
        try:
            reference = json.loads(data)
            bucket, key = str(reference["bucket"]), str(reference["key"])
            size, digest = int(reference["size"]), str(reference["sha256"])
        except (ValueError, TypeError, KeyError) as error:
            raise ClaimCheckError(f"malformed claim-check reference: {error}") from None
        if not any(store.holds(bucket, key) for store in self.readable):
            stores = ", ".join(sorted(store.url for store in self.readable)) or "none"
            raise ClaimCheckError(
                f"claim-check reference s3://{bucket}/{key} is outside the stores this codec "
                f"reads ({stores})"
            )
        if key.rsplit("/", 1)[-1] != digest:
            raise ClaimCheckError(f"claim-check reference s3://{bucket}/{key} names another hash")
        if not 0 <= size <= self.max_object_bytes:
            raise ClaimCheckError(
                f"offloaded payload s3://{bucket}/{key} is {size} bytes, above the "
                f"{self.max_object_bytes} bytes this codec reads"
            )
        return bucket, key, size, digest

    # -- S3 -----------------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._s3 is None:
                self._s3 = s3_client(self._aws)
            return self._s3

    def _put(self, bucket: str, key: str, blob: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client()
        try:
            try:
                client.head_object(Bucket=bucket, Key=key)
                return  # content-addressed: already there from an earlier attempt or run
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
            client.put_object(Bucket=bucket, Key=key, Body=blob)
        except (BotoCoreError, ClientError) as error:
            raise ClaimCheckError(
                f"cannot offload a payload to s3://{bucket}/{key}: {error}"
            ) from None

    def _get(self, bucket: str, key: str, size: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client().get_object(Bucket=bucket, Key=key)
            if int(answer.get("ContentLength", 0)) > self.max_object_bytes:
                raise ClaimCheckError(f"offloaded payload s3://{bucket}/{key} is too large")
            blob: bytes = answer["Body"].read(self.max_object_bytes + 1)
        except (BotoCoreError, ClientError) as error:
            raise ClaimCheckError(
                f"cannot read offloaded payload s3://{bucket}/{key}: {error}"
            ) from None
        if len(blob) != size:
            raise ClaimCheckError(f"offloaded payload s3://{bucket}/{key} has the wrong size")
        return blob


def s3_client(aws: AwsSettings) -> Any:
    """A boto3 S3 client for `spec.aws` (placeholder credentials for a loopback emulator)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "region_name": aws.region,
        "config": Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=60),
    }
    session = boto3.session.Session(region_name=aws.region)
    if aws.endpoint:
        options["endpoint_url"] = aws.endpoint
        if urlparse(aws.endpoint).hostname in _LOOPBACK and session.get_credentials() is None:
            options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
    return session.client("s3", **options)


def converter(codec: PayloadCodec | None) -> DataConverter:
    """Temporal's default data converter with `codec` (or without one)."""
    default = temporalio.converter.default()
    return default if codec is None else dataclasses.replace(default, payload_codec=codec)


# -- public: activity workers of your own --------------------------------------------------------


def claim_check_converter(
    url: str,
    threshold: int | str,
    *,
    region: str = "us-east-1",
    endpoint: str | None = None,
    s3: Any = None,
) -> DataConverter:
    """A data converter for `Client.connect(..., data_converter=...)` that offloads payloads
    above `threshold` (bytes, or a size such as "256KiB") to `url` (`s3://bucket/prefix`, the
    store's binding) and resolves references into it.

    Give it to every client and worker that handles a workflow with `payload.offload`: an
    activity worker without it receives reference payloads it cannot read.
    """
    store = Store.parse(url)
    size = threshold if isinstance(threshold, int) else parse_size(threshold)
    aws = AwsSettings(region=region, endpoint=endpoint)
    return converter(ClaimCheckCodec(store, size, aws=aws, s3=s3))


# -- cpl's own clients and worker -----------------------------------------------------------


def target_converter(
    environment: Environment,
    target: Target,
    workflows: Iterable[Workflow] = (),
    *,
    s3: Any = None,
) -> DataConverter:
    """The data converter of cpl's clients and worker on a Temporal `target`.

    One codec serves every workflow the client or worker handles: it offloads payloads above
    the smallest `payload.offload.threshold` among `workflows` that go to `target` and ask for
    offload, into their store (they must agree on one store: ConfigError otherwise). It reads
    references from every store the environment binds. Without offloading workflows it only
    reads, and without any store binding it is Temporal's default converter.
    """
    readable = _s3_stores(environment)
    offloading = [
        (workflow, workflow.spec.payload.offload)
        for workflow in workflows
        if workflow.spec.payload is not None
        and workflow.spec.payload.offload is not None
        and target.select.matches(workflow)
    ]
    if not offloading and not readable:
        return converter(None)
    store: Store | None = None
    threshold: int | None = None
    names = sorted({offload.store for _, offload in offloading})
    if len(names) > 1:
        users = "; ".join(
            f"{workflow.key} uses '{offload.store}'"
            for workflow, offload in sorted(offloading, key=lambda pair: pair[0].key)
        )
        raise ConfigError(
            f"the workflows of Temporal target '{target.name}' offload payloads to different "
            f"stores ({users}): one payload codec serves every workflow of a target, so they "
            "must name one store (or go to separate targets)"
        )
    if names:
        binding = environment.spec.bindings.stores.get(names[0])
        if binding is None:
            raise ConfigError(
                f"environment '{environment.name}' does not bind store '{names[0]}' (add "
                f"spec.bindings.stores.{names[0]}.url)"
            )
        where = f"spec.bindings.stores.{names[0]}.url of environment '{environment.name}'"
        store = Store.parse(binding.url, where)
        threshold = min(offload.threshold.bytes for _, offload in offloading)
    codec = ClaimCheckCodec(
        store, threshold, readable=readable.values(), aws=environment.spec.aws, s3=s3
    )
    return converter(codec)


def _s3_stores(environment: Environment) -> dict[str, Store]:
    """The environment's S3 stores (a store bound for another engine may be no S3 location)."""
    stores: dict[str, Store] = {}
    for name, binding in environment.spec.bindings.stores.items():
        try:
            stores[name] = Store.parse(binding.url)
        except ConfigError:
            continue
    return stores
