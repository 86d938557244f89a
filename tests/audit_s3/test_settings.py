"""The `s3` audit sink's settings, and the head a new runner refuses to append after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from controlplane.audit import AuditError, Auditor
from controlplane.audit.s3store import s3_client
from controlplane.spec.environment import AwsSettings, Sink
from controlplane.spec.load import load_environment
from tests.audit_s3.conftest import key


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"s3": "s3://bucket/audit", "file": "a.jsonl"}, "exactly one of `file`, `http` or `s3`"),
        ({"file": "a.jsonl", "region": "eu-west-1"}, "belong to an `s3` audit sink"),
        ({"http": "https://a.example", "retention": {"mode": "COMPLIANCE", "days": 1}}, "`s3`"),
        ({"s3": "https://bucket/audit"}, "should match pattern"),
        ({"s3": "s3://bucket", "retention": {"mode": "LEGAL", "days": 1}}, "COMPLIANCE"),
        ({"s3": "s3://bucket", "retention": {"mode": "GOVERNANCE", "days": 0}}, "greater than"),
    ],
)
def test_bad_sink_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Sink.model_validate(settings)


def test_the_sink_region_and_endpoint_win_over_the_environments() -> None:
    aws = AwsSettings(region="eu-west-1", endpoint="http://127.0.0.1:1")
    own = s3_client(Sink(s3="s3://audit-bucket/p", endpoint="http://127.0.0.1:2"), aws, 1.0)
    assert (own.meta.region_name, own.meta.endpoint_url) == ("eu-west-1", "http://127.0.0.1:2")
    inherited = s3_client(Sink(s3="s3://audit-bucket/p", region="us-west-2"), aws, 1.0)
    assert inherited.meta.region_name == "us-west-2"
    assert inherited.meta.endpoint_url == "http://127.0.0.1:1"


def test_a_new_runner_refuses_to_append_after_an_edited_head(
    runner: Callable[..., Path], bucket: str, s3: Any
) -> None:
    first = runner("first", bucket)
    Auditor.for_environment(first, load_environment(first, "prod")).emit(
        "dev.cpl.plan.created", None, {"count": 1}
    )
    edited = (
        s3.get_object(Bucket=bucket, Key=key(1))["Body"].read().replace(b'"count":1', b'"count":2')
    )
    s3.put_object(Bucket=bucket, Key=key(1), Body=edited)

    second = runner("second", bucket)
    with pytest.raises(AuditError, match=f"s3://{bucket}/{key(1)}: the last line's cplhash"):
        Auditor.for_environment(second, load_environment(second, "prod")).emit(
            "dev.cpl.plan.created", None, {"count": 3}
        )
    assert len(list((second / ".cpl" / "audit" / "spool").rglob("*.s3.json"))) == 1
