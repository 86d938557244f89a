"""Generate a corpus of realistic workflow specs for benchmarks and load tests.

    python -m bench.corpus DIR N [--seed S]

writes N `kind: Workflow` documents (`cpl schema --kind Workflow`, valid under the checks of
docs/validation.md) to
`DIR/workflows/<tenant>/<name>.yaml` and an environment, `DIR/environments/local.yaml`, whose
targets select every generated workflow and which binds every activity, queue, key and store
the generator uses. Workflows mix sizes (5 to 40 steps), both forms (state machine and DAG),
nested parallel branches and maps, structured choice conditions, retries, catches, sagas,
approvals and schedules, and are compliant with the built-in policy library by construction.

Each workflow is generated from its own random stream derived from (seed, index), so the
output is deterministic for a seed and the first N workflows of a larger corpus are the same
as those of a smaller one.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
Exit = tuple[Doc, str]  # a step and the field (`next`, `default`) that names its successor

MIN_STEPS = 5
MAX_STEPS = 40
_MAX_DEPTH = 2
_REGULATED = frozenset({"pii", "phi", "pci"})


@dataclass(frozen=True)
class Tenant:
    """A business unit: the activities it calls and the shape of its workflows."""

    name: str
    domains: dict[str, tuple[str, ...]]  # activity domain -> operations
    subjects: tuple[str, ...]  # nouns for workflow names
    id_fields: tuple[str, ...]  # the business keys runs carry
    classifications: tuple[str, ...]
    compliance: tuple[str, ...]
    timezones: tuple[str, ...]

    @cached_property
    def activities(self) -> tuple[tuple[str, str], ...]:
        """(activity, operation) for every activity of the tenant."""
        return tuple(
            (f"{domain}.{operation}", operation)
            for domain, operations in self.domains.items()
            for operation in operations
        )


TENANTS: tuple[Tenant, ...] = (
    Tenant(
        name="retail",
        domains={
            "inventory": ("reserve", "release", "fetch-stock", "update-stock", "count-cycle"),
            "payments": ("authorize", "capture", "refund", "void"),
            "shipping": ("create-shipment", "cancel-shipment", "print-label", "track"),
            "pricing": ("extract-prices", "merge-feed", "publish-feed", "archive-feed"),
            "catalog": ("import-products", "enrich", "publish", "validate"),
            "notifications": ("send-email", "send-sms", "send-push"),
            "loyalty": ("award-points", "revoke-points", "recompute-tier"),
        },
        subjects=("order", "return", "cart", "catalog", "price-feed", "stock", "promotion"),
        id_fields=("orderId", "cartId", "returnId", "sku", "feedDate"),
        classifications=("internal", "confidential", "pii", "pci"),
        compliance=("gdpr", "pci-dss"),
        timezones=("Europe/Berlin", "Europe/Amsterdam", "Europe/London"),
    ),
    Tenant(
        name="health",
        domains={
            "patients": ("register", "merge", "update-demographics"),
            "insurance": ("verify-eligibility", "estimate-cost", "queue-manual-check"),
            "claims": ("load-pending", "adjudicate", "reject", "queue-review", "remit"),
            "labs": ("fetch-results", "normalize", "attach-to-chart", "flag-critical"),
            "appointments": ("list-upcoming", "book", "cancel", "record-reminders"),
            "charts": ("create", "append-note", "close-encounter"),
            "notifications": ("send-email", "send-sms", "send-push"),
        },
        subjects=("intake", "claim", "lab-result", "appointment", "referral", "encounter"),
        id_fields=("patientId", "claimId", "encounterId", "messageId", "requestId"),
        classifications=("phi", "confidential", "internal"),
        compliance=("hipaa", "sox"),
        timezones=("America/New_York", "America/Chicago", "America/Los_Angeles"),
    ),
    Tenant(
        name="finance",
        domains={
            "ledger": ("lock-period", "run-accruals", "post-journal", "close-period"),
            "payouts": ("load-batch", "screen-sanctions", "send", "hold"),
            "treasury": ("fetch-statements", "reconcile-account", "open-case"),
            "fx": ("fetch-rates", "store-rates", "revalue"),
            "reports": ("generate-financials", "publish-reconciliation", "archive"),
            "invoices": ("ingest", "match-po", "approve", "schedule-payment"),
        },
        subjects=("close", "payout", "reconciliation", "invoice", "fx-refresh", "accrual"),
        id_fields=("batchId", "period", "invoiceId", "businessDate", "accountId"),
        classifications=("confidential", "internal", "pci"),
        compliance=("sox", "pci-dss"),
        timezones=("America/New_York", "Europe/London", "Asia/Singapore"),
    ),
    Tenant(
        name="logistics",
        domains={
            "fleet": ("assign-vehicle", "release-vehicle", "fetch-telemetry"),
            "routing": ("optimize-routes", "publish-routes", "recompute-eta"),
            "carrier": ("book-pickup", "cancel-pickup", "fetch-rates"),
            "warehouse": ("allocate-dock", "pick-wave", "pack", "release-dock"),
            "customs": ("file-declaration", "fetch-status", "pay-duties"),
            "notifications": ("send-email", "send-sms", "send-push"),
        },
        subjects=("dispatch", "route-plan", "pickup", "customs-entry", "wave", "delivery"),
        id_fields=("shipmentId", "routeId", "waveId", "declarationId", "planDate"),
        classifications=("internal", "confidential", "pii"),
        compliance=("gdpr", "sox"),
        timezones=("Europe/Paris", "Asia/Tokyo", "Australia/Sydney"),
    ),
    Tenant(
        name="media",
        domains={
            "ingest": ("fetch-asset", "checksum", "register-asset"),
            "transcode": ("probe", "encode-rendition", "package-hls"),
            "rights": ("check-territory", "record-license", "expire-license"),
            "publishing": ("publish-asset", "unpublish-asset", "purge-cdn"),
            "notifications": ("send-email", "send-sms", "send-push"),
        },
        subjects=("asset", "rendition", "license", "episode", "playlist"),
        id_fields=("assetId", "episodeId", "licenseId", "jobId"),
        classifications=("internal", "confidential", "public"),
        compliance=("sox",),
        timezones=("America/Los_Angeles", "Europe/Dublin", "Asia/Seoul"),
    ),
)

# Activities that call systems outside our control: tasks using them set a circuitBreaker.
EXTERNAL_ACTIVITIES = frozenset(
    {
        "payments.authorize",
        "payments.capture",
        "insurance.verify-eligibility",
        "payouts.screen-sanctions",
        "fx.fetch-rates",
        "carrier.book-pickup",
        "carrier.fetch-rates",
        "customs.file-declaration",
        "customs.fetch-status",
    }
)

_CRONS = ("*/15 * * * *", "5 * * * *", "0 2 * * *", "30 1 * * 1-5", "0 6 1 * *", "0 3 * * 0")
_OVERLAPS = ("skip", "buffer-one", "allow-all")
_FIELDS = ("status", "region", "channel", "priority", "tier", "currency")
_NUMBERS = ("total", "count", "amount", "score", "attempts", "weight")
_STATUSES = ("open", "pending", "approved", "rejected", "held", "complete")
_ROLES = ("operator", "lead", "manager", "auditor", "approver")
_ENGINES = ("stepfunctions", "temporal", "argo")
# Temporal keeps histories per namespace: one retention for every workflow it runs.
_TEMPORAL_RETENTION = "30d"


def generate(directory: Path, count: int, seed: int = 0) -> list[Path]:
    """Write `count` workflow specs and `environments/local.yaml` under `directory`.

    Returns the workflow files, in generation order.
    """
    written: list[Path] = []
    created: set[Path] = set()
    for index in range(count):
        document = generate_workflow(index, seed)
        meta = document["metadata"]
        folder = directory / "workflows" / meta["tenant"]
        if folder not in created:
            folder.mkdir(parents=True, exist_ok=True)
            created.add(folder)
        path = folder / f"{meta['name']}.yaml"
        path.write_text(dump_yaml(document), encoding="utf-8")
        written.append(path)
    environments = directory / "environments"
    environments.mkdir(parents=True, exist_ok=True)
    (environments / "local.yaml").write_text(
        yaml.safe_dump(environment(), sort_keys=False), encoding="utf-8"
    )
    return written


def generate_workflow(index: int, seed: int = 0) -> Doc:
    """The `index`-th workflow document of the corpus for `seed`."""
    rng = random.Random(f"cpl-corpus/{seed}/{index}")
    return _WorkflowBuilder(rng, index).build()


def environment() -> Doc:
    """A `local` environment whose targets select every generated workflow."""
    activities: Doc = {}
    for domain, operation in sorted(_all_activities()):
        activity = f"{domain}.{operation}"
        binding: Doc = {
            "stepfunctions": {
                "resource": f"arn:aws:lambda:us-east-1:123456789012:function:{domain}-{operation}"
            },
            "temporal": {"activity": _pascal(activity), "taskQueue": domain},
            "argo": {"image": f"ghcr.io/acme/{domain}-worker:1.0.0", "command": [operation]},
        }
        if activity in EXTERNAL_ACTIVITIES:
            binding["external"] = True
        activities[activity] = binding
    tenants = [tenant.name for tenant in TENANTS]
    return {
        "apiVersion": "cpl.dev/v1",
        "kind": "Environment",
        "metadata": {"name": "local"},
        "spec": {
            "tier": "development",
            "targets": [
                {
                    "name": "sfn-local",
                    "engine": "stepfunctions",
                    "region": "us-east-1",
                    "endpoint": "http://127.0.0.1:4566",
                    "roleArn": "arn:aws:iam::123456789012:role/cpl-sfn",
                    "regulated": True,
                    "select": {"labels": {"runtime": "stepfunctions"}},
                },
                {
                    "name": "temporal-local",
                    "engine": "temporal",
                    "address": "127.0.0.1:7233",
                    "namespace": "cpl-bench",
                    "taskQueue": "cpl-interpreter",
                    "regulated": True,
                    "select": {"labels": {"runtime": "temporal"}},
                },
                {
                    "name": "argo-local",
                    "engine": "argo",
                    "delivery": "gitops",
                    "path": "deploy/argo",
                    "namespace": "workflows",
                    "regulated": False,
                    "select": {"labels": {"kind": "batch"}},
                },
            ],
            "bindings": {
                "activities": activities,
                "queues": {
                    f"{name}-dlq": {
                        "stepfunctions": (
                            f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}-dlq"
                        ),
                        "temporal": f"{name}-dlq",
                        "argo": f"{name}-dlq",
                    }
                    for name in tenants
                },
                "keys": {
                    f"{name}-kms": {
                        "stepfunctions": f"arn:aws:kms:us-east-1:123456789012:alias/{name}",
                        "temporal": f"{name}-codec-v1",
                        "argo": f"{name}-kms",
                    }
                    for name in tenants
                },
                "stores": {"artifacts": {"url": "s3://cpl-bench-artifacts/workflows"}},
            },
            "policy": {"enforcement": "mandatory", "rules": {}, "data": {}},
            "deploy": {"backend": "direct", "state": ".cpl/state/local"},
            "audit": {"sinks": [{"file": ".cpl/audit/local.jsonl"}]},
        },
    }


def _all_activities() -> set[tuple[str, str]]:
    return {
        (domain, operation)
        for tenant in TENANTS
        for domain, operations in tenant.domains.items()
        for operation in operations
    }


def _pascal(activity: str) -> str:
    return "".join(part.capitalize() for part in activity.replace(".", "-").split("-"))


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.capitalize() for part in rest)


def _count_steps(steps: Sequence[Doc]) -> int:
    """Steps in a list, the steps of parallel branches and map iterations included."""
    total = 0
    for step in steps:
        total += 1
        for branch in step.get("branches", ()):
            total += _count_steps(branch["steps"])
        if step["type"] == "map":
            total += _count_steps(step["steps"])
    return total


def dump_yaml(document: Doc) -> str:
    """Block-style YAML for the plain data of a spec, keys in insertion order.

    The output loads back (`yaml.safe_load`) to exactly `document`. It is written by hand
    because PyYAML's representer is pure Python even with the libyaml emitter: `safe_dump`
    takes about five times as long, some 20 s for a 5,000-spec corpus.
    """
    out: list[str] = []
    _emit_mapping(document, "", out)
    out.append("")
    return "\n".join(out)


_PLAIN = re.compile(r"[A-Za-z$_][A-Za-z0-9 ._$/(),-]*[A-Za-z0-9._$/()-]|[A-Za-z$_]")
_UNIT = re.compile(r"\d+(?:ms|s|m|h|d|KiB|MiB|GiB)")
# Plain words YAML 1.1 (PyYAML) reads as booleans or null.
_RESERVED = frozenset({"yes", "no", "true", "false", "on", "off", "null", "y", "n"})


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float(value)
    return str(value)


def _float(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "." not in text:  # YAML 1.1 reads `1e-05` as a string: write `1.0e-05`
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0e{exponent}" if exponent else f"{mantissa}.0"
    return text


@lru_cache(maxsize=65536)
def _string(text: str) -> str:
    if _UNIT.fullmatch(text) or (_PLAIN.fullmatch(text) and text.lower() not in _RESERVED):
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _emit_value(head: str, value: object, pad: str, out: list[str]) -> None:
    if isinstance(value, dict) and value:
        out.append(head)
        _emit_mapping(value, pad, out)
    elif isinstance(value, list) and value:
        out.append(head)
        _emit_sequence(value, pad, out)
    elif isinstance(value, dict):
        out.append(f"{head} {{}}")
    elif isinstance(value, list):
        out.append(f"{head} []")
    else:
        out.append(f"{head} {_scalar(value)}")


def _emit_mapping(mapping: Doc, pad: str, out: list[str]) -> None:
    for key, value in mapping.items():
        _emit_value(f"{pad}{_scalar(key)}:", value, pad + "  ", out)


def _emit_sequence(items: list[Any], pad: str, out: list[str]) -> None:
    for item in items:
        if isinstance(item, dict) and item:
            first = len(out)
            _emit_mapping(item, pad + "  ", out)
            out[first] = f"{pad}- {out[first][len(pad) + 2 :]}"
        else:
            _emit_value(f"{pad}-", item, pad + "  ", out)


@dataclass
class _Block:
    """A piece of a state machine: its first step, its steps, and the edges left open."""

    entry: str
    steps: list[Doc]
    exits: list[Exit]
    extras: list[Doc]  # steps off the main path: handlers, fail steps, compensations


class _WorkflowBuilder:
    """Builds one workflow document from a random stream."""

    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.index = index
        self.tenant = rng.choice(TENANTS)
        self.classification = rng.choice(self.tenant.classifications)
        self.compliance = sorted(
            {c for c in self.tenant.compliance if rng.random() < 0.5}
            | ({"pci-dss"} if self.classification == "pci" else set())
        )
        self.engine = self._pick_engine()
        self.dag = rng.random() < (0.7 if self.engine == "argo" else 0.15)
        self.scheduled = rng.random() < (0.7 if self.engine == "argo" else 0.3)
        self.saga = not self.dag and self.engine != "argo" and rng.random() < 0.2
        self.id_field = rng.choice(self.tenant.id_fields)
        self.serial = 0
        self.compensations = 0

    def _pick_engine(self) -> str:
        regulated = self.classification in _REGULATED or "hipaa" in self.compliance
        weights = (0.5, 0.5, 0.0) if regulated else (0.45, 0.35, 0.2)
        return self.rng.choices(_ENGINES, weights=weights)[0]

    # --- the document -----------------------------------------------------------------

    def build(self) -> Doc:
        rng = self.rng
        budget = rng.randint(MIN_STEPS, MAX_STEPS)
        body: Doc = {}
        if not self.scheduled:
            body["input"] = {"schema": self._input_schema(), "maxInlineBytes": "128KiB"}
        body["timeout"] = rng.choice(("15m", "1h", "2h", "6h", "1d"))
        body["retention"] = self._retention()
        if self.scheduled:
            body["schedule"] = {
                "cron": rng.choice(_CRONS),
                "timezone": rng.choice(self.tenant.timezones),
                "overlap": rng.choice(_OVERLAPS),
            }
        body["defaults"] = {"timeout": rng.choice(("30s", "1m", "5m")), "retry": self._retry()}
        if self.dag:
            body["steps"] = self._dag(budget)
        else:
            steps = self._machine(budget, depth=0, top=True)
            body["start"] = steps[0]["name"]
            body["steps"] = steps
        body["onError"] = {"deadLetter": f"{self.tenant.name}-dlq"}
        if self.compensations:
            body["onError"]["compensate"] = True
        body["slo"] = {
            "completionTime": {"p95": rng.choice(("5m", "10m", "30m", "1h"))},
            "successRate": rng.choice((0.99, 0.995, 0.999)),
        }
        body["alerts"] = [{"metric": "failureRate", "above": 0.02, "window": "15m"}]
        if rng.random() < 0.4:
            body["alerts"].append({"metric": "retries", "above": 100, "window": "1h"})
        team = f"{self.tenant.name}-{rng.choice(_ROLES)}"
        body["access"] = {
            "start": {"roles": [f"{self.tenant.name}-service"]},
            "signal": {"roles": [team]},
            "admin": {"roles": ["sre"], "jit": {"maxDuration": rng.choice(("30m", "1h", "4h"))}},
        }
        # Argo has no payload encryption: only regulated data (never sent to Argo) needs a key.
        if self.classification in _REGULATED or (self.engine != "argo" and rng.random() < 0.3):
            body["security"] = {
                "encryption": {"key": f"{self.tenant.name}-kms"},
                "isolation": "regulated" if self.classification in _REGULATED else "standard",
            }
        if self.engine == "argo" and rng.random() < 0.5:
            body["payload"] = {"offload": {"store": "artifacts", "threshold": "256KiB"}}
        return {
            "apiVersion": "cpl.dev/v1",
            "kind": "Workflow",
            "metadata": self._metadata(budget),
            "spec": body,
        }

    def _metadata(self, budget: int) -> Doc:
        rng = self.rng
        subject = rng.choice(self.tenant.subjects)
        verb = rng.choice(("process", "sync", "export", "review", "reconcile", "dispatch"))
        labels = {"domain": rng.choice(list(self.tenant.domains)), "size": str(budget)}
        if self.engine == "argo":
            labels["kind"] = "batch"
        else:
            labels["runtime"] = self.engine
        return {
            "name": f"{subject}-{verb}-{self.index:05d}",
            "tenant": self.tenant.name,
            "version": f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            "owner": f"team-{subject}",
            "description": f"Generated {verb} workflow for {subject}s ({budget} steps).",
            "labels": labels,
            "classification": self.classification,
            "compliance": self.compliance,
        }

    def _input_schema(self) -> Doc:
        properties: Doc = {self.id_field: {"type": "string", "minLength": 1}}
        for field in self.rng.sample(_FIELDS, 2):
            properties[field] = {"type": "string"}
        for field in self.rng.sample(_NUMBERS, 2):
            properties[field] = {"type": "number", "minimum": 0}
        properties["items"] = {"type": "array", "items": {"type": "object"}}
        return {"type": "object", "required": [self.id_field], "properties": properties}

    def _retention(self) -> str:
        if self.engine == "temporal":
            return _TEMPORAL_RETENTION
        if "gdpr" in self.compliance and self.classification == "pii":
            return self.rng.choice(("14d", "30d"))
        return self.rng.choice(("30d", "90d", "180d", "365d"))

    def _retry(self) -> Doc:
        rng = self.rng
        initial = rng.choice((1, 2, 5))
        retry: Doc = {
            "maxAttempts": rng.randint(2, 6),
            "initialInterval": f"{initial}s",
            "backoffRate": rng.choice((1.5, 2.0, 3.0)),
            "maxInterval": f"{initial * rng.choice((10, 30, 60))}s",
            "jitter": "full",
        }
        if rng.random() < 0.4:
            retry["nonRetryable"] = [rng.choice(("InvalidInput", "NotFound", "Conflict"))]
        return retry

    # --- names and values -------------------------------------------------------------

    def _name(self, stem: str) -> str:
        self.serial += 1
        return f"{stem}-{self.serial}"

    def _condition(self, depth: int = 0) -> Doc:
        rng = self.rng
        roll = rng.random()
        if depth < 2 and roll < 0.15:
            return {"all": [self._condition(depth + 1) for _ in range(rng.randint(2, 3))]}
        if depth < 2 and roll < 0.25:
            return {"any": [self._condition(depth + 1) for _ in range(rng.randint(2, 3))]}
        if depth < 2 and roll < 0.3:
            return {"not": self._condition(depth + 1)}
        operator = rng.choice(("eq", "ne", "in", "exists", "matches", "gt", "ge", "lt", "le"))
        if operator in ("gt", "ge", "lt", "le"):
            return {"path": f"$.{rng.choice(_NUMBERS)}", operator: rng.choice((0, 10, 100, 1000))}
        path = f"$.{rng.choice(_FIELDS)}"
        if operator == "in":
            return {"path": path, "in": rng.sample(_STATUSES, 2)}
        if operator == "exists":
            return {"path": path, "exists": rng.random() < 0.8}
        if operator == "matches":
            return {"path": path, "matches": "^[A-Z]{2}-[0-9]+$"}
        return {"path": path, operator: rng.choice(_STATUSES)}

    # --- steps ------------------------------------------------------------------------

    def _task(self) -> Doc:
        rng = self.rng
        activity, operation = rng.choice(self.tenant.activities)
        self.serial += 1
        step: Doc = {
            "name": f"{operation}-{self.serial}",
            "type": "task",
            "activity": activity,
            "idempotencyKey": f"$.{self.id_field}",
        }
        if rng.random() < 0.3:
            step["timeout"] = rng.choice(("20s", "2m", "10m"))
        if self.engine == "temporal" and rng.random() < 0.2:
            step["heartbeat"] = "15s"
        if rng.random() < 0.25:
            step["retry"] = self._retry()
        if activity in EXTERNAL_ACTIVITIES:
            step["circuitBreaker"] = {"failureThreshold": rng.randint(3, 10), "resetTimeout": "1m"}
        field = rng.choice(_FIELDS + _NUMBERS)
        step["parameters"] = {
            self.id_field: f"$.{self.id_field}",
            field: f"$.{field}",
            "mode": rng.choice(("sync", "async", "dry-run")),
        }
        step["resultPath"] = f"$.{_camel(operation)}{self.serial}"
        return step

    def _block(self, remaining: int, depth: int, top: bool) -> _Block:
        """A random block that fits in `remaining` steps."""
        builders: list[Callable[[int, int], _Block]] = [self._task_block] * 3
        builders.append(self._wait_block)
        if remaining >= 2:
            builders += [self._choice_block] * 2
            if depth < _MAX_DEPTH:
                builders.append(self._map_block)
            if top and self.saga:
                builders += [self._saga_block] * 2
        if remaining >= 3:
            builders.append(self._catching_task_block)
            if self.engine == "temporal":
                builders.append(self._approval_block)
            if depth < _MAX_DEPTH:
                builders.append(self._parallel_block)
        return self.rng.choice(builders)(remaining, depth)

    def _task_block(self, remaining: int, depth: int) -> _Block:
        step = self._task()
        return _Block(step["name"], [step], [(step, "next")], [])

    def _catching_task_block(self, remaining: int, depth: int) -> _Block:
        step = self._task()
        handler = self._task()
        failed = {
            "name": self._name("failed"),
            "type": "fail",
            "error": "HandledFailure",
            "cause": f"{step['activity']} failed and was handled by {handler['activity']}.",
        }
        handler["next"] = failed["name"]
        step["catch"] = [
            {"errors": ["Timeout", "*"], "next": handler["name"], "resultPath": "$.error"}
        ]
        return _Block(step["name"], [step], [(step, "next")], [handler, failed])

    def _saga_block(self, remaining: int, depth: int) -> _Block:
        step = self._task()
        undo = self._task()
        undo["name"] = self._name(f"undo-{step['name']}")
        undo["end"] = True
        step["compensation"] = undo["name"]
        self.compensations += 1
        return _Block(step["name"], [step], [(step, "next")], [undo])

    def _wait_block(self, remaining: int, depth: int) -> _Block:
        step: Doc = {"name": self._name("wait"), "type": "wait"}
        if self.rng.random() < 0.7:
            step["duration"] = self.rng.choice(("10s", "1m", "5m", "1h"))
        else:
            step["until"] = "$.notBefore"
        return _Block(step["name"], [step], [(step, "next")], [])

    def _choice_block(self, remaining: int, depth: int) -> _Block:
        rng = self.rng
        choice: Doc = {"name": self._name("route"), "type": "choice", "rules": []}
        sides: list[Doc] = []
        exits: list[Exit] = [(choice, "default")]
        for _ in range(rng.randint(1, min(2, remaining - 1))):
            side = self._task()
            choice["rules"].append({"when": self._condition(), "next": side["name"]})
            sides.append(side)
            exits.append((side, "next"))
        extras: list[Doc] = []
        if remaining - 1 - len(sides) >= 1 and rng.random() < 0.3:
            extras.append(
                {
                    "name": self._name("rejected"),
                    "type": "fail",
                    "error": "Rejected",
                    "cause": "The input matched a rejection rule.",
                }
            )
        if remaining - 1 - len(sides) - len(extras) >= 1 and rng.random() < 0.25:
            extras.append({"name": self._name("nothing-to-do"), "type": "succeed"})
        for extra in extras:
            choice["rules"].append({"when": self._condition(), "next": extra["name"]})
        return _Block(choice["name"], [choice, *sides], exits, extras)

    def _approval_block(self, remaining: int, depth: int) -> _Block:
        escalate = self._task()
        expired = {
            "name": self._name("not-approved"),
            "type": "fail",
            "error": "NotApproved",
            "cause": "The request was rejected or not answered in time.",
        }
        escalate["next"] = expired["name"]
        step: Doc = {
            "name": self._name("approve"),
            "type": "approval",
            "signal": f"approve-{self.serial}",
            "timeout": self.rng.choice(("1h", "24h", "72h")),
            "onTimeout": escalate["name"],
            "approvers": {"roles": [f"{self.tenant.name}-{self.rng.choice(_ROLES)}"]},
            "catch": [{"errors": ["ApprovalRejected"], "next": expired["name"]}],
        }
        return _Block(step["name"], [step], [(step, "next")], [escalate, expired])

    def _parallel_block(self, remaining: int, depth: int) -> _Block:
        rng = self.rng
        name = self._name("fan-out")
        count = rng.randint(2, min(3, remaining - 1))
        share = (remaining - 1) // count
        branches = []
        for _ in range(count):
            steps = self._machine(rng.randint(1, min(share, 6)), depth + 1, top=False)
            branches.append({"start": steps[0]["name"], "steps": steps})
        step: Doc = {
            "name": name,
            "type": "parallel",
            "branches": branches,
            "resultPath": f"$.{_camel(name)}",
        }
        return _Block(step["name"], [step], [(step, "next")], [])

    def _map_block(self, remaining: int, depth: int) -> _Block:
        rng = self.rng
        name = self._name("for-each")
        step: Doc = {
            "name": name,
            "type": "map",
            "items": "$.items",
            "maxConcurrency": rng.choice((2, 5, 10, 25)),
        }
        if rng.random() < 0.4:
            step["batchSize"] = rng.choice((10, 50, 100))
        steps = self._machine(rng.randint(1, min(remaining - 1, 8)), depth + 1, top=False)
        step.update({"start": steps[0]["name"], "steps": steps, "resultPath": f"$.{_camel(name)}"})
        return _Block(step["name"], [step], [(step, "next")], [])

    def _machine(self, budget: int, depth: int, top: bool) -> list[Doc]:
        """A state machine of exactly `budget` steps (nested ones included); first is start."""
        main: list[Doc] = []
        extras: list[Doc] = []
        exits: list[Exit] = []
        remaining = budget - 1  # keep one for the final task
        while remaining > 0:
            block = self._block(remaining, depth, top)
            for step, field in exits:
                step[field] = block.entry
            exits = block.exits
            main.extend(block.steps)
            extras.extend(block.extras)
            remaining -= _count_steps(block.steps) + _count_steps(block.extras)
        final = self._task()
        for step, field in exits:
            step[field] = final["name"]
        final["end"] = True
        return [*main, final, *extras]

    def _dag(self, budget: int) -> list[Doc]:
        """DAG-form steps, `budget` in all: each depends on some of the few before it."""
        rng = self.rng
        nodes: list[Doc] = []
        remaining = budget
        while remaining > 0:
            roll = rng.random()
            if remaining >= 3 and roll < 0.15:
                node = self._parallel_block(remaining, 0).steps[0]
            elif remaining >= 2 and roll < 0.35:
                node = self._map_block(remaining, 0).steps[0]
            else:
                node = self._task()
            order: Doc = {"name": node.pop("name"), "type": node.pop("type")}
            if nodes and rng.random() < 0.85:
                earlier = [n["name"] for n in nodes[-4:]]
                order["dependsOn"] = rng.sample(earlier, rng.randint(1, min(2, len(earlier))))
                if rng.random() < 0.2:
                    order["when"] = self._condition()
            node = order | node  # DAG fields right after the step's name and type
            nodes.append(node)
            remaining -= _count_steps([node])
        return nodes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.corpus", description="Generate a corpus of workflow specs."
    )
    parser.add_argument("directory", type=Path, help="control repo to write into")
    parser.add_argument("count", type=int, help="number of workflows")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("count must be >= 0")
    started = time.perf_counter()
    paths = generate(args.directory, args.count, args.seed)
    elapsed = time.perf_counter() - started
    print(f"wrote {len(paths)} workflows to {args.directory} in {elapsed:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
