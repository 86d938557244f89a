"""`cpl import`: an engine document in, a spec file and the environment's bindings out.

One seam for every source (an ASL file, a live state machine, an Argo manifest): the
engine's importer gives the spec body, the activities it calls and the fidelity report;
this module names the workflow, binds its activities in the environment (`bindings.py`),
makes sure the written spec validates (the same load as `cpl validate`) and writes
`workflows/<tenant>/<name>.yaml` and the environment file. Nothing is written when any of
that fails, and an existing spec is replaced only when asked (`force`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controlplane.errors import ConfigError
from controlplane.importing.argo import import_argo, is_argo
from controlplane.importing.asl import import_asl
from controlplane.importing.bindings import BindingPlan, add_bindings, plan_bindings
from controlplane.importing.fidelity import FidelityReport
from controlplane.importing.names import slug
from controlplane.spec.bounds import beyond_bounds
from controlplane.spec.environment import Environment, Target
from controlplane.spec.files import MAX_FILE_BYTES, SUFFIXES, decode
from controlplane.spec.load import load_sources, load_workflows
from controlplane.spec.model import API_VERSION, Workflow
from controlplane.spec.types import NAME_PATTERN

DEFAULT_VERSION = "1.0.0"


@dataclass(frozen=True)
class Naming:
    """What the caller knows of the workflow: `name` and the metadata to keep."""

    tenant: str
    name: str | None = None
    owner: str | None = None
    version: str | None = None
    classification: str | None = None


@dataclass
class ImportOutcome:
    """One import, before or after writing: the spec, the bindings and the report."""

    key: str
    file: str
    engine: str
    document: dict[str, Any]
    text: str
    workflow: Workflow
    report: FidelityReport
    bindings: BindingPlan
    environment_file: str
    environment_text: str
    environment: Environment
    notes: list[str] = field(default_factory=list)
    written: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.key,
            "file": self.file,
            "engine": self.engine,
            "written": self.written,
            "environment": self.environment.name,
            "environmentFile": self.environment_file,
            "bindings": self.bindings.to_json(),
            "notes": list(self.notes),
            "fidelity": self.report.to_json(),
            "spec": self.document,
        }


def parse_source(path: Path) -> Any:
    """The document of an ASL (JSON) or Argo (YAML) file; ConfigError naming the file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    # JSON is YAML: one bounded parse for both (depth, alias expansion)
    excess = beyond_bounds(text)
    if excess is not None:
        raise ConfigError(f"{path}:{excess.line}:{excess.column}: {excess.message}")
    try:
        return json.loads(text)  # JSON first: YAML refuses JSON indented with tabs
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: neither JSON nor YAML: {error}") from None


def prepare(
    repo: Path,
    environment: Environment,
    source: Any,
    origin: str,
    naming: Naming,
    *,
    default_name: str,
) -> ImportOutcome:
    """Import `source` (named `origin` in messages) for `environment`, in memory."""
    if is_argo(source):
        argo = import_argo(source, origin)
        engine, body, report = "argo", argo.spec, argo.report
        description, wanted = argo.description, argo.activities
        default_name = argo.name or default_name
    else:
        asl = import_asl(source, origin)
        engine, body, report = "stepfunctions", asl.spec, asl.report
        description = asl.description
        wanted = {name: {"resource": arn} for name, arn in asl.activities.items()}
    name = naming.name or slug(default_name)
    if not _valid_name(name):
        raise ConfigError(f"'{name}' is not a workflow name (pattern {NAME_PATTERN}): use --name")
    bindings = plan_bindings(environment, engine, wanted)
    _rename_activities(body.get("steps", []), bindings.renamed)
    notes: list[str] = []
    target = _target(environment, engine, naming.tenant, name, notes)
    metadata: dict[str, Any] = {
        "name": name,
        "tenant": naming.tenant,
        "version": naming.version or DEFAULT_VERSION,
        "owner": naming.owner or naming.tenant,
    }
    if description:
        metadata["description"] = description
    if target is not None and target.select.labels:
        metadata["labels"] = dict(target.select.labels)
    if naming.classification:
        metadata["classification"] = naming.classification
    document = {"apiVersion": API_VERSION, "kind": "Workflow", "metadata": metadata, "spec": body}
    relative = f"workflows/{naming.tenant}/{name}.yaml"
    text = _header(origin, report) + yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    workflow = _validated(relative, text)
    env_file = _environment_file(repo, environment.name)
    env_text = env_file.read_text(encoding="utf-8")
    new_env_text = add_bindings(env_text, env_file.name, bindings)
    new_environment = _validated_environment(env_file.relative_to(repo).as_posix(), new_env_text)
    for conflict in bindings.conflicts:
        notes.append(
            f"activity '{conflict.activity}' is bound differently in {environment.name} "
            f"({json.dumps(conflict.existing)}): kept it, bound the import as "
            f"'{conflict.bound_as}'"
        )
    return ImportOutcome(
        key=f"{naming.tenant}/{name}",
        file=relative,
        engine=engine,
        document=document,
        text=text,
        workflow=workflow,
        report=report,
        bindings=bindings,
        environment_file=env_file.relative_to(repo).as_posix(),
        environment_text=new_env_text,
        environment=new_environment,
        notes=notes,
    )


