"""Signing keys and tokens for the identity tests (an identity provider of their own)."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

ISSUER = "https://id.example.com"
AUDIENCE = "cpl"


class Issuer:
    """A key pair that signs tokens; `jwks` is its public half."""

    def __init__(self, kid: str) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": kid})

    @property
    def public(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def token(
        self,
        sub: str,
        roles: list[str],
        *,
        ttl: float = 600,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {"iss": issuer, "aud": audience, "sub": sub, "roles": roles, "iat": now}
        body.update(exp=int(now + ttl), **claims)
        header = {"alg": "ES256", "kid": self.key.kid}
        return jwt.encode(header, body, self.key)
