"""The principal of a command: the verified token of `--token` / `CPL_TOKEN` where the
environment declares `spec.identity`, else a self-declared name (docs/security.md, "Identity").
"""

from __future__ import annotations

import datetime as dt
import getpass
import os

from controlplane.errors import CplError, ExitCode
from controlplane.identity.jwks import identity_keys
from controlplane.identity.tokens import Principal, TokenError, verify_token
from controlplane.spec.environment import Environment

TOKEN_VARIABLE = "CPL_TOKEN"


class AccessDenied(CplError):
    """A command refused for its principal (exit 3): which rule, which roles are missing."""

    def __init__(self, message: str, rule: str = "", missing: tuple[str, ...] = ()) -> None:
        super().__init__(message, ExitCode.DENIED)
        self.rule = rule
        self.missing = missing


def token_from(option: str | None) -> str | None:
    """The token of `--token`, else of the `CPL_TOKEN` variable (None when neither is set)."""
    token = option if option else os.environ.get(TOKEN_VARIABLE)
    return token.strip() if token and token.strip() else None


def self_declared(name: str | None = None) -> Principal:
    """A principal nobody verified: `name`, else the login name of the process."""
    if name:
        return Principal(sub=name)
    try:
        return Principal(sub=getpass.getuser())
    except (KeyError, OSError):
        return Principal(sub="unknown")


def verified_principal(
    environment: Environment, token: str | None, now: dt.datetime | None = None
) -> Principal:
    """The principal of `token` for `environment` (its `spec.identity` must be declared);
    AccessDenied (rule `identity`) saying what failed, never echoing the token."""
    identity = environment.spec.identity
    assert identity is not None
    if token is None:
        raise AccessDenied(
            f"access denied: environment '{environment.name}' declares spec.identity: pass a "
            f"token with --token or {TOKEN_VARIABLE}",
            rule="identity",
        )
    try:
        return verify_token(
            token,
            identity_keys(identity),
            issuer=identity.issuer,
            audience=identity.audience,
            now=now or dt.datetime.now(dt.UTC),
            roles_claim=identity.roles_claim,
        )
    except TokenError as error:
        raise AccessDenied(
            f"access denied: the token is not valid for environment '{environment.name}': "
            f"{error.reason}",
            rule="identity",
        ) from None
