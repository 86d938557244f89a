"""boto3 clients for Step Functions targets (and their emulator endpoints)."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from controlplane.engines.timeouts import Timeouts
from controlplane.errors import ConfigError
from controlplane.spec.environment import Target
from controlplane.spec.model import Workflow

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_session_lock = threading.Lock()


@lru_cache(maxsize=16)
def _session(region: str | None) -> boto3.session.Session:
    # A session loads credentials and service models once; a new session per client costs
    # most of a second, and plan/apply/drift make clients per target and service.
    return boto3.session.Session(region_name=region)


def aws_client(target: Target, service: str, *, botocore_retries: bool = False) -> Any:
    """A boto3 client of `service` for the target's region and endpoint.

    A local emulator (an endpoint on the loopback address) accepts any credentials: when none
    are configured, placeholders stand in so local runs work out of the box. botocore's own
    retries are off unless asked for: the engine modules retry in `engines.retry`, the one
    place that counts and jitters them. Connect and read timeouts are the target's
    `timeouts.connect` and `timeouts.call`.
    """
    retries = {"mode": "standard"} if botocore_retries else {"total_max_attempts": 1}
    timeouts = Timeouts.of(target)
    options: dict[str, Any] = {
        "config": Config(
            retries=retries, connect_timeout=timeouts.connect, read_timeout=timeouts.call
        )
    }
    with _session_lock:  # sessions are not thread-safe while creating clients
        session = _session(target.region)
        if target.endpoint:
            options["endpoint_url"] = target.endpoint
            local = urlparse(target.endpoint).hostname in _LOOPBACK
            if local and session.get_credentials() is None:
                options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
        return session.client(service, **options)


def state_machine_arn(target: Target, workflow: Workflow) -> str:
    """`arn:aws:states:<region>:<account>:stateMachine:<tenant>-<name>` (the target's
    `account`, or that of its roleArn)."""
    parts = (target.role_arn or "").split(":")
    account = target.account or (parts[4] if len(parts) >= 6 else "")
    if not account:
        raise ConfigError(
            f"target '{target.name}' needs an account (or a roleArn "
            "arn:aws:iam::<account>:role/...) to locate its state machines"
        )
    name = f"{workflow.metadata.tenant}-{workflow.metadata.name}"
    return f"arn:aws:states:{target.region}:{account}:stateMachine:{name}"
