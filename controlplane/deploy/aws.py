"""boto3 clients for the deploy state and its lock (`deploy.aws`: region and endpoint)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from controlplane.spec.environment import AwsSettings

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0


def deploy_client(aws: AwsSettings | None, service: str) -> Any:
    """A client of `service` (`s3`, `dynamodb`) in the region and endpoint of `aws`.

    Credentials come from the usual AWS chain; an emulator on the loopback address accepts
    any, so placeholders stand in when none are configured. botocore retries transient
    errors itself (standard mode): a state write is conditional, so repeating one is safe.
    """
    settings = aws or AwsSettings()
    options: dict[str, Any] = {
        "config": Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
    }
    session = boto3.session.Session(region_name=settings.region)
    if settings.endpoint:
        options["endpoint_url"] = settings.endpoint
        local = urlparse(settings.endpoint).hostname in _LOOPBACK
        if local and session.get_credentials() is None:
            options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
    return session.client(service, **options)


def aws_problem(error: Exception) -> str:
    """A one-line reason from a botocore error, without request ids or credentials."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        details = response.get("Error", {})
        code = str(details.get("Code", "")).strip()
        message = str(details.get("Message", "")).strip()[:300]
        return f"{code}: {message}" if message else code or type(error).__name__
    return str(error)[:300] or type(error).__name__


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
