"""Where the data keys of payload encryption come from: a key binding's value, named `KeyRef`,
and its two sources, AWS KMS and the local key ring (docs/runtime.md, "Payload encryption").

A Temporal key binding (`bindings.keys.<name>.temporal`) names one of:

- a KMS key: `alias/<name>`, an alias or key ARN (`arn:aws:kms:<region>:<account>:alias/...`
  or `...:key/<id>`), or a key id. A data key is `GenerateDataKey` under it and unwrapped by
  `Decrypt`; the version of a data key is the ARN of the KMS key that wrapped it (an alias
  moved by `cpl keys rotate` still decrypts what the old key wrapped).
- `local:<name>`: a key ring of the control repo, `.cpl/keys/<environment>/<name>.json`,
  for development only (refused on production environments). Its versions are 256-bit
  keys; a data key is wrapped with AES-GCM under the newest one.

Key material never leaves these objects: no message, repr or report contains it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controlplane.errors import ConfigError
from controlplane.files import fsync_directory, write_private
from controlplane.spec.environment import AwsSettings, Environment

__all__ = [
    "KeyRef",
    "KeySource",
    "KeyUnavailable",
    "KmsKey",
    "LocalKeyring",
    "key_source",
    "keyring_dir",
    "parse_key",
]

DATA_KEY_BYTES = 32
MAX_WRAPPED_BYTES = 1024
"""A wrapped data key is ~60 bytes (ring) or ~180 bytes (KMS); anything larger is not ours."""
MAX_RING_BYTES = 1024 * 1024
MAX_RING_VERSIONS = 1000

_RING_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KMS_ARN = re.compile(
    r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(alias/[A-Za-z0-9/_-]+|key/[\w-]+)$"
)
_KMS_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]{1,250}$")
_KMS_KEY_ID = re.compile(
    r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class KeyUnavailable(Exception):
    """A data key that cannot be made or unwrapped (unknown version, KMS refused, ring
    unreadable). The message names the key and version, never key material."""


@dataclass(frozen=True)
class KeyRef:
    """A key binding's value: `kind` local (a ring of the repo) or kms, and its name."""

    kind: Literal["local", "kms"]
    name: str

    @property
    def text(self) -> str:
        """The binding's value, as payload metadata records it."""
        return f"local:{self.name}" if self.kind == "local" else self.name

    @property
    def is_alias(self) -> bool:
        return self.kind == "kms" and ("alias/" in self.name)

    @property
    def region(self) -> str | None:
        """The region of an ARN (a bare alias or key id is in `spec.aws.region`)."""
        match = _KMS_ARN.match(self.name)
        return match.group(1) if match else None


def parse_key(value: str, where: str) -> KeyRef:
    """A binding value → KeyRef; ConfigError naming `where` (the binding) otherwise."""
    if value.startswith("local:"):
        name = value.removeprefix("local:")
        if _RING_NAME.match(name):
            return KeyRef("local", name)
        raise ConfigError(
            f"{where} is '{value}': a local key ring is named local:<name> (lowercase letters, "
            "digits, '-' and '_')"
        )
    if _KMS_ARN.match(value) or _KMS_ALIAS.match(value) or _KMS_KEY_ID.match(value):
        return KeyRef("kms", value)
    raise ConfigError(
        f"{where} is '{value}': a Temporal payload key is a KMS key (alias/<name>, a KMS "
        "alias or key ARN, or a key id) or a local key ring (local:<name>, development only)"
    )


class KeySource(Protocol):
    """Makes fresh data keys under a key and unwraps the ones it made."""

    ref: KeyRef

    def new_data_key(self) -> tuple[bytes, str, bytes]:
        """(data key, version, wrapped data key)."""
        ...

    def unwrap(self, version: str, wrapped: bytes) -> bytes:
        """The data key `wrapped` under `version`; KeyUnavailable when it cannot be unwrapped."""
        ...


# -- the local key ring -----------------------------------------------------------------------


def keyring_dir(repo: Path, environment: Environment) -> Path:
    """The folder of an environment's local key rings in the control repo."""
    return repo / ".cpl" / "keys" / environment.name


