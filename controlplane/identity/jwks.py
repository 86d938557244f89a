"""The public keys of an environment's identity: inline, a JWKS file of the repo (read when
the environment loads) or an https JWKS URL (an issuer such as GitHub Actions OIDC).

A fetched JWKS is bounded (size, time), must be a JWKS of public keys, and is cached in the
process for `CACHE_SECONDS`, so one command fetches it at most once.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from controlplane.errors import ConfigError
from controlplane.spec.identity import MAX_JWKS_BYTES, IdentitySettings, checked_jwks

FETCH_TIMEOUT = 5.0
CACHE_SECONDS = 600.0

_CACHE: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def identity_keys(identity: IdentitySettings) -> list[dict[str, Any]]:
    """Every public key tokens of `identity` may be signed with."""
    keys = identity.local_keys()
    if identity.remote_jwks is not None:
        keys = [*keys, *fetch_jwks(identity.remote_jwks)]
    return keys


def fetch_jwks(url: str, timeout: float = FETCH_TIMEOUT) -> list[dict[str, Any]]:
    """The keys of the JWKS at `url` (https only), from the cache when fetched recently."""
    cached = _CACHE.get(url)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    if not url.startswith("https://"):
        raise ConfigError(f"identity.jwks {url}: only https URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ConfigError(f"cannot fetch the JWKS at {url}: {error}") from None
    if len(body) > MAX_JWKS_BYTES:
        raise ConfigError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"the JWKS at {url} is not JSON ({error})") from None
    keys = checked_jwks(document, url)
    _CACHE[url] = (time.monotonic(), keys)
    return keys
