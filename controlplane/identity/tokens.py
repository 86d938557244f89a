"""Verifying a principal's token (a JWT): signature, expiry, audience, issuer.

Pure: the keys and the time are arguments, so the Temporal interpreter verifies signals
inside its sandbox with the keys of its payload and `workflow.now()` exactly as the CLI does
with the environment's keys and the clock. Errors say what failed, never the token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
"""Asymmetric signatures only: a shared-secret (HS*) or unsigned (`none`) token is refused."""

MAX_TOKEN_CHARS = 16 * 1024
LEEWAY_SECONDS = 30
"""Clock skew tolerated on `exp` and `nbf`."""
MAX_ROLES = 100


class TokenError(Exception):
    """A token that does not make a principal; `reason` names what failed (no token text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who acts: `sub` and `roles` of a verified token (`verified`), or a self-declared name
    where the environment declares no identity. `claims` are the token's string claims, the
    attributes access rules match (`access.*.attributes`)."""

    sub: str
    roles: tuple[str, ...] = ()
    issuer: str | None = None
    verified: bool = False
    expires: dt.datetime | None = None
    claims: Mapping[str, str] = field(default_factory=dict)

    def audit(self) -> dict[str, Any]:
        """The principal's part of an audit event."""
        return {
            "actor": self.sub,
            "verified": self.verified,
            "issuer": self.issuer,
            "roles": list(self.roles),
        }


def verify_token(
    token: Any,
    keys: Sequence[Mapping[str, Any]],
    *,
    issuer: str,
    audience: str,
    now: dt.datetime,
    roles_claim: str = "roles",
) -> Principal:
    """The principal of `token` signed by one of `keys` (JWKs) for `issuer` and `audience`,
    valid at `now`; TokenError saying why not."""
    if not isinstance(token, str) or not token:
        raise TokenError("no token")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenError("malformed token (not a compact JWS)")
    if not keys:
        raise TokenError("no keys to verify tokens with")
    try:
        key_set = KeySet.import_key_set({"keys": [dict(key) for key in keys]})
    except (JoseError, ValueError, TypeError) as error:
        raise TokenError(f"the identity keys are unusable ({type(error).__name__})") from None
    try:
        decoded = jwt.decode(token, key_set, algorithms=list(ALGORITHMS))
    except InvalidKeyIdError:
        raise TokenError("signed by an unknown key") from None
    except BadSignatureError:
        raise TokenError("bad signature (not signed by a trusted key)") from None
    except JoseError as error:
        raise TokenError(f"malformed or unsupported token ({error.error})") from None
    except (ValueError, TypeError, KeyError):
        raise TokenError("malformed token") from None
    return _principal(decoded.claims, issuer, audience, now, roles_claim)


def _principal(
    claims: Mapping[str, Any], issuer: str, audience: str, now: dt.datetime, roles_claim: str
) -> Principal:
    if claims.get("iss") != issuer:
        raise TokenError(f"wrong issuer (expected {issuer})")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or audience not in audiences:
        raise TokenError(f"wrong audience (expected {audience})")
    stamp = now.timestamp()
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise TokenError("the token has no expiry (exp)")
    if stamp > expires + LEEWAY_SECONDS:
        raise TokenError("expired")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and stamp + LEEWAY_SECONDS < not_before:
        raise TokenError("not valid yet (nbf)")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenError("the token names no subject (sub)")
    roles = claims.get(roles_claim, [])
    roles = [roles] if isinstance(roles, str) else roles
    if not isinstance(roles, list):
        raise TokenError(f"the {roles_claim} claim is not a list")
    return Principal(
        sub=subject[:256],
        roles=tuple(str(role)[:128] for role in roles[:MAX_ROLES]),
        issuer=issuer,
        verified=True,
        expires=dt.datetime.fromtimestamp(float(expires), dt.UTC),
        claims={str(k)[:128]: v[:512] for k, v in list(claims.items())[:100] if isinstance(v, str)},
    )
