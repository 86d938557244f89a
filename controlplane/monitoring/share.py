"""The rules file of a target as a shared resource (`shared:rules/<target>`).

A target's rules come from every workflow deployed to it, so the file is no workflow's own:
like a Temporal namespace (docs/architecture.md, "Shared resources") it is an artifact of its
own, derived by the engine's `share` hook from the environment's artifacts, planned before the
workflows of its target, applied, recorded, drifted once. A target gets one only when the
environment names where its Prometheus loads rules (`prometheus.rulesDir`) and one of its
workflows declares `slo` or `alerts`; removing the last of them deletes the file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from controlplane.engines.translator import Artifact, Feature, shared_key
from controlplane.monitoring.delivery import RULES_KIND, rules_file_name
from controlplane.monitoring.rules import MetricSource, Monitored, RuleSettings, rules_document
from controlplane.spec.environment import Environment, Target

MonitoredOf = Callable[[Artifact, Target], "Monitored | None"]
"""The monitoring intent of one of an engine's workflow artifacts (None: none to read)."""


def rule_settings(target: Target) -> RuleSettings:
    settings = target.prometheus
    if settings is None:
        return RuleSettings()
    interval = settings.evaluation_interval
    return RuleSettings(
        slo_window=settings.slo_window.seconds,
        interval=interval.seconds if interval is not None else None,
    )


def target_rules(
    artifacts: list[Artifact], target: Target, source: MetricSource, monitored_of: MonitoredOf
) -> tuple[list[Monitored], list[str]]:
    """The monitored workflows of `target` among `artifacts`, and their keys."""
    found: list[Monitored] = []
    keys: list[str] = []
    for artifact in artifacts:
        if artifact.target != target.name or artifact.shared or artifact.engine != source.engine:
            continue
        monitored = monitored_of(artifact, target)
        if monitored is not None and not monitored.empty:
            found.append(monitored)
            keys.append(artifact.workflow)
    return found, sorted(keys)


def share_rules(
    artifacts: list[Artifact],
    environment: Environment,
    source: MetricSource,
    monitored_of: MonitoredOf,
) -> list[Artifact]:
    """`artifacts` plus one rules artifact per target of the engine that has somewhere to
    deliver rules and at least one workflow with `slo` or `alerts`."""
    result = list(artifacts)
    for target in sorted(environment.spec.targets, key=lambda t: t.name):
        if target.engine != source.engine or target.prometheus is None:
            continue
        monitored, keys = target_rules(artifacts, target, source, monitored_of)
        if not monitored:
            continue
        name = rules_file_name(target.name)
        document = {
            "kind": RULES_KIND,
            "file": posixpath.join(target.prometheus.rules_dir, name),
            "rules": rules_document(monitored, source, rule_settings(target)),
        }
        result.append(
            Artifact(
                workflow=shared_key("rules", target.name),
                version="",
                target=target.name,
                engine=target.engine,
                resource=name,
                document=document,
                support=(),
                shared_by=tuple(keys),
            )
        )
    return result


UNDELIVERED = (
    "no rules are delivered: target '{target}' names no prometheus.rulesDir, so the {what} "
    "travels with the spec only (docs/alerts.md)"
)


def without_rules_file(features: dict[str, Feature], target: Target) -> None:
    """A render context's FEATURES for a target that gets no rules file: its `slo` and
    `alerts` parts are rendered nowhere, which is what their records say (mutates
    `features`; an `unsupported` part keeps its own reason)."""
    if target.prometheus is not None:
        return
    for name in list(features):
        whole = name.split(".", 1)[0]
        if whole in ("slo", "alerts") and features[name].support != "unsupported":
            what = "objective" if whole == "slo" else "alert"
            reason = UNDELIVERED.format(target=target.name, what=what)
            features[name] = Feature("approximated", reason)
