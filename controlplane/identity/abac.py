"""Access decisions for cpl's entry points: one OPA evaluation of `cpl.access` per command
(`controlplane/policies/access/access.rego`, docs/security.md, "Access").

`cpl run` is `start` (the workflow's `access.start`), an approval `cpl signal` is `signal`
(`access.signal`), pause/resume/skip are `admin` (`access.admin`), `cpl apply` and `cpl drift
--sync` are `apply` and `sync` (the environment's `deploy.approvers`). A rule's `roles` are
matched against the token's roles and the principal's just-in-time grants, its `attributes`
against the token's string claims (exact values or globs, e.g. `repository: org/*`).
Decisions are made only where the environment declares `spec.identity`; a denial is recorded
(ACCESS_DENIED) and raised as AccessDenied (exit 3) naming the rule and the missing roles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from controlplane.audit import ACCESS_DENIED, Auditor
from controlplane.identity.principal import AccessDenied
from controlplane.identity.tokens import Principal
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.library import Library, Module, builtin_policy_dir
from controlplane.spec.environment import Environment
from controlplane.spec.model import Workflow

Operation = Literal["start", "signal", "admin", "apply", "sync", "grant"]
ACCESS_MODULE = Path("access") / "access.rego"
ACCESS_PACKAGE = "cpl.access"
DECISION = "data.cpl.access.decision"


@dataclass(frozen=True)
class Allowed:
    """An allowed command: who, by which rule, through which grant (if any)."""

    principal: Principal
    rule: str
    grant: str | None = None
    enforced: bool = True

    def audit(self) -> dict[str, Any]:
        data = self.principal.audit()
        if self.grant is not None:
            data["grant"] = self.grant
        return data


def rule_of(
    environment: Environment, operation: Operation, workflow: Workflow | None
) -> tuple[str, dict[str, Any] | None]:
    """The name and the `{roles, attributes}` of the rule that governs `operation`."""
    if operation in ("apply", "sync"):
        approvers = environment.spec.deploy.approvers
        rule = {"roles": list(approvers.roles), "attributes": {}} if approvers else None
        return "deploy.approvers", rule
    access = workflow.spec.access if workflow is not None else None
    entry = getattr(access, operation, None) if access is not None else None
    if entry is None:
        return f"access.{operation}", None
    return f"access.{operation}", {"roles": list(entry.roles), "attributes": dict(entry.attributes)}


def _engine() -> EmbeddedOpa:
    path = builtin_policy_dir() / ACCESS_MODULE
    module = Module(str(ACCESS_MODULE), path.read_text(encoding="utf-8"), ACCESS_PACKAGE)
    return EmbeddedOpa(Library(modules=[module], builtin_only=True), workers=1)


def authorize(
    repo: Path,
    environment: Environment,
    principal: Principal,
    operation: Operation,
    workflow: Workflow | None = None,
    *,
    target: str | None = None,
    auditor: Auditor | None = None,
    now: dt.datetime | None = None,
) -> Allowed:
    """Allow `principal` to do `operation` (on `workflow`), or record and raise AccessDenied."""
    name, rule = rule_of(environment, operation, workflow)
    if environment.spec.identity is None:
        return Allowed(principal, name, enforced=False)
    now = now or dt.datetime.now(dt.UTC)
    grants: list[dict[str, Any]] = []
    if rule is not None and rule["roles"] and not set(rule["roles"]) & set(principal.roles):
        from controlplane.identity.grants import GrantStore

        grants = [
            {"id": g.id, "role": g.role, "workflow": g.workflow, "expires": g.expires_at()}
            for g in GrantStore.for_environment(environment, repo).active(principal.sub, now)
        ]
    document = {
        "operation": operation,
        "rule": rule,
        "ruleName": name,
        "principal": {
            "sub": principal.sub,
            "roles": list(principal.roles),
            "verified": principal.verified,
            "claims": dict(principal.claims),
        },
        "grants": grants,
        "workflow": workflow.key if workflow is not None else None,
        "now": now.timestamp(),
    }
    with _engine() as engine:
        decision = engine.query(DECISION, document)
    if isinstance(decision, dict) and decision.get("allow") is True:
        grant = decision.get("grant")
        return Allowed(principal, name, str(grant) if grant else None)
    missing = tuple(str(r) for r in (decision or {}).get("missing", []))
    reason = str((decision or {}).get("reason", "denied"))
    deny(
        repo,
        environment,
        principal,
        operation,
        workflow,
        target=target,
        rule=name,
        missing=missing,
        reason=reason,
        auditor=auditor,
    )
    raise AssertionError("unreachable")


def deny(
    repo: Path,
    environment: Environment,
    principal: Principal | None,
    operation: Operation,
    workflow: Workflow | None,
    *,
    target: str | None,
    rule: str,
    missing: tuple[str, ...] = (),
    reason: str,
    auditor: Auditor | None = None,
    message: str | None = None,
) -> None:
    """Record ACCESS_DENIED and raise AccessDenied (exit 3)."""
    auditor = auditor or Auditor.for_environment(repo, environment)
    data: dict[str, Any] = principal.audit() if principal is not None else {"verified": False}
    data.update(
        operation=operation,
        workflow=workflow.key if workflow is not None else None,
        target=target,
        rule=rule,
        missing=list(missing),
        reason=reason,
    )
    auditor.emit(
        ACCESS_DENIED,
        workflow.key if workflow is not None else None,
        data,
        classification=workflow.metadata.classification if workflow is not None else None,
    )
    who = principal.sub if principal is not None else "the caller"
    if message is None:
        needs = f": needs one of the roles {', '.join(missing)}" if missing else f": {reason}"
        message = f"access denied: {rule} refuses {operation} by {who}{needs}"
    raise AccessDenied(message, rule, missing)


def needs_token(environment: Environment, operation: Operation, workflow: Workflow | None) -> bool:
    """Whether a command must present a token in an environment with an identity: signals
    and grants always (the interpreter verifies signals), and everything on staging and
    production; on development, runs, applies and syncs only where a rule governs them."""
    if operation in ("signal", "admin", "grant") or environment.tier != "development":
        return True
    return rule_of(environment, operation, workflow)[1] is not None


def principal_for(
    repo: Path,
    environment: Environment,
    token: str | None,
    operation: Operation,
    workflow: Workflow | None = None,
    *,
    target: str | None = None,
    auditor: Auditor | None = None,
) -> Principal:
    """The command's principal: the verified token where the environment declares an
    identity (a missing or invalid token is recorded and denied; see `needs_token` for the
    development commands that may go without one), else self-declared."""
    from controlplane.identity.principal import self_declared, verified_principal

    if environment.spec.identity is None:
        return self_declared()
    if token is None and not needs_token(environment, operation, workflow):
        return self_declared()
    try:
        return verified_principal(environment, token)
    except AccessDenied as denied:
        deny(
            repo,
            environment,
            None,
            operation,
            workflow,
            target=target,
            rule="identity",
            reason=denied.message.split(": ", 2)[-1],
            auditor=auditor,
            message=denied.message,
        )
        raise
