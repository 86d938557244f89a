"""Payload encryption on Temporal: an AES-GCM envelope payload codec (docs/runtime.md,
"Payload encryption").

Every payload of a workflow whose spec sets `security.encryption.key` is encrypted before it
leaves cpl's worker or client: a fresh 256-bit data key per batch of payloads (one encode
call), each payload sealed with AES-GCM under it with a nonce of its own, and the data key
wrapped by the bound key (`keyring`: KMS or a local ring). The encrypted payload carries

    metadata  encoding: binary/cpl-encrypted
              cpl-key: the key binding's value (alias/orders, local:orders, an ARN)
              cpl-key-version: the wrapping key's version (KMS: the key ARN; ring: a number)
              cpl-data-key: the wrapped data key
    data      nonce (12 bytes) + AES-GCM(serialized inner Payload), bound to key and version

so decoding needs nothing but the metadata, and payloads written under an older version
keep decrypting after a rotation. Encryption comes first, offload (the claim-check codec,
`codec.py`) second: an offloaded object holds ciphertext.

Which workflow a payload belongs to comes from Temporal's serialization context (the
workflow id of the run, of the activity's run, of a signal's target): cpl's run ids start
with `<tenant>-<name>` (`cpl run`: `-<hex>`, event triggers: `-<event id>`, schedules:
`-<time>`), and the longest such prefix among the target's workflows names the workflow.
Decoding is keyed by the payload's own metadata, for any key the environment binds.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from controlplane.engines.temporal import codec as offload
from controlplane.engines.temporal.keyring import (
    MAX_WRAPPED_BYTES,
    KeyRef,
    KeySource,
    KeyUnavailable,
    KmsKey,
    LocalKeyring,
    key_source,
    parse_key,
    temporal_keys,
)
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings, Environment, Target
from controlplane.spec.model import Workflow

__all__ = [
    "ENCRYPTED_ENCODING",
    "EncryptionCodec",
    "EncryptionError",
    "encryption_converter",
    "target_converter",
]

ENCRYPTED_ENCODING = b"binary/cpl-encrypted"
META_KEY = "cpl-key"
META_VERSION = "cpl-key-version"
META_DATA_KEY = "cpl-data-key"
NONCE_BYTES = 12
MAX_META_TEXT = 2048
DATA_KEY_CACHE = 1024
"""Unwrapped data keys kept (one KMS Decrypt per batch, not per payload)."""


class EncryptionError(Exception):
    """A payload that cannot be encrypted or decrypted; `key` and `version` name what it
    was (to be) sealed with, never the payload."""

    def __init__(self, message: str, key: str | None = None, version: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.version = version


@dataclass(frozen=True)
class Encrypting:
    """Which key seals the payloads of a run: `every` for all of them, else by the longest
    `<tenant>-<name>` of `by_resource` that begins the run's workflow id (None: in clear)."""

    by_resource: Mapping[str, KeyRef | None] = field(default_factory=dict)
    every: KeyRef | None = None

    def key_for(self, workflow_id: str | None) -> KeyRef | None:
        if self.every is not None:
            return self.every
        if workflow_id is None:
            return None
        best: tuple[int, KeyRef | None] = (-1, None)
        for resource, key in self.by_resource.items():
            if workflow_id == resource or workflow_id.startswith(f"{resource}-"):
                best = max(best, (len(resource), key), key=lambda pair: pair[0])
        return best[1]

    @property
    def any(self) -> bool:
        return self.every is not None or any(self.by_resource.values())


