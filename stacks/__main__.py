"""The stack program: every (workflow, target) of one environment as a `CplWorkflowResource`.

Configuration (stack config, else environment variables, else defaults): `cpl:repo` /
`CPL_REPO`, the control repo (default: the parent of this directory); `cpl:environment` /
`CPL_ENVIRONMENT`, the environment (default: the stack name). The program only loads, renders
and declares; the engine work happens in the resources' provider during `pulumi up`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from controlplane.deploy.pulumi_provider import declare
from controlplane.errors import ConfigError
from controlplane.pipeline import render_all
from controlplane.spec.load import load_environment, load_workflows


def settings() -> tuple[Path, str]:
    """The control repo and the environment name this stack deploys."""
    config = pulumi.Config("cpl")
    repo = config.get("repo") or os.environ.get("CPL_REPO") or str(Path(__file__).parents[1])
    environment = (
        config.get("environment") or os.environ.get("CPL_ENVIRONMENT") or pulumi.get_stack()
    )
    return Path(repo).resolve(), environment


def program() -> None:
    """Load the repo, render every artifact of the environment and declare them."""
    repo, name = settings()
    environment = load_environment(repo, name)
    loaded = load_workflows(repo)
    if not loaded.ok:
        errors = [d for d in loaded.diagnostics if d.severity == "error"]
        raise ConfigError(
            f"{repo}: the workflows have {len(errors)} error(s); run `cpl validate`",
            diagnostics=errors,
        )
    artifacts = render_all([w.model for w in loaded.workflows], environment)
    declare(artifacts, environment.name, repo)


if __name__ == "__main__":  # Pulumi runs this file with runpy under run_name "__main__"
    program()
