"""`cpl keys rotate|verify`: the keys of payload encryption on Temporal, audited
(docs/runtime.md, "Payload encryption").

Rotating adds a key version that seals every new payload; the old versions keep opening
what they sealed:

- a local key ring (`local:<name>`) gets a new version in its file;
- a KMS alias (`alias/<name>` or an alias ARN) is moved to a new KMS key, made for it; the
  old key is left as it is (KMS's own yearly rotation keeps the key id, so a payload could
  not say which version sealed it: a new key can). A binding to a key id or key ARN cannot
  be rotated by cpl: bind an alias.

Verifying reads the runs of a target's namespace (open runs and closed runs still kept,
newest first, at most `max_runs`, each history up to `max_events` events), opens every
encrypted payload (offloaded ones too) and reports each that does not open, by run, event,
key and version, never with its content.

Audit events: `dev.cpl.keys.rotated` (one per key: `{"key", "binding", "kind", "previous",
"version"}`), `dev.cpl.keys.verified` (`{"targets", "runs", "payloads", "failures",
"capped"}`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.service import RPCError

from controlplane.audit import Auditor
from controlplane.engines.temporal.codec import CLAIM_CHECK_ENCODING, ClaimCheckError
from controlplane.engines.temporal.encryption import (
    EncryptionCodec,
    EncryptionError,
    is_encrypted,
    sealed_with,
    target_converter,
)
from controlplane.engines.temporal.keyring import (
    KeyRef,
    KeyUnavailable,
    LocalKeyring,
    keyring_dir,
    kms_client,
    temporal_keys,
)
from controlplane.engines.timeouts import Timeouts
from controlplane.errors import ConfigError, EngineError
from controlplane.spec.environment import AwsSettings, Environment, Target

KEYS_ROTATED: Final = "dev.cpl.keys.rotated"
KEYS_VERIFIED: Final = "dev.cpl.keys.verified"

MAX_RUNS = 200
"""Runs `cpl keys verify` reads per target unless told otherwise."""
MAX_EVENTS = 10_000
"""Events read from one run's history unless told otherwise."""


# -- rotate -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """One rotated key: its binding name, the binding's value, and the versions."""

    key: str
    binding: str
    kind: str
    previous: str | None
    version: str


def rotate(
    repo: Path,
    environment: Environment,
    auditor: Auditor,
    key_name: str | None = None,
    *,
    kms: Any = None,
) -> list[Rotation]:
    """Add a version to each Temporal key of the environment (or to `key_name`'s), audited.

    ConfigError for an unknown key, a key without a Temporal binding, a bad binding, a local
    ring on a production environment, or a KMS key bound without an alias."""
    keys = temporal_keys(environment)
    if key_name is not None:
        if key_name not in environment.spec.bindings.keys:
            known = ", ".join(sorted(environment.spec.bindings.keys)) or "none"
            raise ConfigError(
                f"environment '{environment.name}' binds no key '{key_name}' (keys: {known})"
            )
        if key_name not in keys:
            raise ConfigError(
                f"key '{key_name}' of environment '{environment.name}' has no Temporal binding "
                f"(spec.bindings.keys.{key_name}.temporal): cpl rotates Temporal payload keys"
            )
        keys = {key_name: keys[key_name]}
    if not keys:
        raise ConfigError(f"environment '{environment.name}' binds no Temporal payload key")
    for name, ref in keys.items():
        if ref.kind == "kms" and not ref.is_alias:
            raise ConfigError(
                f"spec.bindings.keys.{name}.temporal of environment '{environment.name}' is "
                f"the KMS key {ref.name}: cpl rotates a key by moving its alias to a new KMS "
                "key, so bind an alias (alias/<name> or an alias ARN)"
            )
    rotations: list[Rotation] = []
    done: dict[KeyRef, Rotation] = {}
    for name, ref in keys.items():
        if ref in done:  # two names bound to one key: rotated once
            rotations.append(replace(done[ref], key=name))
            continue
        try:
            if ref.kind == "local":
                previous, number = LocalKeyring(ref, keyring_dir(repo, environment)).rotate()
                old, new = (str(previous) if previous else None), str(number)
            else:
                old, new = _rotate_alias(ref, environment, kms)
        except KeyUnavailable as error:
            raise EngineError(f"cannot rotate key '{name}': {error}") from None
        rotation = Rotation(name, ref.text, ref.kind, old, new)
        done[ref] = rotation
        rotations.append(rotation)
        auditor.emit(KEYS_ROTATED, None, asdict(rotation))
    return rotations


