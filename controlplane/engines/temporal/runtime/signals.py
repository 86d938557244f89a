"""Who sent a signal: the interpreter's check of approval and admin signals (docs/security.md,
"Identity").

Where the run's payload carries `identity` (the environment's issuer, audience, roles claim
and public keys), a signal's argument must hold a token (`{"approved": true, "token": JWT}`,
`{"token": JWT}` for pause and resume, `{"step": S, "token": JWT}` for skip): it is verified
here, inside the workflow, with the payload's keys and `workflow.now()`, so a signal sent by
any Temporal client is checked and replays decide the same. Without `identity` the
self-declared form (`{"approved": true, "by": ..., "roles": [...]}`) is kept.

Sandbox-safe: pure functions over plain values; the token library is passed through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controlplane.identity.tokens import TokenError, verify_token

AUDIT_ACTIVITY = "cpl.audit"
"""Activity hosted by `cpl worker` that records the interpreter's audit events."""
SIGNAL_ACCEPTED = "dev.cpl.signal.accepted"
SIGNAL_REFUSED = "dev.cpl.signal.refused"


@dataclass(frozen=True)
class Sender:
    """The principal of a signal, or why there is none (`refusal`)."""

    actor: str = ""
    roles: tuple[str, ...] = ()
    verified: bool = False
    issuer: str | None = None
    refusal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def audit(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "verified": self.verified,
            "issuer": self.issuer,
            "roles": list(self.roles),
        }


def sender(identity: Mapping[str, Any] | None, argument: Any, now: dt.datetime) -> Sender:
    """The sender of a signal whose argument is `argument` (a refusal when its token fails)."""
    value = argument if isinstance(argument, Mapping) else {}
    grant = value.get("grant")
    extra = {"grant": str(grant)[:64]} if isinstance(grant, str) and grant else {}
    if identity is None:  # self-declared: the environment declares no identity
        roles = value.get("roles")
        return Sender(
            actor=str(value.get("by", ""))[:256],
            roles=tuple(str(r)[:128] for r in roles[:100]) if isinstance(roles, list) else (),
            extra=extra,
        )
    token = value.get("token")
    if not isinstance(token, str) or not token:
        return Sender(refusal="no token: this environment declares spec.identity", extra=extra)
    try:
        principal = verify_token(
            token,
            list(identity.get("keys") or []),
            issuer=str(identity.get("issuer", "")),
            audience=str(identity.get("audience", "")),
            now=now,
            roles_claim=str(identity.get("rolesClaim") or "roles"),
        )
    except TokenError as error:
        return Sender(issuer=str(identity.get("issuer", "")), refusal=error.reason, extra=extra)
    return Sender(
        actor=principal.sub,
        roles=principal.roles,
        verified=True,
        issuer=principal.issuer,
        extra=extra,
    )
