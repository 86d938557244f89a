"""`cpl access`: just-in-time grants (request, approve, list, revoke) and development tokens
(`token`); `token_option` and `check_deploy_access` for the commands that take a principal
(docs/security.md, "Identity", "Access", "Just-in-time access")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from controlplane.cli.output import (
    Duration,
    console_for,
    echo,
    emit,
    format_option,
    repo_option,
    to_json,
)
from controlplane.errors import ConfigError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])

MAX_GRANT = 7 * 86400.0


def token_option(func: F) -> F:
    return click.option(
        "--token",
        default=None,
        metavar="JWT",
        help="Your token where ENV declares spec.identity (default: $CPL_TOKEN).",
    )(func)


def check_deploy_access(
    repo: Path, environment: Any, token: str | None, operation: Literal["apply", "sync"]
) -> None:
    """`cpl apply` / `cpl drift --sync`: the principal must be a deploy approver (exit 3)."""
    if environment.spec.identity is None:
        _warn_unverified(environment, operation)
        return
    from controlplane.identity.abac import authorize, principal_for
    from controlplane.identity.principal import token_from

    principal = principal_for(repo, environment, token_from(token), operation)
    authorize(repo, environment, principal, operation)


def _warn_unverified(environment: Any, operation: str) -> None:
    if environment.tier != "development":
        echo(
            f"warning: environment '{environment.name}' ({environment.tier}) declares no "
            f"spec.identity: {operation} is not checked against a verified principal",
            err=True,
        )


def _env_option(func: F) -> F:
    return click.option("--env", "env_name", required=True, help="The environment.")(func)


@click.group("access")
def access_group() -> None:
    """Just-in-time grants and development tokens (environments with spec.identity)."""


def _principal_and_env(repo: Path, env_name: str, token: str | None) -> tuple[Any, Any]:
    from controlplane.identity.abac import principal_for
    from controlplane.identity.principal import token_from
    from controlplane.spec.load import load_environment

    environment = load_environment(repo, env_name)
    if environment.spec.identity is None:
        raise ConfigError(
            f"environment '{environment.name}' declares no spec.identity: grants need verified "
            "principals (see docs/security.md, Identity)"
        )
    return principal_for(repo, environment, token_from(token), "grant"), environment


def _workflow(repo: Path, workflow_ref: str) -> Any:
    """The workflow `--workflow` names (None for `*`, every workflow)."""
    from controlplane.cli.selection import find_workflow

    return None if workflow_ref == "*" else find_workflow(repo, workflow_ref)


@access_group.command("request")
@click.argument("role")
@click.option("--workflow", "workflow_ref", required=True, help="tenant/name, or * (all).")
@click.option(
    "--for", "duration", type=Duration(min=1, max=MAX_GRANT), required=True, metavar="D",
    help="How long the grant lasts once approved (at most access.admin.jit.maxDuration).",
)  # fmt: skip
@click.option("--reason", required=True, help="Why (kept in the grant and the audit trail).")
@_env_option
@token_option
@repo_option
@format_option("json")
def request_command(
    role: str,
    workflow_ref: str,
    duration: float,
    reason: str,
    env_name: str,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Request ROLE on a workflow for a while; another principal approves it."""
    from controlplane.identity.grants import GrantStore
    from controlplane.identity.jit import request_grant

    principal, environment = _principal_and_env(repo, env_name, token)
    workflow = _workflow(repo, workflow_ref)
    now = dt.datetime.now(dt.UTC)
    store = GrantStore.for_environment(environment, repo)
    grant = request_grant(
        repo, environment, principal, store, now,
        role=role, workflow=workflow, duration=duration, reason=reason,
    )  # fmt: skip
    _show(grant, now, output_format, output_file, "requested")
    return int(ExitCode.OK)


