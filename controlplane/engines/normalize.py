"""Normalization: strip what an engine adds to a resource, so live and desired compare cleanly.

The rules are data: per engine, JSON-pointer patterns whose segments are globs (`*` one
segment, `**` any number of segments; `~1` is `/` and `~0` is `~` inside a segment), each with
an optional default. A rule without a default removes the field wherever it matches (creation
dates, ARNs and ids the engine assigns, `status`, apply's own digest stamp); a rule with a
default removes it only while it still has the engine's default value (the scheduler's retry
policy, an empty description), so a field somebody *changed* away from the default still shows
as drift. `drift/ignore.yaml` extends the rules with plain patterns through `ignore`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from controlplane.spec.environment import EngineName

_ANY: Any = object()


@dataclass(frozen=True)
class Rule:
    """Remove the fields matching `pattern` (only while equal to `default`, when given)."""

    pattern: str
    default: Any = _ANY

    def removes(self, value: Any) -> bool:
        return self.default is _ANY or value == self.default


# -- the engines' own fields ----------------------------------------------------------------

STEPFUNCTIONS_RULES: tuple[Rule, ...] = (
    # assigned by Step Functions (describe_state_machine), not configuration
    Rule("/configuration/stateMachineArn"),
    Rule("/configuration/name"),
    Rule("/configuration/status"),
    Rule("/configuration/creationDate"),
    Rule("/configuration/revisionId"),
    Rule("/configuration/label"),
    Rule("/configuration/variableReferences"),
    Rule("/configuration/description", ""),
    # added by AWS for customer-managed keys
    Rule("/configuration/encryptionConfiguration/kmsDataKeyReusePeriodSeconds", 300),
    # apply's stamp and AWS's reserved tags
    Rule("/configuration/tags/cpl:digest"),
    Rule("/configuration/tags/aws:*"),
    # CloudWatch Logs (describe_log_groups)
    Rule("/logGroup/arn"),
    Rule("/logGroup/logGroupArn"),
    Rule("/logGroup/creationTime"),
    Rule("/logGroup/metricFilterCount"),
    Rule("/logGroup/storedBytes"),
    Rule("/logGroup/dataProtectionStatus"),
    Rule("/logGroup/inheritedProperties"),
    Rule("/logGroup/logGroupClass", "STANDARD"),
    Rule("/logGroup/deletionProtectionEnabled", False),
    # EventBridge Scheduler (get_schedule)
    Rule("/schedule/Arn"),
    Rule("/schedule/CreationDate"),
    Rule("/schedule/LastModificationDate"),
    Rule("/schedule/Description", ""),
    Rule("/schedule/ActionAfterCompletion", "NONE"),
    Rule(
        "/schedule/Target/RetryPolicy",
        {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
    ),
)

TEMPORAL_RULES: tuple[Rule, ...] = (
    # the schedule's server-side defaults cpl never sets
    Rule("/schedule/catchupWindow", 365 * 86400),
    Rule("/schedule/pauseOnFailure", False),
    Rule("/schedule/paused", False),
)

ARGO_RULES: tuple[Rule, ...] = (
    Rule("/manifests/*/status"),
    Rule("/manifests/*/metadata/uid"),
    Rule("/manifests/*/metadata/resourceVersion"),
    Rule("/manifests/*/metadata/generation"),
    Rule("/manifests/*/metadata/creationTimestamp"),
    Rule("/manifests/*/metadata/managedFields"),
    Rule("/manifests/*/metadata/selfLink"),
    Rule("/manifests/*/metadata/finalizers", []),
    Rule("/manifests/*/metadata/labels/cpl.dev~1digest"),
    Rule("/manifests/*/metadata/annotations/cpl.dev~1digest"),
    Rule("/manifests/*/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"),
    Rule("/manifests/*/metadata/annotations", {}),
)

RULES: dict[EngineName, tuple[Rule, ...]] = {
    "stepfunctions": STEPFUNCTIONS_RULES,
    "temporal": TEMPORAL_RULES,
    "argo": ARGO_RULES,
}


def normalize(
    engine: EngineName, document: dict[str, Any], ignore: Sequence[str] = ()
) -> dict[str, Any]:
    """A copy of `document` without a built-in engine's own fields and the `ignore` patterns."""
    return apply_rules(RULES[engine], document, ignore)


def apply_rules(
    engine_rules: Sequence[Rule], document: dict[str, Any], ignore: Sequence[str] = ()
) -> dict[str, Any]:
    """A copy of `document` without the fields `engine_rules` remove and the `ignore` patterns
    (an engine outside this module keeps its rules in its own package and calls this)."""
    rules = [*engine_rules, *(Rule(pattern) for pattern in ignore)]
    compiled = [(pointer_segments(rule.pattern), rule) for rule in rules]
    result = _strip(copy.deepcopy(document), [], compiled)
    assert isinstance(result, dict)
    return result


def pointer_segments(pattern: str) -> list[str]:
    """The unescaped reference tokens of a JSON pointer (ValueError when it is not one)."""
    if not pattern.startswith("/"):
        raise ValueError(f"normalization pattern '{pattern}' is not a JSON pointer (starts with /)")
    return [part.replace("~1", "/").replace("~0", "~") for part in pattern[1:].split("/")]


def glob_matches(pattern: list[str], path: list[str]) -> bool:
    """Whether a path matches a pattern of glob segments (`*` one segment, `**` any number)."""
    if not pattern:
        return not path
    head, *rest = pattern
    if head == "**":
        return any(glob_matches(rest, path[index:]) for index in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], head) and glob_matches(rest, path[1:])


def _strip(value: Any, path: list[str], rules: list[tuple[list[str], Rule]]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            where = [*path, str(key)]
            if any(glob_matches(p, where) and rule.removes(item) for p, rule in rules):
                continue
            kept[key] = _strip(item, where, rules)
        # a map emptied by the rules goes too, unless it was empty to begin with
        return {k: v for k, v in kept.items() if v != {} or value[k] == {}}
    if isinstance(value, list):
        return [_strip(item, [*path, str(index)], rules) for index, item in enumerate(value)]
    return value
