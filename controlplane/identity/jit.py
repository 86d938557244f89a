"""Just-in-time grant operations behind `cpl access request/approve/revoke`: the duration
limit, who may approve or revoke, and the saved grant with its audit event (docs/security.md,
"Just-in-time access"). The store itself (documents, signatures) is identity/grants.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.audit import GRANT_APPROVED, GRANT_REQUESTED, GRANT_REVOKED, Auditor
from controlplane.errors import ConfigError
from controlplane.identity.abac import deny
from controlplane.identity.grants import Grant, GrantStore, new_grant_id

if TYPE_CHECKING:
    from controlplane.identity.tokens import Principal
    from controlplane.spec.environment import Environment
    from controlplane.spec.model import Workflow

DEFAULT_ENV_WIDE_JIT = 3600.0
"""The longest environment-wide grant where no workflow declares `access.admin.jit`."""


def max_duration(repo: Path, workflow: Workflow | None) -> float:
    """The longest grant `workflow` allows (None: environment-wide, the strictest
    `access.admin.jit.maxDuration` of the repo's workflows)."""
    if workflow is None:
        from controlplane.spec.load import load_workflows

        limits = [
            loaded.model.spec.access.admin.jit.max_duration.seconds
            for loaded in load_workflows(repo).workflows
            if loaded.model.spec.access is not None
            and loaded.model.spec.access.admin is not None
            and loaded.model.spec.access.admin.jit is not None
        ]
        return min(limits, default=DEFAULT_ENV_WIDE_JIT)
    access = workflow.spec.access
    admin = access.admin if access is not None else None
    if admin is None or admin.jit is None:
        raise ConfigError(
            f"workflow '{workflow.key}' declares no access.admin.jit: there is no elevation "
            "to grant on it"
        )
    return admin.jit.max_duration.seconds


def request_grant(
    repo: Path,
    environment: Environment,
    principal: Principal,
    store: GrantStore,
    now: dt.datetime,
    *,
    role: str,
    workflow: Workflow | None,
    duration: float,
    reason: str,
) -> Grant:
    """A new grant of `role` on `workflow` (None: all) requested by `principal`, saved and
    recorded as GRANT_REQUESTED; ConfigError when `duration` exceeds the limit."""
    limit = max_duration(repo, workflow)
    if duration > limit:
        raise ConfigError(
            f"--for {duration:g}s is longer than access.admin.jit.maxDuration of "
            f"{workflow.key if workflow else 'the environment'} ({limit:g}s)"
        )
    grant = Grant(
        id=new_grant_id(),
        environment=environment.name,
        role=role,
        workflow=workflow.key if workflow is not None else "*",
        seconds=duration,
        reason=reason[:500],
        requester=principal.sub,
        requested=now.isoformat(),
    )
    return _save_and_audit(
        repo, environment, principal, store, grant, GRANT_REQUESTED, {"duration": duration},
        subject=workflow.key if workflow is not None else None,
        classification=workflow.metadata.classification if workflow is not None else None,
    )  # fmt: skip


def approve_grant(
    repo: Path,
    environment: Environment,
    principal: Principal,
    store: GrantStore,
    now: dt.datetime,
    grant_id: str,
) -> Grant:
    """Grant `grant_id` approved by `principal` (a deploy approver, never its requester),
    running from `now` for its duration; saved and recorded as GRANT_APPROVED."""
    grant = store.get(grant_id)
    if grant.state(now) != "requested":
        raise ConfigError(f"grant {grant.id} is {grant.state(now)}, not waiting for approval")
    if principal.sub == grant.requester:
        deny(repo, environment, principal, "grant", None, target=None,
             rule="grant.approver", reason="the requester cannot approve their own grant",
             message=f"access denied: {principal.sub} requested grant {grant.id} and cannot "
             "approve it: a second principal must")  # fmt: skip
    approvers = environment.spec.deploy.approvers
    if not _is_deploy_approver(environment, principal):
        deny(repo, environment, principal, "grant", None, target=None,
             rule="deploy.approvers", missing=tuple(sorted(approvers.roles)) if approvers else (),
             reason="missing role")  # fmt: skip
    grant = dataclasses.replace(
        grant,
        approver=principal.sub,
        approved=now.isoformat(),
        expires=(now + dt.timedelta(seconds=grant.seconds)).isoformat(),
    )
    return _save_and_audit(
        repo, environment, principal, store, grant, GRANT_APPROVED,
        {"expires": grant.expires, "requester": grant.requester},
    )  # fmt: skip


def revoke_grant(
    repo: Path,
    environment: Environment,
    principal: Principal,
    store: GrantStore,
    now: dt.datetime,
    grant_id: str,
) -> Grant:
    """Grant `grant_id` ended at `now` by its requester, its approver or a deploy approver;
    recorded as GRANT_REVOKED (a grant already revoked keeps its first revocation)."""
    grant = store.get(grant_id)
    approvers = environment.spec.deploy.approvers
    allowed = principal.sub in (grant.requester, grant.approver) or (
        approvers is not None and _is_deploy_approver(environment, principal)
    )
    if not allowed:
        deny(repo, environment, principal, "grant", None, target=None,
             rule="grant.revoker", reason="neither requester, approver nor deploy approver",
             missing=tuple(sorted(approvers.roles)) if approvers else ())  # fmt: skip
    save = grant.revoked is None
    if save:
        grant = dataclasses.replace(grant, revoked=now.isoformat(), revoker=principal.sub)
    return _save_and_audit(repo, environment, principal, store, grant, GRANT_REVOKED, {}, save=save)


def _is_deploy_approver(environment: Environment, principal: Principal) -> bool:
    """Whether `principal` holds a role of `deploy.approvers` (anyone, where none are set)."""
    approvers = environment.spec.deploy.approvers
    return approvers is None or bool(set(approvers.roles) & set(principal.roles))


def _save_and_audit(
    repo: Path,
    environment: Environment,
    principal: Principal,
    store: GrantStore,
    grant: Grant,
    event: str,
    details: Mapping[str, Any],
    *,
    subject: str | None = None,
    classification: str | None = None,
    save: bool = True,
) -> Grant:
    """Save (and so sign) `grant` and record `event` with the principal, the grant, its
    role and workflow, then `details`."""
    if save:
        grant = store.save(grant)
    Auditor.for_environment(repo, environment).emit(
        event,
        subject,
        {
            **principal.audit(),
            "operation": "grant",
            "grant": grant.id,
            "role": grant.role,
            "workflow": grant.workflow,
            **details,
        },
        classification=classification,
    )
    return grant