@access_group.command("approve")
@click.argument("grant_id", metavar="ID")
@_env_option
@token_option
@repo_option
@format_option("json")
def approve_command(
    grant_id: str,
    env_name: str,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Approve grant ID (never your own); it runs from now for its duration."""
    from controlplane.identity.jit import approve_grant

    return _decide(
        approve_grant, "approved", grant_id, env_name, token, repo, output_format, output_file
    )


@access_group.command("revoke")
@click.argument("grant_id", metavar="ID")
@_env_option
@token_option
@repo_option
@format_option("json")
def revoke_command(
    grant_id: str,
    env_name: str,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """End grant ID now (its requester, its approver, or a deploy approver)."""
    from controlplane.identity.jit import revoke_grant

    return _decide(
        revoke_grant, "revoked", grant_id, env_name, token, repo, output_format, output_file
    )


def _decide(
    decision: Any,
    verb: str,
    grant_id: str,
    env_name: str,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Approve or revoke (`decision`, from `controlplane.identity.jit`) grant ID as the
    token's principal, and show the grant."""
    from controlplane.identity.grants import GrantStore

    principal, environment = _principal_and_env(repo, env_name, token)
    now = dt.datetime.now(dt.UTC)
    store = GrantStore.for_environment(environment, repo)
    grant = decision(repo, environment, principal, store, now, grant_id)
    _show(grant, now, output_format, output_file, verb)
    return int(ExitCode.OK)


@access_group.command("list")
@_env_option
@token_option
@repo_option
@format_option("json")
def list_command(
    env_name: str, token: str | None, repo: Path, output_format: str, output_file: Path | None
) -> int:
    """The environment's grants: requested, active, expired, revoked (a token, when given,
    is verified first)."""
    from controlplane.identity.grants import GrantStore
    from controlplane.identity.principal import token_from, verified_principal
    from controlplane.spec.load import load_environment

    environment = load_environment(repo, env_name)
    if environment.spec.identity is not None and token_from(token) is not None:
        verified_principal(environment, token_from(token))
    now = dt.datetime.now(dt.UTC)
    grants = GrantStore.for_environment(environment, repo).all()
    if output_format == "json":
        emit(to_json({"grants": [g.to_json(now) for g in grants]}), output_file)
        return int(ExitCode.OK)
    console = console_for()
    if not grants:
        console.print("no grants", markup=False)
    for g in grants:
        until = f" until {g.expires}" if g.expires else f" for {g.seconds:g}s"
        by = f", approved by {g.approver}" if g.approver else ""
        console.print(
            f"{g.id}  {g.state(now):9}  {g.role} on {g.workflow}{until} — requested by "
            f"{g.requester}{by}: {g.reason}",
            markup=False,
        )
    return int(ExitCode.OK)


@access_group.command("token")
@click.option("--sub", required=True, help="The principal (the token's sub).")
@click.option("--role", "roles", multiple=True, help="A role (repeatable).")
@click.option(
    "--ttl", type=Duration(min=1, max=86400), default="1h", show_default=True, metavar="D",
    help="How long the token is valid.",
)  # fmt: skip
@click.option("--new-key", is_flag=True, help="Create the development signing key first.")
@_env_option
@repo_option
def token_command(
    sub: str, roles: tuple[str, ...], ttl: float, new_key: bool, env_name: str, repo: Path
) -> int:
    """Mint a development token (development environments only; prints the token)."""
    from controlplane.identity.devkeys import create_dev_key, mint_token
    from controlplane.spec.load import load_environment

    if new_key:
        create_dev_key(repo)
    environment = load_environment(repo, env_name)
    click.echo(mint_token(repo, environment, sub, list(roles), ttl))
    return int(ExitCode.OK)


def _show(
    grant: Any, now: dt.datetime, output_format: str, output_file: Path | None, verb: str
) -> None:
    if output_format == "json":
        emit(to_json(grant.to_json(now)), output_file)
        return
    console_for().print(
        f"{verb} grant {grant.id}: {grant.role} on {grant.workflow} ({grant.state(now)})",
        markup=False,
    )
