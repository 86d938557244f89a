"""Audit events (docs/security.md, "Audit integrity"): what plan, apply, drift, check and sync
record, and where.

Commands use an `Auditor` bound to the control repo and the environment:

    auditor = Auditor.for_environment(repo, environment)
    auditor.emit(APPLY_SUCCEEDED, "retail/order-fulfillment", {"digest": d, "action": "update"},
                 classification=workflow.metadata.classification)

`record(event, sinks, repo=repo)` is the underlying seam: it writes one (already redacted)
event to every sink of the environment, `audit.sinks`, or to `.cpl/audit/<env>.jsonl` when
none is configured. File sinks are hash-chained JSON Lines (`filesink.py`); HTTP sinks POST
structured-mode CloudEvents through a local spool (`httpsink.py`), so an unreachable
collector delays events but never loses them; S3 sinks write the chain as write-once objects
through a spool the same way (`s3sink.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.audit.anchor import Anchor, anchor_for
from controlplane.audit.events import (
    ACCESS_DENIED,
    APPLY_FAILED,
    APPLY_STARTED,
    APPLY_SUCCEEDED,
    CHECK_DENIED,
    CHECK_PASSED,
    DLQ_PURGED,
    DLQ_REPLAYED,
    DRIFT_COMPLETED,
    DRIFT_DETECTED,
    GRANT_APPROVED,
    GRANT_REQUESTED,
    GRANT_REVOKED,
    PLAN_CREATED,
    RUN_STARTED,
    SIGNAL_ACCEPTED,
    SIGNAL_REFUSED,
    SYNC_FAILED,
    SYNC_SUCCEEDED,
    WAIVER_USED,
    AuditError,
    AuditEvent,
    make_event,
    redact,
)
from controlplane.audit.filesink import AuditLogCorrupt, FileSink
from controlplane.audit.httpsink import FlushResult, HttpSink, check_url, spool_dir_for
from controlplane.audit.s3sink import S3Sink
from controlplane.audit.s3store import S3Location, s3_client
from controlplane.audit.verify import VerifyResult, verify
from controlplane.spec.environment import (
    AuditAnchor,
    AwsSettings,
    Environment,
    Sink,
    confine_to_repo,
)

__all__ = [
    "ACCESS_DENIED",
    "APPLY_FAILED",
    "APPLY_STARTED",
    "APPLY_SUCCEEDED",
    "CHECK_DENIED",
    "CHECK_PASSED",
    "DLQ_PURGED",
    "DLQ_REPLAYED",
    "DRIFT_COMPLETED",
    "DRIFT_DETECTED",
    "GRANT_APPROVED",
    "GRANT_REQUESTED",
    "GRANT_REVOKED",
    "PLAN_CREATED",
    "RUN_STARTED",
    "SIGNAL_ACCEPTED",
    "SIGNAL_REFUSED",
    "SYNC_FAILED",
    "SYNC_SUCCEEDED",
    "WAIVER_USED",
    "AuditError",
    "AuditEvent",
    "AuditLogCorrupt",
    "Auditor",
    "FileSink",
    "FlushResult",
    "HttpSink",
    "Recorded",
    "S3Sink",
    "VerifyResult",
    "default_log_path",
    "flush",
    "log_paths",
    "make_event",
    "open_sinks",
    "record",
    "redact",
    "s3_sinks",
    "verify",
]

AuditSink = FileSink | HttpSink | S3Sink

# One HttpSink per (url, spool) for the life of the process, so its cool-down after a failed
# delivery spans every event a command records.
_HTTP_SINKS: dict[tuple[str, Path], HttpSink] = {}
_S3_SINKS: dict[tuple[str, Path, str], S3Sink] = {}
DEFAULT_S3_TIMEOUT = 5.0  # seconds to connect, and to wait for an answer, per S3 call


@dataclass(frozen=True)
class Recorded:
    """An event written to every sink; `pending` of them still wait in an HTTP spool."""

    event: AuditEvent
    pending: int = 0
    warnings: list[str] = field(default_factory=list)


def default_log_path(repo: Path, environment: str) -> Path:
    return repo / ".cpl" / "audit" / f"{environment}.jsonl"


def open_sinks(
    repo: Path,
    environment: str,
    sinks: Sequence[Sink] | None = None,
    aws: AwsSettings | None = None,
    anchor: Anchor | None = None,
) -> list[AuditSink]:
    """The writers for an environment's `audit.sinks` (file paths relative to the repo; S3
    reached per the sink's region / endpoint, else the environment's `aws`); file sinks
    anchor their heads with `anchor` when given."""
    if not sinks:
        return [FileSink(default_log_path(repo, environment), anchor)]
    opened: list[AuditSink] = []
    for index, sink in enumerate(sinks):
        if sink.file is not None:
            pointer = f"/spec/audit/sinks/{index}/file"
            path = confine_to_repo(repo, sink.file, sink.allow_outside_repo, environment, pointer)
            opened.append(FileSink(path, anchor))
        elif sink.http is not None:
            url = check_url(sink.http)
            spool = spool_dir_for(repo, environment, url).resolve()
            opened.append(_HTTP_SINKS.setdefault((url, spool), HttpSink(url, spool)))
        elif sink.s3 is not None:
            opened.append(_s3_sink(repo, environment, sink, aws))
    return opened


def _s3_sink(repo: Path, environment: str, sink: Sink, aws: AwsSettings | None) -> S3Sink:
    location = S3Location.parse(str(sink.s3), environment)
    spool = spool_dir_for(repo, environment, location.url).resolve()
    # The settings are part of the key: a changed endpoint gets a new client.
    key = (location.url, spool, repr((sink, aws)))
    if key not in _S3_SINKS:

        def client() -> object:
            return s3_client(sink, aws, DEFAULT_S3_TIMEOUT)

        made = S3Sink(location, spool, client, retention=sink.retention)
        _S3_SINKS[key] = made
    return _S3_SINKS[key]


def s3_sinks(repo: Path, environment: Environment) -> list[S3Sink]:
    """The environment's S3 sinks (what `cpl audit verify` and `export` read)."""
    return [
        sink
        for sink in open_sinks(
            repo, environment.name, environment.spec.audit.sinks, environment.spec.aws
        )
        if isinstance(sink, S3Sink)
    ]


