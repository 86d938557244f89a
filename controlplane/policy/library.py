"""The Rego modules a policy engine loads, their rule metadata, and `data.cpl.config`.

Both engine adapters load the same set of modules: the built-in library, the environment's
`policy.paths`, and two kinds of generated modules — one per rule package that reads the
package's `# METADATA` through OPA itself (`rego.metadata.chain()`), and `cpl.gate`, which
collects every rule's `deny`/`warn` in one document so that a single evaluation per input
(or one per batch, remotely) yields all findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import controlplane
from controlplane.errors import ConfigError, Diagnostic
from controlplane.spec.environment import Environment, confine_to_repo
from controlplane.spec.types import parse_duration, parse_size

RULES_PACKAGE = "cpl.rules"
GATE_PACKAGE = "cpl.gate"
METADATA_RULE = "__cpl_metadata"
SEVERITIES = ("critical", "high", "medium", "low")
TEST_SUFFIX = "_test.rego"

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_IMPORT = re.compile(r"^\s*import\s+data\.([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_OPA_ERROR = re.compile(
    r"(?P<file>[^\s:]+\.rego):(?P<line>\d+): (?P<code>[a-z_]+): (?P<message>.*)"
)
_SIZE_WITH_UNIT = re.compile(r"^\d+(KiB|MiB|GiB)$")


def builtin_policy_dir() -> Path:
    """Where the built-in rule library lives: `controlplane/policies/`, shipped in the package.

    The single place that knows the location. It is package data (pyproject.toml), so an
    installed cpl finds it next to its code, whatever the working directory.
    """
    return Path(controlplane.__file__).resolve().parent / "policies"


@dataclass(frozen=True)
class Module:
    """One Rego module: `name` is how users know the file (used in error messages)."""

    name: str
    source: str
    package: str

    @property
    def rule(self) -> str | None:
        """The rule key (`retry_jitter`) when the module is a rule package, else None."""
        prefix = RULES_PACKAGE + "."
        if self.package.startswith(prefix) and not self.name.endswith(TEST_SUFFIX):
            return self.package[len(prefix) :]
        return None


@dataclass(frozen=True)
class RuleInfo:
    """What a rule module says about itself in its `# METADATA` block."""

    id: str
    package: str
    title: str
    description: str
    severity: str
    controls: tuple[str, ...] = ()
    file: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "package": self.package,
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "controls": list(self.controls),
            "file": self.file,
        }


@dataclass(frozen=True)
class Finding:
    """One `deny` (or `warn`) entry of one rule for one input, as the engine returned it."""

    rule: str
    message: str
    path: str
    kind: str = "deny"  # deny | warn


@dataclass
class Library:
    """The modules to load, in an order a compiling server accepts (helpers first)."""

    modules: list[Module] = field(default_factory=list)
    # Every module comes from the built-in library (no `policy.paths` of an environment):
    # engines may then evaluate the reduced input of `view.evaluation_view`.
    builtin_only: bool = False

    @property
    def rule_packages(self) -> list[str]:
        return sorted({m.rule for m in self.modules if m.rule is not None})

    def generated(self) -> list[Module]:
        """The metadata module of every rule package and the `cpl.gate` collector."""
        generated = [
            Module(
                f"cpl-generated/metadata/{rule}.rego",
                f"package {RULES_PACKAGE}.{rule}\n\nimport rego.v1\n\n"
                f"{METADATA_RULE} := rego.metadata.chain()\n",
                f"{RULES_PACKAGE}.{rule}",
            )
            for rule in self.rule_packages
        ]
        generated.append(
            Module("cpl-generated/gate.rego", _gate_source(self.rule_packages), GATE_PACKAGE)
        )
        return generated

    def ordered(self) -> list[Module]:
        """Imported packages before their importers (a server compiles every upload), then
        rules, then tests, then generated modules."""

        def rank(module: Module) -> int:
            if module.name.endswith(TEST_SUFFIX):
                return 2
            return 1 if module.rule is not None else 0

        ordered: list[Module] = []
        placed: set[str] = set()
        pending = sorted(self.modules, key=rank)

        def place(module: Module, trail: frozenset[str]) -> None:
            if module.name in placed or module.name in trail:  # a cycle: keep going
                return
            for imported in _IMPORT.findall(_strip_comments(module.source)):
                for other in pending:
                    if other is not module and _provides(other.package, imported):
                        place(other, trail | {module.name})
            placed.add(module.name)
            ordered.append(module)

        for module in pending:
            place(module, frozenset())
        return ordered + self.generated()


def _provides(package: str, imported: str) -> bool:
    """Whether `import data.<imported>` refers to `package` or a rule inside it."""
    return imported == package or imported.startswith(package + ".")


def _gate_source(rules: list[str]) -> str:
    entries = []
    meta = []
    for rule in rules:
        ref = f"data.{RULES_PACKAGE}.{rule}"
        entries.append(
            f'\t"{rule}": {{"deny": [v | some v in {ref}.deny], '
            f'"warn": [v | some v in {ref}.warn]}},'
        )
        meta.append(f'\t"{rule}": {ref}.{METADATA_RULE},')
    return "\n".join(
        [
            f"package {GATE_PACKAGE}",
            "",
            "import rego.v1",
            "",
            "# Every rule's findings for the current input.",
            "results := {",
            *entries,
            "}",
            "",
            "# Findings for each input of input.inputs (one call for a batch).",
            "batch := [r | some one in input.inputs; r := results with input as one]",
            "",
            "# The annotation chain of every rule package.",
            "metadata := {",
            *meta,
            "}",
            "",
        ]
    )


def load_library(
    extra: Iterable[Path] = (),
    *,
    builtin: bool = True,
    tests: bool = False,
    base: Path | None = None,
) -> Library:
    """The built-in modules (when `builtin`) plus every `.rego` under `extra` (files or dirs).

    A file reached twice (an environment listing the built-in library again) is loaded
    once. Test modules (`*_test.rego`) are included only with `tests`.
    """
    builtin_dir = builtin_policy_dir()
    roots = ([builtin_dir] if builtin else []) + list(extra)
    seen: set[Path] = set()
    library = Library(builtin_only=builtin)
    for root in roots:
        if not root.exists():
            raise ConfigError(f"policy path {_display(root, base)} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*.rego"))
        for path in files:
            resolved = path.resolve()
            if resolved in seen or (path.name.endswith(TEST_SUFFIX) and not tests):
                continue
            seen.add(resolved)
            if not resolved.is_relative_to(builtin_dir):
                library.builtin_only = False
            library.modules.append(_module(path, base))
    names = [m.name for m in library.modules]
    if len(set(names)) != len(names):  # keep module names unique: OPA keys modules by name
        library.modules = [
            Module(f"{m.name}#{index}", m.source, m.package)
            for index, m in enumerate(library.modules)
        ]
    return library


def _module(path: Path, base: Path | None) -> Module:
    name = _display(path, base)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read policy module ({exc})") from None
    match = _PACKAGE.search(_strip_comments(source))
    if match is None:
        raise ConfigError(
            f"{name}: not a Rego module (no package declaration)",
            diagnostics=[Diagnostic(name, 1, 1, "CPL-P000", "no package declaration")],
        )
    return Module(name, source, match.group(1))


def _strip_comments(source: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


def _display(path: Path, base: Path | None) -> str:
    """A path relative to the control repo (or the working directory) when possible."""
    for root in (base, Path.cwd()):
        if root is None:
            continue
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return path.resolve().as_posix()


def policy_paths(environment: Environment, repo: Path) -> list[Path]:
    """The environment's `policy.paths`, relative to the control repo (and confined to it)."""
    settings = environment.spec.policy
    return [
        confine_to_repo(
            repo, path, settings.allow_outside_repo, environment.name, f"/spec/policy/paths/{i}"
        )
        for i, path in enumerate(settings.paths)
    ]


