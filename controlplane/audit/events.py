"""Audit events (docs/security.md, "Audit integrity"): CloudEvents 1.0, built with the
`cloudevents` SDK's core API.

Redaction happens here, once, before an event reaches any sink:

* events about a pii/phi/pci-classified workflow keep only an allow-list of identifier keys
  (ids, digests, versions, actions, rule ids, counts ...): anything else (inputs, outputs,
  parameter values, diff values, free-text messages) is dropped structurally and only the
  number of dropped fields is recorded (`redacted`);
* every event, regulated or not, goes through the secret scrubber: values under keys that
  name a secret (password, token, api key ...) and strings that look like a credential
  (AWS access key ids, PEM private keys, GitHub tokens ...; `controlplane.redaction` holds
  the one definition) become "[redacted]".
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from cloudevents.core.v1.event import CloudEvent

from controlplane.errors import CplError
from controlplane.redaction import is_secret_key, looks_like_secret
from controlplane.spec.model import REGULATED_CLASSES

SPECVERSION: Final = "1.0"
DATACONTENTTYPE: Final = "application/json"
REDACTED: Final = "[redacted]"

# `dev.cpl.<noun>.<verb>`; the types cpl's commands emit are listed below, others may follow.
TYPE_PATTERN: Final = re.compile(r"^dev\.cpl\.[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*$")
SUBJECT_PATTERN: Final = re.compile(r"^[a-z][a-z0-9-]{0,30}/[a-z][a-z0-9-]{0,62}$")

PLAN_CREATED: Final = "dev.cpl.plan.created"
APPLY_STARTED: Final = "dev.cpl.apply.started"
APPLY_SUCCEEDED: Final = "dev.cpl.apply.succeeded"
APPLY_FAILED: Final = "dev.cpl.apply.failed"
DRIFT_COMPLETED: Final = "dev.cpl.drift.completed"
DRIFT_DETECTED: Final = "dev.cpl.drift.detected"
CHECK_PASSED: Final = "dev.cpl.check.passed"
CHECK_DENIED: Final = "dev.cpl.check.denied"
SYNC_SUCCEEDED: Final = "dev.cpl.sync.succeeded"
SYNC_FAILED: Final = "dev.cpl.sync.failed"
WAIVER_USED: Final = "dev.cpl.waiver.used"
# Evidence of access (docs/security.md, "Evidence"): who started, signalled and operated what.
# `actor` is the verified principal (`sub`), or the self-declared name where the environment
# declares no identity (`verified: false`); `grant` names the just-in-time grant that allowed it.
RUN_STARTED: Final = "dev.cpl.run.started"
SIGNAL_ACCEPTED: Final = "dev.cpl.signal.accepted"
SIGNAL_REFUSED: Final = "dev.cpl.signal.refused"
ACCESS_DENIED: Final = "dev.cpl.access.denied"
GRANT_REQUESTED: Final = "dev.cpl.grant.requested"
GRANT_APPROVED: Final = "dev.cpl.grant.approved"
GRANT_REVOKED: Final = "dev.cpl.grant.revoked"
DLQ_REPLAYED: Final = "dev.cpl.dlq.replayed"
DLQ_PURGED: Final = "dev.cpl.dlq.purged"

# The only data keys an event about a regulated workflow may carry, at any depth. Values under
# them are identifiers, counts or outcomes; containers under them are filtered the same way.
REGULATED_KEYS: Final = frozenset(
    {
        # who / what / where
        "id", "ids", "runId", "workflow", "workflows", "tenant", "name", "version",
        "previousVersion", "target", "targets", "engine", "resource", "environment",
        "classification", "compliance", "actor", "kind", "backend", "tenants",
        # access (actor, roles, the operation, signal or step, the grant that allowed it)
        "verified", "issuer", "roles", "role", "operation", "signal", "step", "approved",
        "grant", "expires", "source",
        # provenance
        "digest", "planDigest", "policyDigest", "specDigest", "stateDigest", "commit", "base",
        "serial",
        # decisions and changes
        "action", "actions", "status", "outcome", "ok", "exitCode", "code", "errorCode",
        "rule", "rules", "ruleId", "severity", "enforcement", "waived", "waiver", "waivers",
        "changes", "violations", "items", "diff", "path", "paths", "drifted", "compliant",
        "partial", "unreachable", "transient", "attempt", "attempts", "duration", "durationMs",
        # counts (summaries of plan, check and drift)
        "summary", "counts", "count", "total", "create", "update", "delete", "noop", "managed",
        "in_sync", "inSync", "modified", "missing", "unmanaged", "coverage", "denied",
        "warnings", "breakingChanges", "applied", "deleted", "failed", "skipped", "pending",
        "succeeded",
    }
)  # fmt: skip


class AuditError(CplError):
    """An audit event or log is invalid, or a sink cannot take an event (exit 1)."""


@dataclass(frozen=True)
class AuditEvent:
    """One audit event, already redacted; `to_cloudevent` gives its CloudEvents 1.0 form.

    `id` stays the same however often the event is written or sent: receivers dedupe by it.
    """

    type: str
    subject: str | None
    data: dict[str, Any]
    environment: str
    repo: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        if not TYPE_PATTERN.match(self.type):
            raise AuditError(f"audit event type '{self.type}' is not dev.cpl.<noun>.<verb>")
        if self.subject is not None and not SUBJECT_PATTERN.match(self.subject):
            raise AuditError(f"audit event subject '{self.subject}' is not <tenant>/<workflow>")
        if self.time.tzinfo is None:
            raise AuditError("audit event time must be timezone-aware")

    @property
    def source(self) -> str:
        """`cpl://<repo>/<environment>` (each part percent-encoded)."""
        return f"cpl://{quote(self.repo, safe='')}/{quote(self.environment, safe='')}"

    def attributes(self, extensions: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The CloudEvents context attributes (plus extension attributes, if given)."""
        attributes: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.astimezone(dt.UTC),
        }
        if self.subject is not None:
            attributes["subject"] = self.subject
        attributes["datacontenttype"] = DATACONTENTTYPE
        attributes.update(extensions or {})
        return attributes

    def to_cloudevent(self, extensions: Mapping[str, str] | None = None) -> CloudEvent:
        """The event as the SDK's CloudEvent (validated by the SDK)."""
        return CloudEvent(attributes=self.attributes(extensions), data=dict(self.data))


