"""Where an environment's deploy state lives: a directory of the repo or an S3 prefix.

Every backend keeps the same document (controlplane.deploy.state.State) with the same
guarantees: a reader sees a whole document, a write is refused over a document of another
lineage or one that changed since it was read, and the previous document survives a write.
Next to the state each backend keeps the normalized specs of the applied versions, which the
next plan compares against. `open_store` picks the backend from `deploy.state`.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.deploy.stores.base import StateBackend
from controlplane.deploy.stores.local import LocalStore
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings, Environment, confine_to_repo


def open_store(environment: Environment, repo: Path, location: str | None = None) -> StateBackend:
    """The state backend of `environment`: `location` (a `cpl state migrate --to` value)
    or else its `deploy.state`; a directory is confined to the repo as `deploy.state` is."""
    deploy = environment.spec.deploy
    if location is None:
        if deploy.remote:
            return _s3(str(deploy.state), environment, deploy_aws(environment))
        return LocalStore(environment.state_dir(repo))
    if location.startswith("s3://"):
        return _s3(location, environment, deploy_aws(environment))
    if "://" in location:
        raise ConfigError(f"'{location}' is neither a directory of the repo nor s3://bucket/prefix")
    directory = confine_to_repo(
        repo, location, deploy.allow_outside_repo, environment.name, "/spec/deploy/state"
    )
    return LocalStore(directory)


def deploy_aws(environment: Environment) -> AwsSettings | None:
    """The AWS account of the state and its lock: `deploy.aws`, else the environment's `aws`
    (the account cpl itself uses), else the default chain."""
    return environment.spec.deploy.aws or environment.spec.aws


def _s3(url: str, environment: Environment, aws: AwsSettings | None) -> StateBackend:
    from controlplane.deploy.stores.s3 import S3Store

    return S3Store(url, environment.name, aws)


__all__ = ["LocalStore", "StateBackend", "deploy_aws", "open_store"]