class LocalKeyring:
    """A ring file `<folder>/<name>.json`: `{"name", "versions": [{"version", "created",
    "key"}]}`, the keys base64, the file readable by its owner only. The newest version
    wraps new data keys; every version in the ring unwraps."""

    def __init__(self, ref: KeyRef, folder: Path) -> None:
        self.ref = ref
        self.path = folder / f"{ref.name}.json"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._versions: dict[int, bytes] = {}

    # -- reading ---------------------------------------------------------------------------

    def versions(self) -> dict[int, bytes]:
        """version → key, re-read when the file changed (a rotation by another process)."""
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._versions = None, {}
                return {}
            except OSError as error:
                reason = error.strerror
                raise KeyUnavailable(f"cannot read key ring {self.ref.text}: {reason}") from None
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._versions = self._read(stat.st_size)
                self._stamp = stamp
            return dict(self._versions)

    def _read(self, size: int) -> dict[int, bytes]:
        if size > MAX_RING_BYTES:
            raise KeyUnavailable(f"key ring {self.ref.text} is larger than a key ring can be")
        try:
            document = json.loads(self.path.read_bytes())
            versions = {
                int(item["version"]): base64.b64decode(item["key"], validate=True)
                for item in document["versions"][:MAX_RING_VERSIONS]
            }
        except (OSError, ValueError, TypeError, KeyError) as error:
            reason = type(error).__name__  # never the file's content
            raise KeyUnavailable(f"key ring {self.ref.text} is unreadable ({reason})") from None
        if any(len(key) != DATA_KEY_BYTES for key in versions.values()):
            raise KeyUnavailable(f"key ring {self.ref.text} holds a key that is not 256 bits")
        return versions

    def newest(self) -> int | None:
        versions = self.versions()
        return max(versions) if versions else None

    # -- writing ---------------------------------------------------------------------------

    def rotate(self) -> tuple[int | None, int]:
        """Add a version (the first makes the ring); (previous newest, new version)."""
        versions = self.versions()
        previous = max(versions) if versions else None
        version = (previous or 0) + 1
        document = self._document()
        document["versions"].append(
            {
                "version": version,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "key": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode(),
            }
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        write_private(self.path, json.dumps(document, indent=2).encode())
        return previous, version

    def _document(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"name": self.ref.name, "versions": []}
        self.versions()  # checks the file first
        document: dict[str, Any] = json.loads(self.path.read_bytes())
        return document

    # -- data keys -------------------------------------------------------------------------

    def create_if_absent(self) -> bool:
        """Make the ring with its first version unless it exists: True when this call made it.

        The file is linked into place, which fails when another process made it first, so
        every process wraps with the same first key (a rename would let the last one win)."""
        if self.path.exists():
            return False
        document = {
            "name": self.ref.name,
            "versions": [
                {
                    "version": 1,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "key": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode(),
                }
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(json.dumps(document, indent=2).encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, self.path)
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(self.path.parent)
        return True

    def new_data_key(self) -> tuple[bytes, str, bytes]:
        versions = self.versions()
        if not versions:
            # A local ring (development only) is made on first use, like `cpl keys rotate`
            # would make it; an existing but empty ring is not silently refilled.
            if not self.create_if_absent() and not self.path.exists():
                raise KeyUnavailable(f"key ring {self.ref.text} could not be created")
            versions = self.versions()
            if not versions:
                raise KeyUnavailable(
                    f"key ring {self.ref.text} has no key (add one: cpl keys rotate --env ENV)"
                )
        version = max(versions)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = nonce + AESGCM(versions[version]).encrypt(nonce, data_key, self._aad(version))
        return data_key, str(version), wrapped

    def unwrap(self, version: str, wrapped: bytes) -> bytes:
        try:
            number = int(version)
        except ValueError:
            raise KeyUnavailable(f"key {self.ref.text} has no version '{version[:40]}'") from None
        key = self.versions().get(number)
        if key is None:
            raise KeyUnavailable(f"key version {number} is not in key ring {self.ref.text}")
        from cryptography.exceptions import InvalidTag

        try:
            return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], self._aad(number))
        except (InvalidTag, ValueError):
            raise KeyUnavailable(
                f"the data key does not unwrap under {self.ref.text} version {number}"
            ) from None

    def _aad(self, version: int) -> bytes:
        return f"cpl-data-key|{self.ref.text}|{version}".encode()


# -- AWS KMS ------------------------------------------------------------------------------------


class KmsKey:
    """A KMS key (by id, alias or ARN) in `aws` (its region, or an ARN's)."""

    def __init__(self, ref: KeyRef, aws: AwsSettings, kms: Any = None) -> None:
        self.ref = ref
        self.aws = aws
        self._kms = kms
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._kms is None:
                self._kms = kms_client(self.aws, self.ref.region)
            return self._kms

    def new_data_key(self) -> tuple[bytes, str, bytes]:
        answer = self._call("GenerateDataKey", KeyId=self.ref.name, KeySpec="AES_256")
        data_key, wrapped, key_arn = answer["Plaintext"], answer["CiphertextBlob"], answer["KeyId"]
        if len(data_key) != DATA_KEY_BYTES or len(wrapped) > MAX_WRAPPED_BYTES:
            raise KeyUnavailable(f"KMS key {self.ref.text} answered with an unexpected data key")
        return data_key, str(key_arn), wrapped

    def unwrap(self, version: str, wrapped: bytes) -> bytes:
        # the version is the wrapping key's ARN: Decrypt refuses a blob of another key
        answer = self._call("Decrypt", CiphertextBlob=wrapped, KeyId=version)
        data_key: bytes = answer["Plaintext"]
        if len(data_key) != DATA_KEY_BYTES:
            raise KeyUnavailable(f"KMS key {version} answered with an unexpected data key")
        return data_key

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        method = {"GenerateDataKey": "generate_data_key", "Decrypt": "decrypt"}[operation]
        try:
            return getattr(self.client(), method)(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Error")
            key = arguments.get("KeyId", self.ref.name)
            raise KeyUnavailable(f"KMS {operation} with key {key} refused: {code}") from None
        except BotoCoreError as error:
            where = self.ref.text
            raise KeyUnavailable(f"KMS {operation} with key {where} failed: {error}") from None


def kms_client(aws: AwsSettings, region: str | None = None) -> Any:
    """A boto3 KMS client for `spec.aws` (placeholder credentials for a loopback emulator)."""
    import boto3
    from botocore.config import Config

    region = region or aws.region
    options: dict[str, Any] = {
        "region_name": region,
        "config": Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30),
    }
    session = boto3.session.Session(region_name=region)
    if aws.endpoint:
        options["endpoint_url"] = aws.endpoint
        if urlparse(aws.endpoint).hostname in _LOOPBACK and session.get_credentials() is None:
            options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
    return session.client("kms", **options)


# -- an environment's keys ------------------------------------------------------------------------


def temporal_keys(environment: Environment) -> dict[str, KeyRef]:
    """binding name → KeyRef of every key the environment binds for Temporal (ConfigError
    naming the binding of a bad value, or of a local ring on a production environment)."""
    keys: dict[str, KeyRef] = {}
    for name, binding in sorted(environment.spec.bindings.keys.items()):
        value = binding.get("temporal")
        if value is None:
            continue
        where = f"spec.bindings.keys.{name}.temporal of environment '{environment.name}'"
        ref = parse_key(value, where)
        if ref.kind == "local" and environment.tier == "production":
            raise ConfigError(
                f"{where} is '{value}': a local key ring is for development; a production "
                "environment needs a KMS key (alias/<name> or a KMS ARN)"
            )
        keys[name] = ref
    return keys


def key_source(ref: KeyRef, environment: Environment, repo: Path, kms: Any = None) -> KeySource:
    """The source of `ref`'s data keys in `environment` (its ring folder under `repo`)."""
    if ref.kind == "local":
        return LocalKeyring(ref, keyring_dir(repo, environment))
    return KmsKey(ref, environment.spec.aws or AwsSettings(), kms)
