"""Load workflow, environment and waiver documents with diagnostics that point at the YAML.

The happy path parses with PyYAML's C loader and validates with pydantic; node positions
are recovered (by composing the YAML once more) only for files that have findings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
import yaml_rs
from pydantic import BaseModel, ValidationError

from controlplane.errors import ConfigError, Diagnostic
from controlplane.spec.bounds import beyond_bounds
from controlplane.spec.check import check_workflow, check_workflow_data
from controlplane.spec.environment import ActivityBinding, Environment, Target, registered_engines
from controlplane.spec.files import (
    SUFFIXES,
    git_documents,
    read_document,
    read_paths,
    read_tree,
    relative_name,
)
from controlplane.spec.files import Source as Source  # re-exported: callers build Sources
from controlplane.spec.identity import resolve_identity_keys
from controlplane.spec.locate import (
    Positions,
    did_you_mean,
    pointer_of,
)
from controlplane.spec.model import API_VERSION, Workflow
from controlplane.spec.outline import valid_field
from controlplane.spec.schema_errors import schema_problems
from controlplane.spec.waiver import MAX_WAIVER_DAYS, Waiver, WaiverBody

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KINDS: dict[str, type[BaseModel]] = {
    "Workflow": Workflow,
    "Environment": Environment,
    "Waiver": Waiver,
}
DIRECTORIES = {"workflows": "Workflow", "environments": "Environment", "waivers": "Waiver"}

INPUT_BOUND = "CPL-S007"
"""A document beyond cpl's input bounds (file size, nesting depth, alias expansion)."""
NAME_COLLISION = "CPL-S029"
"""Two workflows whose engine names would be equal (`<tenant>-<name>`, or any name an engine
derives on a target): they would overwrite and delete each other's live objects."""

M = TypeVar("M", bound=BaseModel)
_MULTI_DOCUMENT = re.compile(r"^---", re.MULTILINE)
_POSITION = re.compile(r"line (\d+), column (\d+)")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class Loaded(Generic[M]):
    model: M
    file: str