def make_event(
    type: str,
    subject: str | None,
    data: Mapping[str, Any] | None,
    *,
    environment: str,
    repo_name: str,
    classification: str | None = None,
) -> AuditEvent:
    """A redacted audit event: identifiers only for regulated workflows, no secrets ever."""
    return AuditEvent(
        type=type,
        subject=subject,
        data=redact(data or {}, classification),
        environment=environment,
        repo=repo_name,
    )


def redact(data: Mapping[str, Any], classification: str | None = None) -> dict[str, Any]:
    """The data an event may carry for a workflow of this classification (see module doc)."""
    document = _plain(data)
    if classification in REGULATED_CLASSES:
        dropped = [0]
        document = _identifiers_only(document, dropped)
        if dropped[0]:
            document["redacted"] = dropped[0]
    scrubbed: dict[str, Any] = _scrub(document)
    return scrubbed


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-native copy (dates, paths, enums become strings); keys become strings."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return plain


def _identifiers_only(document: dict[str, Any], dropped: list[int]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in document.items():
        if key not in REGULATED_KEYS:
            dropped[0] += 1
            continue
        kept[key] = _identifiers_in(value, dropped)
    return kept


def _identifiers_in(value: Any, dropped: list[int]) -> Any:
    if isinstance(value, dict):
        return _identifiers_only(value, dropped)
    if isinstance(value, list):
        return [_identifiers_in(item, dropped) for item in value]
    return value


def _scrub(value: Any, key: str = "") -> Any:
    if key and is_secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: _scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str) and looks_like_secret(value):
        return REDACTED
    return value