def policy_config(environment: Environment) -> dict[str, Any]:
    """`data.cpl.config`: the environment's `policy.data` with durations in seconds and
    sizes in bytes (the library merges it over its defaults)."""
    converted = _convert(dict(environment.spec.policy.data))
    assert isinstance(converted, dict)
    return converted


def _convert(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    if isinstance(value, str):
        if _SIZE_WITH_UNIT.match(value):
            return parse_size(value)
        try:
            seconds = parse_duration(value)
        except ValueError:
            return value
        return int(seconds) if float(seconds).is_integer() else seconds
    return value


def rule_infos(library: Library, chains: Mapping[str, Any]) -> dict[str, RuleInfo]:
    """Rule metadata by package key, from the annotation chains OPA returned.

    A rule package without `custom.id` or with an unknown severity is a ConfigError naming
    its file: its findings could not be reported, waived or configured.
    """
    files = {m.rule: m.name for m in library.modules if m.rule is not None}
    infos: dict[str, RuleInfo] = {}
    problems: list[Diagnostic] = []
    for rule in library.rule_packages:
        annotations = _package_annotations(chains.get(rule))
        custom = annotations.get("custom") or {}
        rule_id = custom.get("id")
        severity = str(custom.get("severity", "")).lower()
        file = files.get(rule, rule)
        if not isinstance(rule_id, str) or not rule_id:
            problems.append(
                Diagnostic(file, 1, 1, "CPL-P000", "rule module has no METADATA custom.id")
            )
            continue
        if severity not in SEVERITIES:
            problems.append(
                Diagnostic(
                    file,
                    1,
                    1,
                    "CPL-P000",
                    f"rule {rule_id}: severity {severity or '(missing)'!r} is not one of "
                    + ", ".join(SEVERITIES),
                )
            )
            continue
        controls = custom.get("controls") or []
        infos[rule] = RuleInfo(
            id=rule_id,
            package=f"{RULES_PACKAGE}.{rule}",
            title=str(annotations.get("title") or rule_id),
            description=str(annotations.get("description") or "").strip(),
            severity=severity,
            controls=tuple(str(c) for c in controls) if isinstance(controls, list) else (),
            file=file,
        )
    ids: dict[str, str] = {}
    for info in infos.values():
        if info.id in ids:
            problems.append(
                Diagnostic(
                    info.file, 1, 1, "CPL-P000", f"rule id {info.id} is also used by {ids[info.id]}"
                )
            )
        ids[info.id] = info.file
    if problems:
        raise ConfigError("invalid rule metadata", diagnostics=problems)
    return infos


def _package_annotations(chain: Any) -> dict[str, Any]:
    """The merged annotations of a chain: the innermost entry that carries a field wins."""
    merged: dict[str, Any] = {}
    if not isinstance(chain, list):
        return merged
    for entry in reversed(chain):  # outermost (package) first, rule-level last
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        if isinstance(annotations, dict):
            merged.update(annotations)
    return merged


def findings_of(results: Any, infos: Mapping[str, RuleInfo]) -> list[Finding]:
    """The findings of one `data.cpl.gate.results` document (unknown rules are skipped)."""
    findings: list[Finding] = []
    if not isinstance(results, dict):
        return findings
    for rule, outcome in results.items():
        info = infos.get(rule)
        if info is None or not isinstance(outcome, dict):
            continue
        for kind in ("deny", "warn"):
            for entry in outcome.get(kind) or []:
                message, path = _entry(entry)
                findings.append(Finding(info.id, message, path, kind))
    return findings


def _entry(entry: Any) -> tuple[str, str]:
    if isinstance(entry, dict):
        message = entry.get("msg", entry.get("message", ""))
        path = entry.get("path", "")
        return str(message), path if isinstance(path, str) else ""
    return str(entry), ""


def compile_error(message: str, summary: str) -> ConfigError:
    """A ConfigError with one diagnostic per `file:line: code: message` in OPA's text."""
    diagnostics = [
        Diagnostic(m["file"], int(m["line"]), 1, "CPL-P000", f"{m['code']}: {m['message']}")
        for m in _OPA_ERROR.finditer(message)
    ]
    first = diagnostics[0] if diagnostics else None
    where = f"{first.file}:{first.line}: " if first else ""
    detail = first.message if first else message.strip()
    return ConfigError(f"{summary}: {where}{detail}", diagnostics=diagnostics)


def location_error(errors: list[dict[str, Any]], summary: str) -> ConfigError:
    """A ConfigError from OPA's REST error list (`{"code","message","location"}`)."""
    diagnostics = []
    for error in errors:
        location = error.get("location") or {}
        diagnostics.append(
            Diagnostic(
                str(location.get("file", "?")),
                int(location.get("row", 1) or 1),
                int(location.get("col", 1) or 1),
                "CPL-P000",
                f"{error.get('code', 'error')}: {error.get('message', '')}",
            )
        )
    first = diagnostics[0] if diagnostics else None
    where = f"{first.file}:{first.line}: {first.message}" if first else "no details"
    return ConfigError(f"{summary}: {where}", diagnostics=diagnostics)