class KeyChain:
    """The key sources a codec uses (by binding value) and the data keys it unwrapped."""

    def __init__(self, sources: Iterable[KeySource]) -> None:
        self.sources = {source.ref.text: source for source in sources}
        self._unwrapped: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def source(self, text: str) -> KeySource:
        found = self.sources.get(text)
        if found is None:
            known = ", ".join(sorted(self.sources)) or "none"
            raise EncryptionError(
                f"payload sealed with key {text!r}, which this codec does not hold (keys: {known})",
                text,
            )
        return found

    def unwrap(self, text: str, version: str, wrapped: bytes) -> bytes:
        entry = (text, version, wrapped)
        with self._lock:
            if entry in self._unwrapped:
                self._unwrapped.move_to_end(entry)
                return self._unwrapped[entry]
        try:
            data_key = self.source(text).unwrap(version, wrapped)
        except KeyUnavailable as error:
            raise EncryptionError(str(error), text, version) from None
        with self._lock:
            self._unwrapped[entry] = data_key
            while len(self._unwrapped) > DATA_KEY_CACHE:
                self._unwrapped.popitem(last=False)
        return data_key


def _aad(key: str, version: str) -> bytes:
    return f"cpl-payload|{key}|{version}".encode()


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Seals the payloads of the runs `encrypting` names, then hands them to `inner` (the
    claim-check codec, or None); decodes in the opposite order. Temporal gives each use a
    copy bound to the run's workflow id (`with_context`)."""

    def __init__(
        self,
        keys: KeyChain,
        encrypting: Encrypting,
        inner: PayloadCodec | None = None,
        workflow_id: str | None = None,
    ) -> None:
        self.keys = keys
        self.encrypting = encrypting
        self.inner = inner
        self.workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        inner = self.inner
        if isinstance(inner, WithSerializationContext):
            inner = inner.with_context(context)
        workflow_id = getattr(context, "workflow_id", None)
        return EncryptionCodec(self.keys, self.encrypting, inner, workflow_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        sealed = list(payloads)
        key = self.encrypting.key_for(self.workflow_id)
        if key is not None and sealed:
            sealed = await asyncio.to_thread(self.seal, key, sealed)
        return await self.inner.encode(sealed) if self.inner is not None else sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = await self.inner.decode(payloads) if self.inner is not None else list(payloads)
        if not any(is_encrypted(payload) for payload in opened):
            return opened
        return await asyncio.to_thread(lambda: [self.open(payload) for payload in opened])

    # -- synchronous halves (blocking: a ring read or a KMS call) -----------------------------

    def seal(self, key: KeyRef, payloads: Sequence[Payload]) -> list[Payload]:
        """`payloads` sealed under one fresh data key of `key`."""
        try:
            data_key, version, wrapped = self.keys.source(key.text).new_data_key()
        except KeyUnavailable as error:
            raise EncryptionError(str(error), key.text) from None
        aead = AESGCM(data_key)
        sealed = []
        for payload in payloads:
            if is_encrypted(payload):  # already sealed (a payload passed through unchanged)
                sealed.append(payload)
                continue
            nonce = os.urandom(NONCE_BYTES)
            plain = payload.SerializeToString(deterministic=True)
            data = nonce + aead.encrypt(nonce, plain, _aad(key.text, version))
            sealed.append(
                Payload(
                    metadata={
                        "encoding": ENCRYPTED_ENCODING,
                        META_KEY: key.text.encode(),
                        META_VERSION: version.encode(),
                        META_DATA_KEY: wrapped,
                    },
                    data=data,
                )
            )
        return sealed

    def open(self, payload: Payload) -> Payload:
        """The payload `payload` seals (itself when it is not sealed); EncryptionError."""
        if not is_encrypted(payload):
            return payload
        key, version = sealed_with(payload)
        wrapped = payload.metadata.get(META_DATA_KEY, b"")
        texts = (payload.metadata.get(META_KEY, b""), payload.metadata.get(META_VERSION, b""))
        if (
            not all(texts)
            or max(map(len, texts)) > MAX_META_TEXT
            or not wrapped
            or len(wrapped) > MAX_WRAPPED_BYTES
        ):
            raise EncryptionError("an encrypted payload with malformed metadata", key, version)
        data_key = self.keys.unwrap(key, version, wrapped)
        data = payload.data
        try:
            plain = AESGCM(data_key).decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(key, version)
            )
            return Payload.FromString(plain)
        except (InvalidTag, ValueError):
            raise EncryptionError(
                "the payload does not decrypt (altered, or sealed with another key)", key, version
            ) from None


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCRYPTED_ENCODING


