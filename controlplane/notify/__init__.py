"""Notifications: a webhook message (Slack-compatible or plain JSON) when `cpl check` is
denied, `cpl drift` finds drift or `cpl apply` fails, for the environments that ask for it
(`spec.notifications`, docs/notifications.md).

The hooks (`notify_check`, `notify_drift`, `notify_apply_failures` with `note_apply`) are
called where the commands finish. A message is spooled first, then the spool is sent in
order (`spool`); what cannot be delivered stays for the next message or `cpl notify flush`.
A notification never changes a command's outcome: any failure is one warning line on
standard error naming the webhook by its scheme and host (or its variable), never its path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from controlplane.errors import CplError
from controlplane.notify import sender
from controlplane.notify.notice import Notice, apply_notice, check_notice, drift_notice
from controlplane.notify.payload import render
from controlplane.notify.spool import Failure, FlushResult, Spool, spool_dir
from controlplane.notify.webhook import Webhook, resolve, scrub
from controlplane.redaction import redact_text
from controlplane.terminal import warn

if TYPE_CHECKING:
    from controlplane.deploy.apply import ApplyResult
    from controlplane.drift import DriftReport
    from controlplane.policy.decision import Decision
    from controlplane.spec.environment import Environment, Notification

__all__ = [
    "FlushResult",
    "Notice",
    "flush",
    "note_apply",
    "notify_apply_failures",
    "notify_check",
    "notify_drift",
    "send",
]

F = TypeVar("F", bound=Callable[..., Any])


def notify_check(repo: Path, env_name: str, decision: Decision) -> None:
    """After `cpl check`: a `check-denied` message when the decision denies."""
    if decision.denied:
        _safely(repo, env_name, lambda: check_notice(decision))


def notify_drift(repo: Path, env_name: str, report: DriftReport) -> None:
    """After `cpl drift`: a `drift` message when drift was found."""
    if report.drifted:
        _safely(repo, env_name, lambda: drift_notice(report))


# The result of the apply running in this context, for `notify_apply_failures`.
_applied: ContextVar[tuple[ApplyResult, dict[str, str | None]] | None] = ContextVar(
    "cpl_notify_applied", default=None
)


def note_apply(result: ApplyResult, workflows: Mapping[str, Any]) -> None:
    """Remember what the apply did (and each workflow's classification, for redaction)."""
    classes = {key: getattr(w.metadata, "classification", None) for key, w in workflows.items()}
    _applied.set((result, classes))


def notify_apply_failures(command: F) -> F:
    """Decorate `cpl apply`: an `apply-failed` message when changes failed (`note_apply`) or
    an error stopped it (refused, stale plan, engine unreachable). A person declining the
    confirmation, a usage error or Ctrl-C sends nothing."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        repo, env_name = kwargs.get("repo"), kwargs.get("env_name")
        token = _applied.set(None)
        try:
            code = command(*args, **kwargs)
            noted = _applied.get()
            if noted is not None and not noted[0].ok:
                _apply_failed(repo, env_name, int(code), None)
            return code
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except CplError as exc:
            _apply_failed(repo, env_name, int(exc.exit_code), exc.message)
            raise
        except Exception as exc:
            _apply_failed(repo, env_name, 1, f"internal error: {type(exc).__name__}: {exc}")
            raise
        finally:
            _applied.reset(token)

    return wrapper  # type: ignore[return-value]


def _apply_failed(repo: Any, env_name: Any, code: int, error: str | None) -> None:
    if not isinstance(repo, Path) or not isinstance(env_name, str):
        return
    noted = _applied.get()
    result, classes = noted if noted is not None else (None, {})
    _safely(repo, env_name, lambda: apply_notice(env_name, code, result, error, classes))


def _safely(repo: Path, env_name: str, make: Callable[[], Notice]) -> None:
    """Send a notice to the environment's webhooks; nothing here may fail the command."""
    from controlplane.spec.load import load_environment

    try:
        environment = load_environment(repo, env_name)
    except CplError:  # the command reports an environment that does not load
        return
    try:
        if not environment.spec.notifications:
            return
        send(repo, environment, make())
    except Exception as exc:  # a notification never changes the command's outcome
        _warn(f"notifications of '{env_name}' not sent: {redact_text(str(exc))[:300]}")


def send(repo: Path, environment: Environment, notice: Notice) -> list[FlushResult]:
    """Spool `notice` for every webhook of the environment that wants its event, then send
    each spool in order; one warning line per webhook that did not take everything."""
    results = []
    for setting in environment.spec.notifications:
        if notice.event not in setting.events:
            continue
        hook = _webhook(setting)
        spool = Spool(spool_dir(repo, environment.name, hook.key))
        dropped = spool.add(render(notice, setting.format), notice.event)
        result = _flush(hook, spool, dropped)
        if not result.ok:
            flush_command = f"`cpl notify flush --env {environment.name}`"
            waiting = f"; {result.pending} message(s) wait for {flush_command}"
            waiting = waiting if result.pending else ""
            full = f" ({result.dropped} oldest dropped: spool full)" if result.dropped else ""
            _warn(
                f"notification ({notice.event}) to webhook {hook.name} not sent: "
                f"{result.error}{waiting}{full}"
            )
        results.append(result)
    return results


def flush(repo: Path, environment: Environment) -> list[tuple[Webhook, FlushResult]]:
    """Send what waits in each of the environment's webhook spools, oldest first."""
    done: list[tuple[Webhook, FlushResult]] = []
    seen: set[str] = set()
    for setting in environment.spec.notifications:
        hook = _webhook(setting)
        if hook.key in seen:
            continue
        seen.add(hook.key)
        done.append((hook, _flush(hook, Spool(spool_dir(repo, environment.name, hook.key)))))
    return done


def _webhook(setting: Notification) -> Webhook:
    webhook = setting.webhook
    if isinstance(webhook, str):
        return resolve(webhook, None)
    return resolve(None, webhook.env)


def _flush(hook: Webhook, spool: Spool, dropped: int = 0) -> FlushResult:
    if hook.problem is not None or hook.url is None:
        return FlushResult(0, len(spool.pending()), hook.problem or "no URL", dropped)
    url = hook.url

    def deliver(body: bytes) -> Failure | None:
        failure = sender.post(url, body)
        if failure is None:
            return None
        return Failure(scrub(failure.reason, url), failure.malformed)

    result = spool.flush(deliver)
    return FlushResult(result.delivered, result.pending, result.error, dropped)


def _warn(line: str) -> None:
    warn(line)
