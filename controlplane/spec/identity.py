"""`spec.identity` of an environment: who signs the tokens of its principals (docs/security.md,
"Identity").

    identity:
      issuer: https://id.example.com      # the tokens' `iss`
      audience: cpl                       # their `aud` must contain it
      jwks: identity/jwks.json            # a JWKS file of the repo, or an https:// URL
      keys: [{kty: OKP, crv: Ed25519, kid: k1, x: ...}]   # or the public keys inline
      rolesClaim: roles                   # the claim that lists a principal's roles

Only public keys belong here: a key with private members (`d`, `p`, `q`, `k` ...) is refused.
The file named by `jwks` is read when the environment loads (`resolve_identity_keys`), so the
Temporal translator can hand the keys to the interpreter without reading files itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from controlplane.errors import ConfigError
from controlplane.spec.model import Model

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
"""JWK members that only a private (or symmetric) key has."""

MAX_KEYS = 50
MAX_JWKS_BYTES = 256 * 1024
_CLAIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-/]{0,127}$")


def public_key_problem(key: Any) -> str | None:
    """Why `key` is not a usable public JWK (None when it is)."""
    if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
        return "a key is not a JWK object with a `kty`"
    secret = sorted(PRIVATE_MEMBERS & set(key))
    if secret:
        kid = key.get("kid", "?")
        return f"key {kid} has private members ({', '.join(secret)}): only public keys belong here"
    return None


class IdentitySettings(Model):
    """The issuer of the environment's principals' tokens and its public keys."""

    issuer: str = Field(min_length=1, max_length=512)
    audience: str = Field(min_length=1, max_length=256)
    jwks: str | None = Field(default=None, max_length=2048)
    keys: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_KEYS)
    roles_claim: str = Field(default="roles", pattern=_CLAIM.pattern)

    # the public keys of a `jwks` file, read by `resolve_identity_keys` when the environment loads
    _file_keys: list[dict[str, Any]] | None = PrivateAttr(default=None)

    @field_validator("jwks")
    @classmethod
    def _jwks_location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value and not value.startswith("https://"):
            raise PydanticCustomError(
                "CPL-S004",
                "identity.jwks '{url}' is neither a repo file nor https://",
                {"url": value},
            )
        if "://" not in value and (value.startswith(("/", "~")) or ".." in Path(value).parts):
            raise PydanticCustomError(
                "CPL-S040", "identity.jwks '{path}' leads outside the control repo", {"path": value}
            )
        return value

    @field_validator("keys")
    @classmethod
    def _public_only(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for key in value or []:
            problem = public_key_problem(key)
            if problem is not None:
                raise PydanticCustomError(
                    "CPL-S004", "identity.keys: {problem}", {"problem": problem}
                )
        return value

    @model_validator(mode="after")
    def _some_keys(self) -> IdentitySettings:
        if self.jwks is None and not self.keys:
            raise PydanticCustomError(
                "CPL-S003", "identity needs `jwks` (a file or https URL) or inline `keys`"
            )
        return self

    @property
    def remote_jwks(self) -> str | None:
        """The https URL of the JWKS, when the keys are fetched rather than in the repo."""
        return self.jwks if self.jwks is not None and self.jwks.startswith("https://") else None

    def runtime(self) -> dict[str, Any]:
        """What an engine's runtime verifies tokens with (the Temporal interpreter's payload
        `identity`): issuer, audience, roles claim, the keys known without the network."""
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "audience": self.audience,
            "rolesClaim": self.roles_claim,
            "keys": self.local_keys(),
        }
        if self.remote_jwks is not None:
            document["jwks"] = self.remote_jwks
        return document

    def local_keys(self) -> list[dict[str, Any]]:
        """The public keys known without the network: inline `keys` plus the `jwks` file."""
        return [*(self.keys or []), *(self._file_keys or [])]


class DeployApprovers(Model):
    """Who may apply to (and `drift --sync`) an environment that declares `spec.identity`:
    a principal holding one of `roles`."""

    roles: list[str] = Field(min_length=1)


def read_jwks_file(path: Path, shown: str) -> list[dict[str, Any]]:
    """The public keys of a JWKS file (`{"keys": [...]}`); ConfigError naming the file."""
    try:
        if path.stat().st_size > MAX_JWKS_BYTES:
            raise ConfigError(f"{shown}: a JWKS file larger than {MAX_JWKS_BYTES} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{shown}: cannot read the JWKS ({error})") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{shown}: not JSON ({error})") from None
    return checked_jwks(document, shown)


def checked_jwks(document: Any, shown: str) -> list[dict[str, Any]]:
    """The keys of a JWKS document, every one public (ConfigError naming `shown` otherwise)."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{shown}: not a JWKS (an object with a non-empty `keys` list)")
    if len(keys) > MAX_KEYS:
        raise ConfigError(f"{shown}: more than {MAX_KEYS} keys")
    for key in keys:
        problem = public_key_problem(key)
        if problem is not None:
            raise ConfigError(f"{shown}: {problem}")
    return [dict(key) for key in keys]


def resolve_identity_keys(repo: Path, identity: IdentitySettings | None) -> None:
    """Read the `jwks` file of `identity` (a path of the repo) into its keys."""
    if identity is None or identity.jwks is None or identity.remote_jwks is not None:
        return
    path = repo / identity.jwks
    real = path.resolve()
    if not real.is_relative_to(repo.resolve()):
        raise ConfigError(f"identity.jwks '{identity.jwks}' leads outside the control repo")
    identity._file_keys = read_jwks_file(path, identity.jwks)