def log_paths(repo: Path, environment: Environment | str) -> list[Path]:
    """The hash-chained log files an environment writes (what `cpl audit verify` checks)."""
    if isinstance(environment, str):
        return [default_log_path(repo, environment)]
    return [
        sink.path
        for sink in open_sinks(repo, environment.name, environment.spec.audit.sinks)
        if isinstance(sink, FileSink)
    ]


def record(
    event: AuditEvent,
    sinks: Sequence[Sink] | None = None,
    *,
    repo: Path,
    aws: AwsSettings | None = None,
    anchor: Anchor | None = None,
) -> Recorded:
    """Write `event` to every sink (see module doc).

    Every sink gets the event even if an earlier one failed; then an AuditError names each
    failure. An HTTP collector being down is not a failure: the event is spooled, counted
    in `pending`, and a warning says so.
    """
    failures: list[str] = []
    warnings: list[str] = []
    pending = 0
    for sink in open_sinks(repo, event.environment, sinks, aws, anchor):
        try:
            result = sink.write(event)
        except AuditError as exc:
            failures.append(exc.message)
            continue
        except OSError as exc:
            failures.append(f"{sink!r}: {exc}")
            continue
        if isinstance(sink, FileSink) and sink.anchor_problem:
            warnings.append(
                f"audit log {sink.path}: event written, its checkpoint not ({sink.anchor_problem})"
            )
        if isinstance(sink, FileSink) or not isinstance(result, FlushResult) or not result.pending:
            continue
        pending += result.pending
        what = "audit collector" if isinstance(sink, HttpSink) else "audit sink"
        warnings.append(
            f"{what} {sink.shown_url}: {result.pending} event(s) spooled for later "
            f"delivery ({result.error})"
        )
    if failures:
        raise AuditError("could not record audit event " + event.id + ": " + "; ".join(failures))
    return Recorded(event=event, pending=pending, warnings=warnings)


def flush(repo: Path, environment: Environment) -> list[FlushResult]:
    """Deliver what waits in the environment's HTTP and S3 spools (`cpl audit flush`)."""
    return [
        sink.flush()
        for sink in open_sinks(
            repo, environment.name, environment.spec.audit.sinks, environment.spec.aws
        )
        if isinstance(sink, HttpSink | S3Sink)
    ]


class Auditor:
    """Records events for one environment of one control repo."""

    def __init__(
        self,
        repo: Path,
        environment: str,
        sinks: Sequence[Sink] | None = None,
        *,
        repo_name: str | None = None,
        aws: AwsSettings | None = None,
        anchor: AuditAnchor | None = None,
    ) -> None:
        self.repo = repo
        self.environment = environment
        self.sinks = list(sinks or [])
        self.repo_name = repo_name or repo.resolve().name
        self.aws = aws
        self.anchor = anchor_for(repo, anchor, aws)

    @classmethod
    def for_environment(cls, repo: Path, environment: Environment) -> Auditor:
        audit = environment.spec.audit
        return cls(
            repo, environment.name, audit.sinks, aws=environment.spec.aws, anchor=audit.anchor
        )

    def emit(
        self,
        type: str,
        subject: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        classification: str | None = None,
    ) -> Recorded:
        """Make (and redact) an event and record it; `classification` is the workflow's."""
        event = make_event(
            type,
            subject,
            data,
            environment=self.environment,
            repo_name=self.repo_name,
            classification=classification,
        )
        return record(event, self.sinks, repo=self.repo, aws=self.aws, anchor=self.anchor)

    @contextlib.contextmanager
    def batch(self) -> Iterator[list[FlushResult]]:
        """Collect the events emitted inside the block into one S3 object per S3 sink,
        written when the block ends (file and HTTP sinks are written at once, as always).

        The list it yields gets the S3 flush results when the block ends: one with
        `pending` means S3 was away and the events wait in the spool.
        """
        sinks = [
            sink
            for sink in open_sinks(self.repo, self.environment, self.sinks, self.aws)
            if isinstance(sink, S3Sink)
        ]
        results: list[FlushResult] = []
        for sink in sinks:
            sink.deferred += 1
        try:
            yield results
        finally:
            for sink in sinks:
                sink.deferred -= 1
            results.extend(sink.flush() for sink in sinks if not sink.deferred)
