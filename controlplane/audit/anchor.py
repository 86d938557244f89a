"""Signed checkpoints of an audit log's head, kept outside the log (docs/security.md,
"Anchored head").

A hash chain shows that no line was edited, inserted or moved, but not that lines were cut
from its end. So after every append the file sink writes a checkpoint, `{log, lines, head,
time}` signed with an Ed25519 key, to a second place: a directory (by default
`.cpl/anchors/`, apart from the logs) or an S3 prefix. `cpl audit verify` then fails a log
shorter than its checkpoint, or whose line `lines` is not the checkpoint's `head`.

The signature is what makes a checkpoint evidence: someone who cuts the log must also write
a checkpoint that verifies. The private key is `CPL_AUDIT_ANCHOR_KEY` (a PEM file, e.g. a CI
secret) or else `.cpl/keys/audit-anchor.pem`, created on first use; verify checks against
the environment's `audit.anchor.publicKey` (a PEM file committed in the repo) when set, else
the public half of the local key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.audit.chain import line_hash
from controlplane.audit.events import AuditError
from controlplane.audit.verify import VerifyResult
from controlplane.files import write_atomic, write_private

if TYPE_CHECKING:
    from controlplane.spec.environment import AuditAnchor, AwsSettings

KEY_ENV: Final = "CPL_AUDIT_ANCHOR_KEY"
CHECKPOINT_SUFFIX: Final = ".checkpoint.json"
DEFAULT_DIRECTORY: Final = ".cpl/anchors"
S3_TIMEOUT: Final = 5.0  # seconds to connect, and to wait for an answer
_MAX_CHECKPOINT = 64 * 1024  # bytes: a checkpoint is a few hundred; more is not one of ours


@dataclass(frozen=True)
class Checkpoint:
    """The head of one log after `lines` lines, as signed."""

    log: str  # the log's file name
    lines: int
    head: str  # the hash of line `lines` (what line `lines` + 1 chains to)
    time: str
    key_id: str
    signature: str = ""

    def body(self) -> bytes:
        """The signed bytes: canonical JSON of everything but the signature."""
        document = {
            "log": self.log,
            "lines": self.lines,
            "head": self.head,
            "time": self.time,
            "keyId": self.key_id,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return {**json.loads(self.body()), "signature": self.signature}

    @classmethod
    def parse(cls, raw: bytes, where: str) -> Checkpoint:
        if len(raw) > _MAX_CHECKPOINT:
            raise AuditError(f"{where}: not a checkpoint (larger than {_MAX_CHECKPOINT} bytes)")
        try:
            document = json.loads(raw)
            return cls(
                log=str(document["log"]),
                lines=int(document["lines"]),
                head=str(document["head"]),
                time=str(document["time"]),
                key_id=str(document["keyId"]),
                signature=str(document["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{where}: not a checkpoint ({exc.__class__.__name__})") from None


class AnchorPlace(Protocol):
    """Where checkpoints are kept: one object per log, overwritten on every append."""

    def describe(self, log: str) -> str: ...

    def read(self, log: str) -> bytes | None: ...

    def write(self, log: str, data: bytes) -> None: ...


class DirectoryPlace:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, log: str) -> Path:
        return self.directory / f"{log}{CHECKPOINT_SUFFIX}"

    def describe(self, log: str) -> str:
        return str(self._path(log))

    def read(self, log: str) -> bytes | None:
        try:
            with self._path(log).open("rb") as handle:
                return handle.read(_MAX_CHECKPOINT + 1)
        except FileNotFoundError:
            return None

    def write(self, log: str, data: bytes) -> None:
        write_atomic(self._path(log), data.decode())


class S3Place:
    """Checkpoints as objects `<prefix>/<log>.checkpoint.json` (a versioned bucket keeps each)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, log: str) -> str:
        name = f"{log}{CHECKPOINT_SUFFIX}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, log: str) -> str:
        return f"s3://{self.bucket}/{self._key(log)}"

    def read(self, log: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(log))
        except Exception as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = answer["Body"].read(_MAX_CHECKPOINT + 1)
        return body

    def write(self, log: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(log), Body=data, ContentType="application/json"
        )


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code"))
    return None


# -- keys -------------------------------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def local_key_path(repo: Path) -> Path:
    return repo / ".cpl" / "keys" / "audit-anchor.pem"


