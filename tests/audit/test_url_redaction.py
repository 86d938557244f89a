"""A URL is never shown with its user:password or a secret query parameter: audit sinks
(`cpl audit flush`, spool warnings), the remote OPA server and any error cpl prints."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from controlplane.audit import Auditor
from controlplane.cli import run
from controlplane.redaction import redact_text, redact_url
from controlplane.spec.environment import Sink
from tests.receivers import free_port

SECRETS = ("hunter2-pw", "tok-0001", "sig-0001", "key-0001")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:hunter2-pw@c.example/in?token=tok-0001&tenant=x",
         "https://***@c.example/in?token=***&tenant=x"),
        ("https://c.example/o?X-Id=1&sig=sig-0001", "https://c.example/o?X-Id=1&sig=***"),
        ("http://c.example:8080/p?api_key=key-0001#top", "http://c.example:8080/p?api_key=***#top"),
        ("postgres://admin:hunter2-pw@db/x", "postgres://***@db/x"),
        ("https://c.example/in?page=2", "https://c.example/in?page=2"),
        ("127.0.0.1:7233", "127.0.0.1:7233"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_inside_messages_are_redacted() -> None:
    message = "POST https://bob:hunter2-pw@c.example/in?token=tok-0001 failed: refused"
    assert redact_text(message) == "POST https://***@c.example/in?token=*** failed: refused"


def _cpl(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue() + err.getvalue()


def test_audit_flush_and_spool_warnings_hide_credentials(tmp_path: Path) -> None:
    url = f"http://bob:hunter2-pw@127.0.0.1:{free_port()}/events?token=tok-0001&tenant=x"
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: prod}\n"
        "spec:\n  tier: production\n"
        "  targets: [{name: sfn, engine: stepfunctions, region: us-east-1}]\n"
        f"  audit: {{sinks: [{{http: '{url}'}}]}}\n"
    )
    recorded = Auditor(tmp_path, "prod", [Sink(http=url)]).emit("dev.cpl.plan.created")
    assert recorded.pending == 1 and recorded.warnings
    for secret in SECRETS:
        assert secret not in " ".join(recorded.warnings)

    code, shown = _cpl("audit", "flush", "--env", "prod", "--repo", str(tmp_path))
    assert code == 1
    assert "pending 1" in shown and "http://***@127.0.0.1" in shown and "token=***" in shown
    for secret in SECRETS:
        assert secret not in shown


def test_an_unreachable_policy_server_is_named_without_credentials(tmp_path: Path) -> None:
    server = f"http://admin:hunter2-pw@127.0.0.1:{free_port()}/?token=tok-0001"
    (tmp_path / "environments").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "apiVersion: cpl.dev/v1\nkind: Environment\nmetadata: {name: prod}\n"
        "spec:\n  tier: production\n"
        "  targets: [{name: sfn, engine: stepfunctions, region: us-east-1}]\n"
        f"  policy: {{server: '{server}'}}\n"
    )
    code, shown = _cpl("check", "--env", "prod", "--repo", str(tmp_path))
    assert code == 1, shown
    assert "OPA server http://***@127.0.0.1" in shown
    for secret in SECRETS:
        assert secret not in shown


def test_engine_endpoints_in_drift_failures_and_errors_hide_credentials(tmp_path: Path) -> None:
    """A Step Functions endpoint that nothing answers (a closed port: no engine needed)."""
    from tests.deploy.conftest import write_repo

    endpoint = f"http://bob:hunter2-pw@127.0.0.1:{free_port()}/?token=tok-0001"
    repo = write_repo(tmp_path / "repo", endpoint, "127.0.0.1:9", ["retail/inventory-sync"])
    drift = repo.cpl("drift", "--env", "local", "--format", "json")
    assert drift.code == 1 or drift.code == 5, drift.out + drift.err
    planned = repo.cpl("plan", "--env", "local")
    assert planned.code == 1
    shown = drift.out + drift.err + planned.out + planned.err
    assert "127.0.0.1" in shown
    for secret in SECRETS:
        assert secret not in shown
