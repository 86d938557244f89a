"""`cpl audit verify|export|flush`: check, hand over and deliver the audit trail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import click

from controlplane.audit import FileSink, S3Sink, flush, log_paths, open_sinks, s3_sinks
from controlplane.audit.anchor import anchor_for
from controlplane.audit.export import ExportFormat, export, export_events, parse_since
from controlplane.audit.reconcile import against_state, lines_problem
from controlplane.audit.s3verify import S3VerifyResult, verify_s3
from controlplane.audit.verify import VerifyResult, verify
from controlplane.cli.output import console_for, emit, repo_option
from controlplane.deploy.stores import open_store
from controlplane.errors import ConfigError, ExitCode
from controlplane.spec.environment import Environment
from controlplane.spec.load import load_environment

_ENVIRONMENT_SUFFIXES = (".yaml", ".yml", ".json")


@click.group("audit")
def audit_group() -> None:
    """Verify the hash-chained audit log, export events for auditors, deliver spooled events."""


@audit_group.command("verify")
@click.option(
    "--env", "env_name", default=None, help="Verify this environment's file and S3 sinks."
)
@click.option(
    "--file",
    "log_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify this log file.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@repo_option
def verify_command(
    env_name: str | None, log_file: Path | None, output_format: str, repo: Path
) -> int:
    """Check every line of the audit log's hash chain, and the log against the deploy state.

    Without --env or --file, checks the logs of every environment in environments/. Exits 1
    naming the first bad line (edited, removed, inserted, reordered or truncated), or, for an
    environment's logs, when the log lacks what its deploy state records (a log deleted or
    cut at the end: see `controlplane.audit.reconcile`). An S3 sink's chain is checked across
    its objects, naming the first object missing, deleted, rewritten or altered.
    --file checks the chain only.
    """
    if log_file is not None and env_name is not None:
        raise click.UsageError("give --env or --file, not both")
    results: list[VerifyResult | S3VerifyResult]
    if log_file is not None:
        if not log_file.is_file():
            raise ConfigError(f"no audit log at {log_file}")
        results = [verify(log_file)]
    else:
        logs = _logs(repo, env_name)
        results = [
            _against_state(verify(path), repo, environments)
            for path, environments in logs.items()
            if path is not None
        ]
        for environment in {e.name: e for es in logs.values() for e in es}.values():
            results += [
                _s3_verdict(sink, repo, environment) for sink in s3_sinks(repo, environment)
            ]
    if output_format == "json":
        ok = all(result.ok for result in results)
        click.echo(json.dumps({"ok": ok, "logs": [r.to_json() for r in results]}, indent=2))
    else:
        _print_verdicts(results)
    return int(ExitCode.OK if all(result.ok for result in results) else ExitCode.ERROR)


@audit_group.command("export")
@click.option(
    "--since",
    "since_text",
    required=True,
    metavar="T",
    help="RFC 3339 date or date-time, or a duration such as 7d (since 7 days ago).",
)
@click.option("--env", "env_name", default=None, help="Export this environment's log.")
@click.option(
    "--file",
    "log_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Export this log file.",
)
@click.option(
    "--format", "output_format", type=click.Choice(["json", "csv"]), default="json",
    show_default=True,
)  # fmt: skip
@click.option(
    "--output",
    "-o",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the export to FILE instead of standard output.",
)
@repo_option
def export_command(
    since_text: str,
    env_name: str | None,
    log_file: Path | None,
    output_format: ExportFormat,
    output_file: Path | None,
    repo: Path,
) -> int:
    """Export the events recorded since T, after verifying the log's hash chain.

    With --env, reads the environment's first file or S3 sink (in `audit.sinks` order). A log
    whose chain is broken is not exported (exit 1): run `cpl audit verify`.
    """
    try:
        since = parse_since(since_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if log_file is not None and env_name is not None:
        raise click.UsageError("give --env or --file, not both")
    if log_file is not None:
        path = log_file
    elif env_name is not None:
        environment = load_environment(repo, env_name)
        sinks = [
            sink
            for sink in open_sinks(
                repo, environment.name, environment.spec.audit.sinks, environment.spec.aws
            )
            if isinstance(sink, FileSink | S3Sink)
        ]
        if not sinks:
            raise ConfigError(f"environment '{env_name}' has no file or s3 audit sink to export")
        if isinstance(sinks[0], S3Sink):
            _export_s3(sinks[0], since, output_format, output_file)
            return int(ExitCode.OK)
        path = sinks[0].path
    else:
        raise click.UsageError("give --env ENV or --file FILE")
    verdict = verify(path)
    if not verdict.ok:
        raise ConfigError(
            f"{path}:{verdict.first_bad_line}: {verdict.reason}; "
            "the log is not exported (run `cpl audit verify`)"
        )
    emit(export(path, since, output_format), output_file)
    if output_file is not None:
        console_for(err=True).print(f"exported events since {_stamp(since)} to {output_file}")
    return int(ExitCode.OK)


@audit_group.command("flush")
@click.option("--env", "env_name", required=True, help="The environment whose spools to send.")
@repo_option
def flush_command(env_name: str, repo: Path) -> int:
    """Deliver events waiting in the environment's HTTP and S3 sink spools, in order.

    Exits 1 when some are still waiting (the collector is down or rejected one).
    """
    console = console_for()
    results = flush(repo, load_environment(repo, env_name))
    for result in results:
        line = f"delivered {result.delivered}, pending {result.pending}"
        console.print(line + (f" ({result.error})" if result.error else ""), markup=False)
    if not results:
        console.print(f"environment '{env_name}' has no http or s3 audit sink", markup=False)
    return int(ExitCode.OK if all(result.ok for result in results) else ExitCode.ERROR)


def _logs(repo: Path, env_name: str | None) -> dict[Path | None, list[Environment]]:
    """Each log file to verify, with the environments that write to it (under None: the
    environments with no file sink, whose S3 sinks are verified all the same)."""
    if env_name is not None:
        names = [env_name]
    else:
        directory = repo / "environments"
        names = sorted(
            {p.stem for p in directory.glob("*") if p.suffix in _ENVIRONMENT_SUFFIXES}
            if directory.is_dir()
            else set()
        )
        if not names:
            raise ConfigError(f"no environments in {directory}: give --env or --file")
    logs: dict[Path | None, list[Environment]] = {}
    for name in names:
        environment = load_environment(repo, name)
        paths: list[Path | None] = [*log_paths(repo, environment)] or [None]
        for path in paths:
            logs.setdefault(path, []).append(environment)
    return logs


def _s3_verdict(sink: S3Sink, repo: Path, environment: Environment) -> S3VerifyResult:
    """The S3 chain's verdict, failed when its chain is good but lacks what the deploy state
    records (its last objects deleted from an unversioned bucket, say)."""
    result = verify_s3(sink.store)
    if not result.ok:
        return result
    state = open_store(environment, repo).load(environment.name)
    problem = lines_problem(result.events, result.objects > 0, state)
    if problem is None:
        return result
    return dataclasses.replace(result, ok=False, reason=problem + " (after its last object)")


def _export_s3(
    sink: S3Sink, since: dt.datetime, output_format: ExportFormat, output_file: Path | None
) -> None:
    verdict = verify_s3(sink.store)
    if not verdict.ok:
        raise ConfigError(
            f"{verdict.where}: {verdict.reason}; the log is not exported (run `cpl audit verify`)"
        )
    events = [json.loads(line) for line in verdict.events]
    emit(export_events(events, since, output_format), output_file)
    if output_file is not None:
        console_for(err=True).print(f"exported events since {_stamp(since)} to {output_file}")


def _against_state(
    result: VerifyResult, repo: Path, environments: list[Environment]
) -> VerifyResult:
    """`result`, failed when its chain is good but the log lacks what a deploy state records,
    or is shorter than (or differs from) its signed checkpoint."""
    for environment in environments:
        result = against_state(result, open_store(environment, repo).load(environment.name))
        anchor = anchor_for(repo, environment.spec.audit.anchor, environment.spec.aws)
        result = anchor.check(result)
    return result


def _print_verdicts(results: list[VerifyResult | S3VerifyResult]) -> None:
    out, err = console_for(), console_for(err=True)
    for result in results:
        if isinstance(result, S3VerifyResult):
            if result.ok:
                detail = (
                    f"{result.objects} objects, {result.lines} events, head {result.head}"
                    if result.objects
                    else "no objects yet"
                )
                out.print(f"{result.sink}: ok ({detail})", markup=False)
            else:
                err.print(f"{result.where}: {result.reason}", style="bold red", markup=False)
            continue
        if result.ok:
            detail = f"{result.lines} lines, head {result.head}" if result.lines else "empty"
            if not result.path.exists():
                detail = "no log yet"
            out.print(f"{result.path}: ok ({detail})", markup=False)
        else:
            err.print(
                f"{result.path}:{result.first_bad_line}: {result.reason}",
                style="bold red",
                markup=False,
            )


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