def _rotate_alias(ref: KeyRef, environment: Environment, kms: Any) -> tuple[str | None, str]:
    """Move the alias to a new KMS key (made here); (the old key's ARN, the new one's)."""
    from botocore.exceptions import BotoCoreError, ClientError

    alias = ref.name[ref.name.index("alias/") :]
    client = kms or kms_client(environment.spec.aws or AwsSettings(), ref.region)
    try:
        try:
            previous: str | None = client.describe_key(KeyId=ref.name)["KeyMetadata"]["Arn"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            previous = None  # the first rotation makes the alias
        made = client.create_key(
            Description=f"cpl payload key {alias} of environment {environment.name}",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
        )["KeyMetadata"]
        if previous is None:
            client.create_alias(AliasName=alias, TargetKeyId=made["KeyId"])
        else:
            client.update_alias(AliasName=alias, TargetKeyId=made["KeyId"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Error")
        raise EngineError(f"KMS refused to rotate {ref.name}: {code}") from None
    except BotoCoreError as error:
        raise EngineError(f"cannot reach KMS to rotate {ref.name}: {error}") from None
    return previous, str(made["Arn"])


# -- verify -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """An encrypted payload that does not open (never its content)."""

    target: str
    workflowId: str
    runId: str
    eventId: int
    eventType: str
    key: str | None
    version: str | None
    reason: str


@dataclass
class Verification:
    environment: str
    targets: list[str] = field(default_factory=list)
    runs: int = 0
    events: int = 0
    payloads: int = 0
    """Encrypted payloads read (offloaded ones included)."""
    failures: list[Failure] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    """What the limits left unread, said in words (empty: everything was read)."""

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["ok"] = not self.failures
        return document


def verify(
    repo: Path,
    environment: Environment,
    auditor: Auditor,
    targets: Sequence[Target],
    *,
    max_runs: int = MAX_RUNS,
    max_events: int = MAX_EVENTS,
    kms: Any = None,
    s3: Any = None,
) -> Verification:
    """Open every encrypted payload of the runs of `targets` (Temporal), audited."""
    result = Verification(environment.name)
    namespaces: set[tuple[str | None, str | None]] = set()
    for target in targets:
        result.targets.append(target.name)
        if (target.address, target.namespace) in namespaces:
            continue  # two targets on one namespace: its runs are read once
        namespaces.add((target.address, target.namespace))
        converter = target_converter(environment, target, (), repo=repo, kms=kms, s3=s3)
        asyncio.run(_verify_target(target, converter.payload_codec, result, max_runs, max_events))
    auditor.emit(
        KEYS_VERIFIED,
        None,
        {
            "targets": result.targets,
            "runs": result.runs,
            "payloads": result.payloads,
            "failures": len(result.failures),
            "capped": bool(result.capped),
        },
    )
    return result


async def _verify_target(
    target: Target, codec: Any, result: Verification, max_runs: int, max_events: int
) -> None:
    from controlplane.engines.temporal.runner import connect

    assert target.address and target.namespace
    # no codec on this client: the history as the server keeps it
    client = await connect(target.address, target.namespace, Timeouts.of(target).connect)
    read = 0
    try:
        async for execution in client.list_workflows(limit=max_runs + 1):
            if read == max_runs:
                result.capped.append(
                    f"target {target.name}: only the newest {max_runs} runs were read"
                )
                break
            read += 1
            result.runs += 1
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            count = 0
            async for event in handle.fetch_history_events():
                if count == max_events:
                    result.capped.append(
                        f"run {execution.id}/{execution.run_id}: only its first {max_events} "
                        "events were read"
                    )
                    break
                count += 1
                result.events += 1
                for payload in payloads_in(event):
                    failure = await _open(codec, payload, result)
                    if failure is not None:
                        key, version, reason = failure
                        result.failures.append(
                            Failure(
                                target.name,
                                execution.id,
                                execution.run_id,
                                event.event_id,
                                _event_type(event),
                                key,
                                version,
                                reason,
                            )
                        )
    except RPCError as error:
        raise EngineError(
            f"cannot read the runs of namespace {target.namespace} at {target.address}: "
            f"{error.message}"
        ) from None


async def _open(
    codec: Any, payload: Payload, result: Verification
) -> tuple[str | None, str | None, str] | None:
    """(key, version, reason) when an encrypted payload does not open; None otherwise."""
    offloaded = payload.metadata.get("encoding") == CLAIM_CHECK_ENCODING
    if not offloaded and not is_encrypted(payload):
        return None
    if not isinstance(codec, EncryptionCodec):
        if is_encrypted(payload):
            result.payloads += 1
            key, version = sealed_with(payload)
            return key, version, "the environment binds no Temporal payload key to open it"
        return None
    try:
        if offloaded:
            [payload] = await codec.inner.decode([payload]) if codec.inner else [payload]
        if not is_encrypted(payload):
            return None
        result.payloads += 1
        await asyncio.to_thread(codec.open, payload)
    except EncryptionError as error:
        return error.key, error.version, str(error)
    except ClaimCheckError as error:
        return None, None, str(error)
    return None


def _event_type(event: Any) -> str:
    from temporalio.api.enums.v1 import EventType

    return str(EventType.Name(event.event_type)).removeprefix("EVENT_TYPE_")


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload inside a protobuf message (fields, lists and maps, any depth)."""
    if message.DESCRIPTOR.full_name == Payload.DESCRIPTOR.full_name:
        yield message  # type: ignore[misc]
        return
    for descriptor, value in message.ListFields():
        kind = descriptor.message_type
        if descriptor.type != descriptor.TYPE_MESSAGE or kind is None:
            continue
        if kind.GetOptions().map_entry:
            item = kind.fields_by_name["value"]
            if item.type == item.TYPE_MESSAGE:
                for entry in value.values():
                    yield from payloads_in(entry)
        elif descriptor.is_repeated:
            for entry in value:
                yield from payloads_in(entry)
        else:
            yield from payloads_in(value)
