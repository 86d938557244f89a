"""Development tokens: a signing key `cpl init` creates and `cpl access token` signs with.

The private key stays in `.cpl/identity/dev-signing-key.json` (owner-only, ignored by Git);
its public JWKS goes where the scaffolded `environments/local.yaml` points `spec.identity.jwks`
(`identity/jwks.json`), so tokens minted here verify exactly like an identity provider's.
Minting is refused for staging and production environments: their tokens come from the
organisation's identity provider.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from controlplane.errors import ConfigError
from controlplane.files import write_private
from controlplane.spec.environment import Environment

DEV_KEY_FILE = Path(".cpl") / "identity" / "dev-signing-key.json"
DEV_JWKS_FILE = "identity/jwks.json"
DEV_ISSUER = "https://cpl.local/dev"
DEV_AUDIENCE = "cpl"
ALGORITHM = "ES256"
MAX_TTL_SECONDS = 24 * 3600.0


def create_dev_key(repo: Path, *, force: bool = False) -> tuple[Path, Path] | None:
    """Create the development signing key and its public JWKS (None when both exist)."""
    private, public = repo / DEV_KEY_FILE, repo / DEV_JWKS_FILE
    if private.exists() and public.exists() and not force:
        return None
    key = ECKey.generate_key("P-256", parameters={"kid": f"cpl-dev-{uuid.uuid4().hex[:8]}"})
    private.parent.mkdir(parents=True, exist_ok=True)
    private.parent.chmod(0o700)
    if private.exists():
        private.unlink()
    write_private(private, json.dumps(key.as_dict(private=True)).encode("utf-8"))
    public.parent.mkdir(parents=True, exist_ok=True)
    jwks = {"keys": [{**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM}]}
    public.write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    return private, public


def mint_token(
    repo: Path,
    environment: Environment,
    sub: str,
    roles: list[str],
    ttl: float,
    now: dt.datetime | None = None,
) -> str:
    """A token for `sub` with `roles`, valid `ttl` seconds, signed with the development key
    for the environment's issuer and audience (development environments only)."""
    identity = environment.spec.identity
    if environment.tier != "development":
        raise ConfigError(
            f"environment '{environment.name}' is a {environment.tier} environment: its tokens "
            "come from its identity provider, cpl mints tokens for development environments only"
        )
    if identity is None:
        raise ConfigError(
            f"environment '{environment.name}' declares no spec.identity: there is no issuer "
            "to mint tokens for"
        )
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise ConfigError(f"--ttl must be between 1s and {MAX_TTL_SECONDS / 3600:g}h")
    try:
        document = json.loads((repo / DEV_KEY_FILE).read_text(encoding="utf-8"))
        key = ECKey.import_key(document)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"no development signing key in {DEV_KEY_FILE} ({type(error).__name__}): "
            "run `cpl init` (or `cpl access token --new-key`) to create one"
        ) from None
    kid = str(document.get("kid", ""))
    if kid not in {str(k.get("kid")) for k in identity.local_keys()}:
        raise ConfigError(
            f"the development key {kid} is not among the keys of environment "
            f"'{environment.name}' (spec.identity): tokens it signs would not verify"
        )
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "iss": identity.issuer,
        "aud": identity.audience,
        "sub": sub,
        identity.roles_claim: list(roles),
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int(issued.timestamp() + ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": ALGORITHM, "kid": kid, "typ": "JWT"}, claims, key)