def sealed_with(payload: Payload) -> tuple[str, str]:
    """(key, version) an encrypted payload names (bounded, never raising)."""
    key = payload.metadata.get(META_KEY, b"")[:MAX_META_TEXT].decode("utf-8", "replace")
    version = payload.metadata.get(META_VERSION, b"")[:MAX_META_TEXT].decode("utf-8", "replace")
    return key, version


# -- cpl's own clients and worker --------------------------------------------------------------


def target_converter(
    environment: Environment,
    target: Target,
    workflows: Iterable[Workflow] = (),
    *,
    repo: Path | None = None,
    s3: Any = None,
    kms: Any = None,
) -> DataConverter:
    """The data converter of cpl's clients and worker on a Temporal `target`: payload
    offload (`codec.target_converter`) and, when the environment binds Temporal keys,
    encryption of the runs of `workflows` (those on `target`) that set
    `security.encryption.key`; every bound key decrypts. `repo` holds the local key rings
    (the current folder when None). ConfigError for a bad or missing key binding."""
    workflows = tuple(workflows)
    base = offload.target_converter(environment, target, workflows, s3=s3)
    keys = temporal_keys(environment)
    by_resource: dict[str, KeyRef | None] = {}
    for workflow in workflows:
        if not target.select.matches(workflow):
            continue
        security = workflow.spec.security
        name = security.encryption.key if security and security.encryption else None
        if name is not None and name not in keys:
            raise ConfigError(
                f"{workflow.key} encrypts its payloads with key '{name}', which environment "
                f"'{environment.name}' does not bind for Temporal (add "
                f"spec.bindings.keys.{name}.temporal)"
            )
        resource = f"{workflow.metadata.tenant}-{workflow.metadata.name}"
        by_resource[resource] = keys[name] if name is not None else None
    if not keys:
        return base
    folder = Path(".") if repo is None else repo
    sources = [key_source(ref, environment, folder, kms) for ref in dict.fromkeys(keys.values())]
    codec = EncryptionCodec(KeyChain(sources), Encrypting(by_resource), base.payload_codec)
    return offload.converter(codec)


# -- public: activity workers of your own ------------------------------------------------------


def encryption_converter(
    key: str,
    *,
    keyring: str | Path | None = None,
    region: str = "us-east-1",
    endpoint: str | None = None,
    workflows: Iterable[str] | None = None,
    offload_converter: DataConverter | None = None,
    kms: Any = None,
) -> DataConverter:
    """A data converter for `Client.connect(..., data_converter=...)` of an activity worker
    serving workflows with `security.encryption.key`: it decrypts what they send and seals
    what it returns.

    `key` is the key binding's value for Temporal (`alias/...`, a KMS ARN or key id, or
    `local:<name>` with `keyring` the ring folder, `.cpl/keys/<environment>` of the control
    repo). KMS is reached in `region` (an ARN's own region wins), through `endpoint` when
    set. `workflows`: the `<tenant>-<name>` of the workflows whose payloads are sealed (None:
    every payload this worker returns). `offload_converter`: a `claim_check_converter(...)` to
    compose with (sealed first, offloaded second).
    """
    ref = parse_key(key, "the key")
    source: KeySource
    if ref.kind == "local":
        if keyring is None:
            raise ConfigError(f"key {key}: a local key ring needs `keyring`, its folder")
        source = LocalKeyring(ref, Path(keyring))
    else:
        source = KmsKey(ref, AwsSettings(region=region, endpoint=endpoint), kms)
    encrypting = (
        Encrypting(every=ref) if workflows is None else Encrypting(dict.fromkeys(workflows, ref))
    )
    inner = offload_converter.payload_codec if offload_converter is not None else None
    return offload.converter(EncryptionCodec(KeyChain([source]), encrypting, inner))
