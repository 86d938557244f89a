"""Just-in-time grants (`cpl access`): a role for one workflow (or the whole environment,
`*`), for at most the workflow's `access.admin.jit.maxDuration`, requested by one principal
and approved by another, kept with the deploy state (docs/security.md, "Just-in-time access").

Each grant is one JSON document next to the state (`<state dir>/grants/<id>.json`, or
`<prefix>/<env>.cpl-grants/<id>.json` in S3), signed with HMAC-SHA256 under a key kept in
the same place (`signing-key`, created on first use, owner-only on disk). A document whose
signature does not verify is not a grant: whoever can write the deploy state can change the
deployment itself, so the signature guards against edits by hand and copies from elsewhere
(the key is per state), not against the state's owners.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from controlplane.deploy.stores import StateBackend, open_store
from controlplane.deploy.stores.local import LocalStore
from controlplane.errors import ConfigError
from controlplane.files import write_atomic, write_private
from controlplane.spec.environment import Environment

GRANTS_DIRECTORY = "grants"
KEY_NAME = "signing-key"
MAX_GRANT_BYTES = 64 * 1024
GRANT_ID = re.compile(r"^g-[0-9a-f]{12}$")

GrantState = Literal["requested", "active", "expired", "revoked"]


@dataclass(frozen=True)
class Grant:
    """One grant; times are RFC 3339 UTC, `expires` is set when it is approved."""

    id: str
    environment: str
    role: str
    workflow: str
    seconds: float
    reason: str
    requester: str
    requested: str
    approver: str | None = None
    approved: str | None = None
    expires: str | None = None
    revoked: str | None = None
    revoker: str | None = None
    signature: str = ""

    def state(self, now: dt.datetime) -> GrantState:
        if self.revoked is not None:
            return "revoked"
        if self.expires is None:
            return "requested"
        return "active" if now < dt.datetime.fromisoformat(self.expires) else "expired"

    def expires_at(self) -> float:
        return dt.datetime.fromisoformat(self.expires).timestamp() if self.expires else 0.0

    def body(self) -> dict[str, Any]:
        """Every field but the signature: what is signed."""
        document = asdict(self)
        document.pop("signature")
        return document

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        document = self.body()
        document["state"] = self.state(now)
        return document


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


class GrantStore:
    """The grants of one environment, where its deploy state is."""

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self._key: bytes | None = None

    @classmethod
    def for_environment(cls, environment: Environment, repo: Path) -> GrantStore:
        return cls(open_store(environment, repo))

    # -- signing -----------------------------------------------------------------------

    def _signing_key(self) -> bytes:
        if self._key is None:
            text = self._read(KEY_NAME)
            if text is None:
                self._write(KEY_NAME, base64.b64encode(secrets.token_bytes(32)).decode(), True)
                text = self._read(KEY_NAME)
            try:
                self._key = base64.b64decode((text or "").strip(), validate=True)
            except ValueError:
                raise ConfigError(f"the grant signing key in {self.location} is corrupt") from None
        return self._key

    def sign(self, grant: Grant) -> Grant:
        digest = hmac.new(self._signing_key(), _canonical(grant.body()), hashlib.sha256)
        return replace(grant, signature=digest.hexdigest())

    def _signed(self, grant: Grant) -> bool:
        expected = self.sign(grant).signature
        return hmac.compare_digest(expected, grant.signature)

    # -- grants ------------------------------------------------------------------------

    def save(self, grant: Grant) -> Grant:
        signed = self.sign(grant)
        self._write(f"{grant.id}.json", json.dumps(asdict(signed), indent=2) + "\n", False)
        return signed

    def get(self, grant_id: str) -> Grant:
        if not GRANT_ID.match(grant_id):
            raise ConfigError(f"'{grant_id}' is not a grant id (g- and 12 hex digits)")
        grant = self._parse(grant_id, self._read(f"{grant_id}.json"))
        if grant is None:
            raise ConfigError(f"no grant {grant_id} in {self.location}")
        return grant

    def all(self) -> list[Grant]:
        """Every grant whose signature verifies, oldest first (others are skipped)."""
        found = [self._parse(name[:-5], self._read(name)) for name in self._names()]
        return sorted((g for g in found if g is not None), key=lambda g: g.requested)

    def active(self, subject: str, now: dt.datetime) -> list[Grant]:
        """The approved, unexpired, unrevoked grants of principal `subject`."""
        return [g for g in self.all() if g.requester == subject and g.state(now) == "active"]

    def _parse(self, grant_id: str, text: str | None) -> Grant | None:
        if text is None:
            return None
        try:
            document = json.loads(text)
            grant = Grant(**document)
        except (json.JSONDecodeError, TypeError):
            return None
        if grant.id != grant_id or not self._signed(grant):
            return None
        return grant

    # -- where they are ----------------------------------------------------------------

    @property
    def location(self) -> str:
        if isinstance(self.backend, LocalStore):
            return str(self.backend.directory / GRANTS_DIRECTORY)
        return f"s3://{getattr(self.backend, 'bucket', '')}/{self._prefix()}"

    def _prefix(self) -> str:
        specs = str(getattr(self.backend, "specs_prefix", ""))
        return specs.replace(".cpl-specs/", ".cpl-grants/")

    def _read(self, name: str) -> str | None:
        if isinstance(self.backend, LocalStore):
            path = self.backend.directory / GRANTS_DIRECTORY / name
            try:
                if path.stat().st_size > MAX_GRANT_BYTES:
                    return None
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None
        found = self.backend._get(self._prefix() + name)  # type: ignore[attr-defined]
        return None if found is None else str(found[0])

    def _write(self, name: str, text: str, private: bool) -> None:
        if isinstance(self.backend, LocalStore):
            directory = self.backend.directory / GRANTS_DIRECTORY
            directory.mkdir(parents=True, exist_ok=True)
            if private:
                write_private(directory / name, text.encode("utf-8"))
            else:
                write_atomic(directory / name, text)
            return
        self.backend._call(  # type: ignore[attr-defined]
            "write",
            self.backend._client.put_object,  # type: ignore[attr-defined]
            Bucket=self.backend.bucket,  # type: ignore[attr-defined]
            Key=self._prefix() + name,
            Body=text.encode("utf-8"),
            ContentType="application/json",
        )

    def _names(self) -> Iterator[str]:
        if isinstance(self.backend, LocalStore):
            directory = self.backend.directory / GRANTS_DIRECTORY
            yield from sorted(p.name for p in directory.glob("g-*.json"))
            return
        client = self.backend._client  # type: ignore[attr-defined]
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.backend.bucket, Prefix=self._prefix()):  # type: ignore[attr-defined]
            for entry in page.get("Contents", []):
                name = str(entry["Key"]).removeprefix(self._prefix())
                if name.startswith("g-") and name.endswith(".json"):
                    yield name


def new_grant_id() -> str:
    return f"g-{secrets.token_hex(6)}"
