"""Resolving what a command acts on: a workflow by name or file, and its target."""

from __future__ import annotations

from pathlib import Path

from controlplane.errors import ConfigError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import load_repo, load_workflows
from controlplane.spec.locate import did_you_mean
from controlplane.spec.model import Workflow


def find_workflow(repo: Path, reference: str) -> Workflow:
    """The workflow `tenant/name` of the repo, or the one in file `reference`.

    ConfigError (with the file's diagnostics) when it does not load, or with a "did you
    mean" when no workflow has that name.
    """
    path = Path(reference)
    candidates = [path, repo / path] if not path.is_absolute() else [path]
    file = next((c for c in candidates if c.is_file()), None)
    if file is not None:
        result = load_repo(repo, [file])
        if not result.ok or not result.workflows:
            raise ConfigError(
                f"{reference} is not a valid workflow", diagnostics=result.diagnostics
            )
        return result.workflows[0].model
    if reference.count("/") != 1 or reference.endswith((".yaml", ".yml", ".json")):
        raise ConfigError(f"no workflow '{reference}': give tenant/name or an existing file")
    result = load_workflows(repo)
    for loaded in result.workflows:
        if loaded.model.key == reference:
            problems = [d for d in result.diagnostics if d.file == loaded.file]
            if any(d.severity == "error" for d in problems):
                raise ConfigError(f"workflow '{reference}' is invalid", diagnostics=problems)
            return loaded.model
    known = sorted(loaded.model.key for loaded in result.workflows)
    broken = [d for d in result.diagnostics if d.severity == "error"]
    hint = did_you_mean(reference, known)
    raise ConfigError(
        f"no workflow '{reference}' in {repo / 'workflows'}{hint}"
        + (f" ({len(broken)} problem(s) in other files: run cpl validate)" if broken else "")
    )


def select_target(environment: Environment, workflow: Workflow, name: str | None) -> Target:
    """The target a run goes to: `name`, or the only target of ENV selecting the workflow."""
    selected = environment.targets_for(workflow)
    if name is not None:
        target = target_named(environment, name)
        if target not in selected:
            raise ConfigError(
                f"target '{name}' of environment '{environment.name}' does not select "
                f"workflow '{workflow.key}'"
                + (f" (it goes to: {', '.join(t.name for t in selected)})" if selected else "")
            )
        return target
    if not selected:
        raise ConfigError(
            f"no target of environment '{environment.name}' selects workflow '{workflow.key}'"
        )
    if len(selected) > 1:
        raise ConfigError(
            f"workflow '{workflow.key}' goes to several targets of environment "
            f"'{environment.name}' ({', '.join(t.name for t in selected)}): choose one "
            "with --target"
        )
    return selected[0]


def target_named(environment: Environment, name: str, engine: str | None = None) -> Target:
    try:
        target = environment.target(name)
    except KeyError as error:
        raise ConfigError(str(error.args[0])) from None
    if engine is not None and target.engine != engine:
        raise ConfigError(
            f"target '{name}' of environment '{environment.name}' is a {target.engine} "
            f"target; this command needs a {engine} target"
        )
    return target
