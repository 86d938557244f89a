"""Ignore rules: differences that are not drift (`drift/ignore.yaml`), like Argo CD's
`ignoreDifferences`.

The engine modules already strip what every engine adds on its own (`engines/normalize.py`:
ARNs, creation dates, server-side defaults). `drift/ignore.yaml` is for what *this*
organisation accepts on top: a tag a cost tool adds, a field an operator may tune by hand.
Rules are per engine, JSON-pointer patterns into the artifact document with glob segments
(`*` one segment, `**` any number; `~1` is `/` and `~0` is `~`), optionally limited to some
workflows, targets or environments (fnmatch globs)::

    apiVersion: cpl.dev/v1
    kind: DriftIgnore
    ignore:
      stepfunctions:
        - /configuration/tags/finops:*            # a plain pattern
        - path: /logGroup/retentionInDays
          workflows: ["retail/*"]
          reason: retail ops may extend log retention during incidents
      temporal:
        - path: /schedule/paused
          environments: [staging]

A difference is ignored when a rule's pattern matches its path or one of the path's parents,
so `/configuration/tags` ignores every tag. Ignoring is applied to the diff only: compliance
is evaluated on the live document as it is, ignored fields included.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controlplane.engines.live import Change
from controlplane.engines.normalize import glob_matches, pointer_segments
from controlplane.errors import ConfigError
from controlplane.spec.bounds import beyond_bounds
from controlplane.spec.environment import EngineName, registered_engines
from controlplane.spec.files import read_document
from controlplane.spec.locate import did_you_mean

IGNORE_FILE = Path("drift") / "ignore.yaml"


class IgnoreRule(BaseModel):
    """One pattern of differences that are not drift, optionally scoped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    workflows: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    reason: str = ""

    @field_validator("path")
    @classmethod
    def _pointer(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"'{value}' is not a JSON pointer (it must start with /)")
        return value

    def applies(self, workflow: str | None, target: str, environment: str) -> bool:
        """Whether the rule's scope covers this resource (an empty scope covers all)."""
        return (
            _any_glob(self.workflows, workflow or "")
            and _any_glob(self.targets, target)
            and _any_glob(self.environments, environment)
        )

    def matches(self, pointer: str) -> bool:
        """Whether `pointer` or one of its parents matches the rule's pattern."""
        path = pointer_segments(pointer) if pointer else []
        pattern = pointer_segments(self.path) if self.path else []
        return any(glob_matches(pattern, path[:depth]) for depth in range(len(path) + 1))


class IgnoreFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    api_version: Literal["cpl.dev/v1"] = Field("cpl.dev/v1", alias="apiVersion")
    kind: Literal["DriftIgnore"] = "DriftIgnore"
    ignore: dict[EngineName, tuple[IgnoreRule, ...]] = Field(default_factory=dict)

    @field_validator("ignore", mode="before")
    @classmethod
    def _plain_patterns(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            engine: [{"path": rule} if isinstance(rule, str) else rule for rule in rules or []]
            for engine, rules in value.items()
        }

    @field_validator("ignore")
    @classmethod
    def _registered(
        cls, value: dict[EngineName, tuple[IgnoreRule, ...]]
    ) -> dict[EngineName, tuple[IgnoreRule, ...]]:
        engines = list(registered_engines())
        for engine in value:
            if engine not in engines:
                raise ValueError(
                    f"unknown engine '{engine}'{did_you_mean(engine, engines)} "
                    f"(registered: {', '.join(engines)})"
                )
        return value


class IgnoreRules:
    """The ignore rules of a control repo, ready to filter diffs."""

    def __init__(self, rules: dict[EngineName, tuple[IgnoreRule, ...]] | None = None) -> None:
        self.rules: dict[EngineName, tuple[IgnoreRule, ...]] = dict(rules or {})

    def __len__(self) -> int:
        return sum(len(rules) for rules in self.rules.values())

    def split(
        self,
        changes: Sequence[Change],
        *,
        engine: EngineName,
        workflow: str | None,
        target: str,
        environment: str,
    ) -> tuple[list[Change], list[Change]]:
        """(drift, ignored): the changes no rule covers, and those some rule does."""
        rules = [
            rule
            for rule in self.rules.get(engine, ())
            if rule.applies(workflow, target, environment)
        ]
        kept: list[Change] = []
        ignored: list[Change] = []
        for change in changes:
            if any(rule.matches(change["path"]) for rule in rules):
                ignored.append(change)
            else:
                kept.append(change)
        return kept, ignored


def load_ignore(repo: Path) -> IgnoreRules:
    """The rules of `<repo>/drift/ignore.yaml` (none when the file does not exist)."""
    path = repo / IGNORE_FILE
    if not (path.is_file() or path.is_symlink()):
        return IgnoreRules()
    # read and bounded like every document: a broken link is an error, not "no rules"
    source = read_document(repo, path, repo.resolve())
    if source.problem is not None:
        raise ConfigError(f"{source.file}: {source.problem}")
    excess = beyond_bounds(source.text)
    if excess is not None:
        raise ConfigError(f"{source.file}:{excess.line}:{excess.column}: {excess.message}")
    try:
        data = yaml.safe_load(source.text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{IGNORE_FILE.as_posix()}: not valid YAML: {error}") from None
    try:
        parsed = IgnoreFile.model_validate(data or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigError(f"{IGNORE_FILE.as_posix()}: {problems}") from None
    return IgnoreRules(parsed.ignore)


def _any_glob(globs: Sequence[str], value: str) -> bool:
    return not globs or any(fnmatchcase(value, glob) for glob in globs)