@dataclass
class LoadResult:
    """Everything loaded from a set of files, and every problem found in them."""

    workflows: list[Loaded[Workflow]] = field(default_factory=list)
    environments: list[Loaded[Environment]] = field(default_factory=list)
    waivers: list[Loaded[Waiver]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    _positions: dict[str, Positions] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def files(self) -> int:
        return len(self.texts)

    def locate(self, file: str, pointer: str) -> tuple[int, int]:
        """Line and column of a JSON pointer in a loaded file (1, 1 when unknown)."""
        text = self.texts.get(file)
        if text is None:
            return (1, 1)
        if file not in self._positions:
            self._positions[file] = Positions(text)
        return self._positions[file].find(pointer)

    def diagnostic(self, file: str, code: str, message: str, pointer: str) -> Diagnostic:
        line, column = self.locate(file, pointer)
        return Diagnostic(file, line, column, code, message, pointer)


def load_workflows(repo: Path, ref: str | None = None) -> LoadResult:
    """The workflow specs of a control repo (at a git ref when given), with diagnostics."""
    if ref is None:
        sources = read_tree(repo, ["workflows"])
    else:
        sources = _read_git(repo, ref, "workflows")
    return load_sources(sources)


def load_repo(repo: Path, paths: Iterable[Path] | None = None) -> LoadResult:
    """Workflows, environments and waivers of a repo, or of the given files and folders."""
    if paths:
        sources = list(read_paths(repo, paths))
    else:
        sources = read_tree(repo, list(DIRECTORIES))
    return load_sources(sources)


def load_environment(repo: Path, name: str) -> Environment:
    """The environment `name` from `environments/`; a ConfigError names what is wrong."""
    directory = repo / "environments"
    candidates = [directory / f"{name}{suffix}" for suffix in SUFFIXES]
    found = next((path for path in candidates if path.is_file() or path.is_symlink()), None)
    if found is None:
        known = sorted(p.stem for p in directory.glob("*") if p.suffix in SUFFIXES)
        hint = did_you_mean(name, known)
        raise ConfigError(
            f"no environment '{name}' in {directory}{hint} (known: {', '.join(known) or 'none'})"
        )
    source = read_document(repo, found, repo.resolve())
    if source.problem is not None:
        raise ConfigError(f"{source.file}: {source.problem}")
    result = load_sources([source], expected_kind="Environment")
    if not result.ok or not result.environments:
        raise ConfigError(f"environment '{name}' is invalid", diagnostics=result.diagnostics)
    environment = result.environments[0].model
    if environment.name != name:
        raise ConfigError(
            f"{relative_name(repo, found)}: metadata.name is '{environment.name}', "
            f"expected '{name}'"
        )
    resolve_identity_keys(repo, environment.spec.identity)
    return environment


def load_sources(
    sources: Iterable[Source],
    expected_kind: str | None = None,
    today: dt.date | None = None,
    check_unique: bool = True,
) -> LoadResult:
    """Parse, validate and check documents; all problems of all files, sorted by position."""
    result = LoadResult()
    today = today or dt.date.today()
    for source in sources:
        result.texts[source.file] = source.text
        if source.problem is not None:
            result.diagnostics.append(Diagnostic(source.file, 1, 1, source.code, source.problem))
            continue
        kind = expected_kind or _kind_for_path(source.file)
        model = _load_one(source, kind, result, today)
        if isinstance(model, Workflow):
            result.workflows.append(Loaded(model, source.file))
        elif isinstance(model, Environment):
            result.environments.append(Loaded(model, source.file))
        elif isinstance(model, Waiver):
            result.waivers.append(Loaded(model, source.file))
    if check_unique:
        keys = [(loaded.model.key, loaded.file) for loaded in result.workflows]
        result.diagnostics.extend(duplicate_workflows(keys, result.diagnostic))
        result.diagnostics.extend(colliding_engine_names(keys, result))
    result.diagnostics.sort()
    return result


def parse_yaml(file: str, text: str) -> tuple[Any, Diagnostic | None]:
    """The document's data, or a CPL-S001 diagnostic saying where the YAML is broken.

    yaml-rs (YAML 1.2, duplicate keys are errors) parses ten times faster than PyYAML's C
    loader; PyYAML is asked only to locate a syntax error precisely.
    """
    excess = beyond_bounds(text)
    if excess is not None:
        return None, Diagnostic(file, excess.line, excess.column, INPUT_BOUND, excess.message)
    try:
        data = yaml_rs.loads(text)
    except yaml_rs.YAMLDecodeError as exc:
        return None, _syntax_diagnostic(file, text, str(exc))
    separators = list(_MULTI_DOCUMENT.finditer(text))
    if isinstance(data, list) and separators:
        line = text[: separators[-1].start()].count("\n") + 1
        return None, Diagnostic(file, line, 1, "CPL-S001", "one document per file (found ---)")
    return data, None


def _syntax_diagnostic(file: str, text: str, problem: str) -> Diagnostic:
    lines = [line.strip() for line in problem.strip().splitlines() if line.strip()]
    first_line = lines[0] if lines else "invalid YAML"
    detail = lines[-1] if len(lines) > 1 else ""
    if "duplicate" in first_line:
        duplicate = _duplicate_key_position(text, first_line)
        if duplicate is not None:
            return Diagnostic(file, *duplicate, "CPL-S001", f"YAML: {first_line}")
    try:
        yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            problem_text = getattr(exc, "problem", None) or first_line
            return Diagnostic(
                file,
                mark.line + 1,
                mark.column + 1,
                "CPL-S001",
                f"YAML syntax error: {problem_text}",
            )
    position = _POSITION.search(problem)
    line, column = (int(position.group(1)), int(position.group(2))) if position else (1, 1)
    message = f"YAML syntax error: {first_line}" + (f": {detail}" if detail else "")
    return Diagnostic(file, line, column, "CPL-S001", message)


def _duplicate_key_position(text: str, problem: str) -> tuple[int, int] | None:
    """Where a key repeats in a mapping (its second occurrence)."""
    key = _QUOTED.search(problem)
    return Positions(text).duplicate(key.group(1)) if key else None


def _load_one(source: Source, kind: str | None, result: LoadResult, today: dt.date) -> Any:
    data, syntax_error = parse_yaml(source.file, source.text)
    if syntax_error is not None:
        result.diagnostics.append(syntax_error)
        return None
    if not isinstance(data, dict):
        result.diagnostics.append(
            result.diagnostic(
                source.file, "CPL-S004", "a cpl document is a mapping with apiVersion and kind", ""
            )
        )
        return None
    model_type = _model_type(source.file, data, kind, result)
    if model_type is None:
        return None
    try:
        model = model_type.model_validate(data)
    except ValidationError as exc:
        result.diagnostics.extend(
            _validation_diagnostics(source.file, data, model_type, exc, result)
        )
        # The semantic checks still run on the parts that validated: one run reports every
        # problem of a file, not the schema errors first and the rest after they are fixed.
        for code, message, pointer in _findings_beside_schema_errors(model_type, data, today):
            result.diagnostics.append(result.diagnostic(source.file, code, message, pointer))
        return None
    for code, message, pointer in _semantic_findings(model, today):
        result.diagnostics.append(result.diagnostic(source.file, code, message, pointer))
    return model


def _semantic_findings(model: BaseModel, today: dt.date) -> Iterator[tuple[str, str, str]]:
    if isinstance(model, Workflow):
        for finding in check_workflow(model):
            yield finding.code, finding.message, finding.pointer
    elif isinstance(model, Waiver):
        yield from _waiver_expiry(model.spec.expires, today)
    elif isinstance(model, Environment):
        seen: set[str] = set()
        for index, target in enumerate(model.spec.targets):
            if target.name in seen:
                yield (
                    "CPL-S011",
                    f"duplicate target name '{target.name}'",
                    f"/spec/targets/{index}/name",
                )
            seen.add(target.name)
        yield from _unregistered_engines(model)


def _unregistered_engines(environment: Environment) -> Iterator[tuple[str, str, str]]:
    """Engine names the registry does not know: a target's `engine`, an activity binding's
    key (the same codes and wording as a value or key the model itself rejects)."""
    engines = list(registered_engines())
    known = ", ".join(engines)
    for index, target in enumerate(environment.spec.targets):
        if target.engine not in engines:
            yield (
                "CPL-S004",
                f"engine: unknown engine '{target.engine}'"
                f"{did_you_mean(target.engine, engines)} (registered: {known})",
                f"/spec/targets/{index}/engine",
            )
    for name, binding in environment.spec.bindings.activities.items():
        for key in binding.model_extra or {}:
            if key not in engines:
                allowed = [*ActivityBinding.model_fields, *engines]
                yield (
                    "CPL-S002",
                    f"unknown key '{key}'{did_you_mean(key, allowed)}",
                    pointer_of(("spec", "bindings", "activities", name, key)),
                )


def _findings_beside_schema_errors(
    model_type: type[BaseModel], data: dict[str, Any], today: dt.date
) -> Iterator[tuple[str, str, str]]:
    """The semantic findings of a document that failed validation, from the values that
    validate on their own; a value that does not is left out, never guessed."""
    spec: dict[str, Any] = data["spec"] if isinstance(data.get("spec"), dict) else {}
    if model_type is Workflow:
        for finding in check_workflow_data(data):
            yield finding.code, finding.message, finding.pointer
    elif model_type is Waiver:
        expires = valid_field(WaiverBody, "expires", spec.get("expires"))
        if isinstance(expires, dt.date):
            yield from _waiver_expiry(expires, today)
    elif model_type is Environment:
        targets = spec.get("targets")
        seen: set[str] = set()
        for index, target in enumerate(targets if isinstance(targets, list) else []):
            raw_name = target.get("name") if isinstance(target, dict) else None
            name = valid_field(Target, "name", raw_name)
            if name in seen:
                yield ("CPL-S011", f"duplicate target name '{name}'", f"/spec/targets/{index}/name")
            if isinstance(name, str):
                seen.add(name)


def _waiver_expiry(expires: dt.date, today: dt.date) -> Iterator[tuple[str, str, str]]:
    limit = today + dt.timedelta(days=MAX_WAIVER_DAYS)
    if expires > limit:
        yield (
            "CPL-S030",
            f"waiver expires {expires}, more than {MAX_WAIVER_DAYS} days ahead "
            f"(latest allowed: {limit})",
            "/spec/expires",
        )


def _model_type(
    file: str, data: dict[str, Any], expected: str | None, result: LoadResult
) -> type[BaseModel] | None:
    kind = data.get("kind")
    if not isinstance(data.get("apiVersion"), str) or data["apiVersion"] != API_VERSION:
        pointer = "/apiVersion" if "apiVersion" in data else ""
        found = data.get("apiVersion")
        message = f"apiVersion must be '{API_VERSION}'" + (
            f", not {found!r}" if found else " (missing)"
        )
        result.diagnostics.append(result.diagnostic(file, "CPL-S005", message, pointer))
        return None
    if not isinstance(kind, str) or kind not in KINDS:
        pointer = "/kind" if "kind" in data else ""
        hint = did_you_mean(kind, list(KINDS)) if isinstance(kind, str) else ""
        message = f"kind must be one of {', '.join(KINDS)}" + (
            f", not {kind!r}{hint}" if kind else " (missing)"
        )
        result.diagnostics.append(result.diagnostic(file, "CPL-S005", message, pointer))
        return None
    if expected and kind != expected:
        result.diagnostics.append(
            result.diagnostic(
                file, "CPL-S005", f"expected a {expected} document here, found kind {kind}", "/kind"
            )
        )
        return None
    return KINDS[kind]


def _validation_diagnostics(
    file: str,
    data: dict[str, Any],
    model_type: type[BaseModel],
    exc: ValidationError,
    result: LoadResult,
) -> Iterator[Diagnostic]:
    for problem in schema_problems(model_type, data, exc):
        yield result.diagnostic(file, problem.code, problem.message, problem.pointer)


def duplicate_workflows(
    keys: Iterable[tuple[str, str]], diagnostic: Callable[[str, str, str, str], Diagnostic]
) -> list[Diagnostic]:
    """CPL-S026 for every (workflow key, file) whose key an earlier file already defines."""
    first: dict[str, str] = {}
    found = []
    for key, file in keys:
        if key in first:
            message = f"workflow '{key}' is also defined in {first[key]}"
            found.append(diagnostic(file, "CPL-S026", message, "/metadata/name"))
        else:
            first[key] = file
    return found


def colliding_engine_names(
    keys: Iterable[tuple[str, str]], located: LoadResult
) -> list[Diagnostic]:
    """CPL-S029 on each of two workflows whose `<tenant>-<name>` is equal (`a/b-c` and
    `a-b/c`): every engine names a workflow's objects that way, whatever the environment.

    `keys` are (workflow key, file) pairs; `located` holds the files' texts for positions.
    """
    first: dict[str, tuple[str, str]] = {}
    found: list[Diagnostic] = []
    for key, file in keys:
        name = key.replace("/", "-", 1)
        if name not in first:
            first[name] = (key, file)
            continue
        other, other_file = first[name]
        if other == key:
            continue  # the same workflow in two files: CPL-S026
        for this, this_file, that, that_file in (
            (key, file, other, other_file),
            (other, other_file, key, file),
        ):
            line, _ = located.locate(that_file, "/metadata/name")
            message = (
                f"workflow '{this}' and workflow '{that}' ({that_file}:{line}) have the same "
                f"engine name '{name}' (<tenant>-<name>): they would overwrite each other's "
                "state machine, schedule or Argo object; rename one"
            )
            found.append(located.diagnostic(this_file, NAME_COLLISION, message, "/metadata/name"))
    return found


def _kind_for_path(file: str) -> str | None:
    top = Path(file).parts[0] if Path(file).parts else ""
    return DIRECTORIES.get(top)


def _read_git(repo: Path, ref: str, directory: str) -> list[Source]:
    """Documents under `directory` as they were at a git ref (for `--base`)."""
    import git

    try:
        git_repo = git.Repo(repo, search_parent_directories=True)
        commit = git_repo.commit(ref)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"{repo} is not inside a git repository (needed for --base)") from None
    except (git.BadName, ValueError):
        raise ConfigError(f"unknown git ref '{ref}'") from None
    top = Path(git_repo.working_tree_dir or repo).resolve()
    prefix = (repo.resolve().relative_to(top) / directory).as_posix().lstrip("./")
    return git_documents(commit.tree, prefix)