def write(repo: Path, outcome: ImportOutcome, *, force: bool) -> ImportOutcome:
    """Write the spec and the environment file; refuses to replace a spec unless `force`."""
    path = repo / outcome.file
    for loaded in load_workflows(repo).workflows:
        if loaded.model.key == outcome.key and Path(loaded.file).with_suffix("") != Path(
            outcome.file
        ).with_suffix(""):
            raise ConfigError(
                f"{outcome.key} is already defined in {loaded.file}: pass --name to import "
                "under another name"
            )
    if any(path.with_suffix(suffix).exists() for suffix in SUFFIXES) and not force:
        raise ConfigError(
            f"{outcome.file} already exists: pass --force to replace it, or --name to import "
            "under another name"
        )
    env_path = repo / outcome.environment_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outcome.text, encoding="utf-8")
        if env_path.read_text(encoding="utf-8") != outcome.environment_text:
            env_path.write_text(outcome.environment_text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write {error.filename or path}: {error.strerror}") from None
    outcome.written = True
    return outcome


class _Dumper(yaml.SafeDumper):
    """Block YAML with list items indented under their key, as the repo's specs are."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _header(origin: str, report: FidelityReport) -> str:
    lines = [f"# Imported by `cpl import` from {origin} ({report.fidelity})."]
    for finding in report.not_exact():
        lines.append(f"# {finding.fidelity}: {finding.source}: {finding.detail}")
    return "\n".join(lines) + "\n"


def _valid_name(name: str) -> bool:
    return bool(re.match(NAME_PATTERN, name))


def _rename_activities(steps: list[dict[str, Any]], renamed: dict[str, str]) -> None:
    for step in steps:
        if step.get("type") == "task" and step.get("activity") in renamed:
            step["activity"] = renamed[step["activity"]]
        for branch in step.get("branches", []):
            _rename_activities(branch.get("steps", []), renamed)
        _rename_activities(step.get("steps", []), renamed)


def _target(
    environment: Environment, engine: str, tenant: str, name: str, notes: list[str]
) -> Target | None:
    """The first target of the engine whose selector the workflow can satisfy (labels are
    copied into the spec); a note when none can."""
    candidates = [t for t in environment.spec.targets if t.engine == engine]
    for target in candidates:
        select = target.select
        if select.tenants and tenant not in select.tenants:
            continue
        if select.names and name not in select.names and f"{tenant}/{name}" not in select.names:
            continue
        return target
    notes.append(
        f"no {engine} target of environment '{environment.name}' selects {tenant}/{name}: "
        "add it to a target's select before `cpl plan`"
    )
    return None


def _environment_file(repo: Path, name: str) -> Path:
    for suffix in SUFFIXES:
        path = repo / "environments" / f"{name}{suffix}"
        if path.is_file():
            return path
    raise ConfigError(f"no environment file for '{name}' under {repo / 'environments'}")


def _validated(file: str, text: str) -> Workflow:
    result = load_sources([decode(file, text.encode("utf-8"))], expected_kind="Workflow")
    if not result.ok or not result.workflows:
        raise ConfigError(
            f"the imported spec {file} does not validate (nothing written)",
            diagnostics=result.diagnostics,
        )
    return result.workflows[0].model


def _validated_environment(file: str, text: str) -> Environment:
    result = load_sources([decode(file, text.encode("utf-8"))], expected_kind="Environment")
    if not result.ok or not result.environments:
        raise ConfigError(
            f"{file} with the imported bindings does not validate (nothing written)",
            diagnostics=result.diagnostics,
        )
    return result.environments[0].model