def signing_key(repo: Path) -> Ed25519PrivateKey:
    """`CPL_AUDIT_ANCHOR_KEY`'s key, else the repo's local key (created on first use)."""
    configured = os.environ.get(KEY_ENV)
    path = Path(configured) if configured else local_key_path(repo)
    if not path.exists():
        if configured:
            raise AuditError(f"{KEY_ENV} names {path}, which does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            write_private(path, pem)
        except FileExistsError:  # another process is creating it: use theirs
            pass
        else:
            return key
    return _load_private(path)


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise AuditError(
            f"{path}: not a readable PEM private key ({exc.__class__.__name__})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: the audit anchor key must be an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError, OSError) as exc:
        raise AuditError(
            f"{path}: not a readable PEM public key ({exc.__class__.__name__})"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: the audit anchor public key must be an Ed25519 key")
    return key


# -- writing and checking ----------------------------------------------------------------------


class Anchor:
    """Writes and checks the checkpoints of the logs of one environment."""

    def __init__(
        self,
        place: AnchorPlace,
        repo: Path,
        public_key: Path | None = None,
        required: bool = False,
    ) -> None:
        self.place = place
        self.repo = repo
        self.public_key = public_key
        self.required = required  # configured explicitly: a missing checkpoint is a failure

    def record(self, log: Path, prevhash: str, head: str, count_lines: Any) -> None:
        """Sign and store the head after an append; `count_lines()` counts the log's lines
        when the last checkpoint does not continue into this append (first use, a crash)."""
        previous = self._read(log.name)
        lines = previous.lines + 1 if previous and previous.head == prevhash else count_lines()
        key = signing_key(self.repo)
        checkpoint = Checkpoint(
            log=log.name,
            lines=lines,
            head=head,
            time=dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            key_id=key_id(key.public_key()),
        )
        signature = base64.b64encode(key.sign(checkpoint.body())).decode()
        signed = Checkpoint(**{**checkpoint.__dict__, "signature": signature})
        self.place.write(log.name, json.dumps(signed.to_json(), indent=2).encode() + b"\n")

    def _read(self, log: str) -> Checkpoint | None:
        raw = self.place.read(log)
        return Checkpoint.parse(raw, self.place.describe(log)) if raw is not None else None

    def check(self, result: VerifyResult) -> VerifyResult:
        """`result`, failed when its chain is good but the log is shorter than its signed
        checkpoint or differs from it (module doc)."""
        if not result.ok:
            return result
        where = self.place.describe(result.path.name)
        try:
            checkpoint = self._read(result.path.name)
        except AuditError as exc:
            return _failed(result, result.lines + 1, exc.message)
        except Exception as exc:  # the second place is away: say so, never pass silently
            return _failed(result, result.lines + 1, f"{where}: cannot read the checkpoint ({exc})")
        if checkpoint is None:
            if self.required and result.lines:
                return _failed(result, result.lines + 1, f"{where}: no checkpoint for this log")
            return result
        problem = self._signature_problem(checkpoint)
        if problem:
            return _failed(result, 1, f"{where}: {problem}")
        if result.lines < checkpoint.lines:
            return _failed(
                result,
                result.lines + 1,
                f"the log has {result.lines} lines but its checkpoint of {checkpoint.time} "
                f"({where}) records {checkpoint.lines}: lines were cut from the end",
            )
        if _hash_of_line(result.path, checkpoint.lines) != checkpoint.head:
            return _failed(
                result,
                checkpoint.lines,
                f"line {checkpoint.lines} is not the one its checkpoint of {checkpoint.time} "
                f"({where}) signed: the log was rewritten",
            )
        return result

    def _signature_problem(self, checkpoint: Checkpoint) -> str | None:
        try:
            public = (
                load_public(self.public_key)
                if self.public_key is not None
                else _local_public(self.repo)
            )
        except AuditError as exc:
            return exc.message
        if public is None:
            return "no public key to check the checkpoint with (set audit.anchor.publicKey)"
        if key_id(public) != checkpoint.key_id:
            return f"the checkpoint is signed by {checkpoint.key_id}, not by {key_id(public)}"
        try:
            public.verify(base64.b64decode(checkpoint.signature), checkpoint.body())
        except (InvalidSignature, ValueError):
            return "the checkpoint's signature does not verify: it was forged or edited"
        return None


def _local_public(repo: Path) -> Ed25519PublicKey | None:
    configured = os.environ.get(KEY_ENV)
    path = Path(configured) if configured else local_key_path(repo)
    if not path.exists():
        return None
    return _load_private(path).public_key()


def _failed(result: VerifyResult, line: int, reason: str) -> VerifyResult:
    return VerifyResult(
        path=result.path,
        ok=False,
        lines=result.lines,
        first_bad_line=line,
        reason=reason,
        head=result.head,
    )


def _hash_of_line(path: Path, number: int) -> str | None:
    """The hash of line `number` (1-based), read as a stream."""
    with path.open("rb") as handle:
        for index, line in enumerate(handle, start=1):
            if index == number:
                return line_hash(line)
    return None


def anchor_for(repo: Path, settings: AuditAnchor | None, aws: AwsSettings | None) -> Anchor:
    """The anchor of an environment's `audit.anchor` (by default `.cpl/anchors/`)."""
    if settings is None:
        return Anchor(DirectoryPlace(repo / DEFAULT_DIRECTORY), repo)
    public_key = repo / settings.public_key if settings.public_key else None
    place: AnchorPlace
    if settings.s3 is not None:
        from controlplane.audit.s3store import s3_client
        from controlplane.spec.environment import Sink

        bucket, _, prefix = settings.s3.removeprefix("s3://").partition("/")
        sink = Sink(s3=settings.s3, region=settings.region, endpoint=settings.endpoint)
        place = S3Place(s3_client(sink, aws, S3_TIMEOUT), bucket, prefix)
    else:
        place = DirectoryPlace(repo / (settings.directory or DEFAULT_DIRECTORY))
    return Anchor(place, repo, public_key, required=True)
