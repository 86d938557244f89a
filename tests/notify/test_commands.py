"""Notifications from the real commands to a real local webhook receiver: `cpl check`
denied, `cpl drift` finding drift on the session's engines, `cpl apply` failing on an
unreachable engine; delivery, spooling, `cpl notify flush`, and exit codes left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.drift.conftest import ControlRepo, MakeControlRepo
from tests.notify.conftest import Repo, add_notifications
from tests.receivers import Receiver


def _environment_file(repo: Repo) -> Path:
    return repo.root / "environments" / f"{repo.env}.yaml"


def _texts(message: dict[str, object]) -> str:
    return json.dumps(message["blocks"])


def test_a_denied_check_posts_one_slack_message_with_its_findings(
    checked_repo: Repo, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.start()
    add_notifications(
        _environment_file(checked_repo),
        f"{{webhook: '{receiver.url()}', events: [check-denied], format: slack}}",
    )
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/control")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")

    result = checked_repo.cpl("check")

    assert result.code == 3
    assert result.warnings == []
    (request,) = receiver.received
    assert request.content_type.startswith("application/json")
    message = request.json()
    assert message["text"].startswith("cpl check denied on dev (exit 3)")
    header, fields, *rest = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "cpl check denied on dev"},
    }
    assert {"type": "mrkdwn", "text": "*Environment*\ndev"} in fields["fields"]
    assert {"type": "mrkdwn", "text": "*denied*\n4"} in fields["fields"]
    findings = [b["text"]["text"] for b in rest if b["type"] == "section"]
    assert len(findings) == 4
    assert any(
        f.startswith("`workflows/finance/fx-rates-refresh.yaml:") and "CPL-P016" in f
        for f in findings
    ), findings
    assert any(
        "workflows/health/lab-results-ingest.yaml:" in f and "CPL-P012" in f for f in findings
    )
    assert rest[-1] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": "<https://github.com/acme/control/actions/runs/4242|View the run>",
            }
        ],
    }
    assert checked_repo.spooled() == []


def test_the_json_format_carries_the_check_reports_summary(
    checked_repo: Repo, receiver: Receiver
) -> None:
    receiver.start()
    add_notifications(
        _environment_file(checked_repo),
        f"{{webhook: '{receiver.url()}', events: [check-denied, drift], format: json}}",
    )
    report = checked_repo.root / "check.json"

    result = checked_repo.cpl("check", "--format", "json", "-o", str(report))

    assert result.code == 3
    (request,) = receiver.received
    sent = request.json()
    assert sent["summary"] == json.loads(report.read_text())["summary"]
    assert (sent["event"], sent["command"], sent["environment"], sent["exitCode"]) == (
        "check-denied",
        "check",
        "dev",
        3,
    )
    assert sent["totalFindings"] == 4 and len(sent["findings"]) == 4
    assert {f["rule"] for f in sent["findings"]} == {"CPL-P016", "CPL-P008", "CPL-P012", "CPL-P011"}
    assert sent["run"] is None


def test_a_check_that_passes_or_a_webhook_for_other_events_sends_nothing(
    checked_repo: Repo, receiver: Receiver
) -> None:
    receiver.start()
    add_notifications(
        _environment_file(checked_repo), f"{{webhook: '{receiver.url()}', events: [drift]}}"
    )
    assert checked_repo.cpl("check").code == 3
    assert receiver.received == []


def test_server_errors_twice_then_ok_deliver_the_message_once(
    checked_repo: Repo, receiver: Receiver
) -> None:
    receiver.answers = [(500, {}), (503, {})]
    receiver.start()
    add_notifications(
        _environment_file(checked_repo), f"{{webhook: '{receiver.url()}', events: [check-denied]}}"
    )

    result = checked_repo.cpl("check")

    assert result.code == 3
    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert len(receiver.accepted()) == 1
    assert result.warnings == []
    assert checked_repo.spooled() == []


def test_a_failed_apply_posts_one_message(failing_apply_repo: Repo, receiver: Receiver) -> None:
    receiver.start()
    add_notifications(
        _environment_file(failing_apply_repo),
        f"{{webhook: '{receiver.url()}', events: [apply-failed], format: json}}",
    )

    result = failing_apply_repo.cpl("apply", "--yes")

    assert result.code == 1
    (request,) = receiver.received
    sent = request.json()
    assert (sent["event"], sent["command"], sent["exitCode"]) == ("apply-failed", "apply", 1)
    assert "cannot read the live state of sfn-local/retail-inventory-sync" in sent["error"]


def test_an_apply_whose_change_fails_posts_the_failed_change(
    failing_change_repo: Repo, receiver: Receiver
) -> None:
    receiver.start()
    add_notifications(
        _environment_file(failing_change_repo),
        f"{{webhook: '{receiver.url()}', events: [apply-failed], format: json}}",
    )

    result = failing_change_repo.cpl("apply", "--yes")

    assert result.code == 1
    assert "FAILED   create retail/price-feed-export @ argo-local" in result.out + result.err
    (request,) = receiver.received
    sent = request.json()
    # applied: the target's Prometheus rules file (written under .cpl/prometheus)
    assert sent["summary"] == {"applied": 1, "deleted": 0, "failed": 1, "skipped": 0}
    (finding,) = sent["findings"]
    assert finding["where"] == "argo-local/retail-price-feed-export"
    assert (finding["status"], finding["action"], finding["workflow"]) == (
        "failed",
        "create",
        "retail/price-feed-export",
    )
    assert "cannot write" in finding["text"]
    assert sent["error"] is None


def test_webhook_down_spools_and_flush_sends_later_in_order_once(
    checked_repo: Repo, receiver: Receiver
) -> None:
    add_notifications(
        _environment_file(checked_repo),
        f"{{webhook: '{receiver.url()}', events: [check-denied, apply-failed], format: json}}",
    )
    first = checked_repo.cpl("check")
    workflow = checked_repo.root / "workflows" / "finance" / "fx-rates-refresh.yaml"
    workflow.unlink()  # the second message differs: one denial fewer
    second = checked_repo.cpl("check")

    for result in (first, second):
        assert result.code == 3  # the exit code of the check, not of the notification
        (warning,) = result.warnings
        assert warning.startswith(
            f"warning: notification (check-denied) to webhook http://127.0.0.1:{receiver.port}/… "
            "not sent: unreachable"
        )
        assert warning.endswith("wait for `cpl notify flush --env dev`")
    assert len(checked_repo.spooled()) == 2

    receiver.start()
    flushed = checked_repo.cpl("notify", "flush")

    assert flushed.code == 0, flushed.err
    assert flushed.out.strip() == f"http://127.0.0.1:{receiver.port}/…: delivered 2, pending 0"
    assert [r.json()["summary"]["denied"] for r in receiver.received] == [4, 2]
    assert checked_repo.spooled() == []
    again = checked_repo.cpl("notify", "flush")
    assert (again.code, len(receiver.received)) == (0, 2)


def test_flush_exits_1_while_the_webhook_is_still_down(
    checked_repo: Repo, receiver: Receiver
) -> None:
    add_notifications(
        _environment_file(checked_repo), f"{{webhook: '{receiver.url()}', events: [check-denied]}}"
    )
    assert checked_repo.cpl("check").code == 3

    flushed = checked_repo.cpl("notify", "flush")

    assert flushed.code == 1
    assert "delivered 0, pending 1 (unreachable at" in flushed.out
    assert len(checked_repo.spooled()) == 1


def test_the_secret_part_of_the_url_is_never_shown_nor_in_the_spool(
    checked_repo: Repo, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "T0SECRET/B0SECRET/xq7Rz1VbS3cr3tW3bh00kP4rt"
    monkeypatch.setenv("CPL_TEST_WEBHOOK", receiver.url(f"/services/{secret}?token=tok3nv4lue"))
    add_notifications(
        _environment_file(checked_repo),
        "{webhook: {env: CPL_TEST_WEBHOOK}, events: [check-denied]}",
    )

    down = checked_repo.cpl("check")

    assert down.code == 3
    (warning,) = down.warnings
    assert f"$CPL_TEST_WEBHOOK (http://127.0.0.1:{receiver.port}/…)" in warning
    receiver.start()
    flushed = checked_repo.cpl("notify", "flush")
    assert flushed.code == 0
    assert [r.path for r in receiver.received] == [f"/services/{secret}?token=tok3nv4lue"]

    shown = down.out + down.err + flushed.out + flushed.err
    stored = [
        str(path.relative_to(checked_repo.root)) + path.read_text(errors="replace")
        for path in (checked_repo.root / ".cpl").rglob("*")
        if path.is_file()
    ]
    names = [str(p) for p in (checked_repo.root / ".cpl").rglob("*")]
    for part in ("SECRET", "S3cr3t", "tok3n", "services"):
        assert part not in shown
        assert not any(part in text for text in stored + names)


def test_an_unset_webhook_variable_warns_and_keeps_the_exit_code(
    checked_repo: Repo, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CPL_TEST_UNSET_WEBHOOK", raising=False)
    add_notifications(
        _environment_file(checked_repo),
        "{webhook: {env: CPL_TEST_UNSET_WEBHOOK}, events: [check-denied]}",
    )

    result = checked_repo.cpl("check")

    assert result.code == 3
    (warning,) = result.warnings
    assert "$CPL_TEST_UNSET_WEBHOOK is not set" in warning
    assert len(checked_repo.spooled()) == 1


def test_a_failed_apply_keeps_exit_1_when_the_webhook_is_down(
    failing_apply_repo: Repo, receiver: Receiver
) -> None:
    add_notifications(
        _environment_file(failing_apply_repo),
        f"{{webhook: '{receiver.url()}', events: [apply-failed]}}",
    )

    result = failing_apply_repo.cpl("apply", "--yes")

    assert result.code == 1
    (warning,) = result.warnings
    assert "notification (apply-failed)" in warning
    assert len(failing_apply_repo.spooled()) == 1


# -- drift, on the session's engines ----------------------------------------------------------


def _drift_repo(control_repo: MakeControlRepo, receiver: Receiver) -> ControlRepo:
    repo = control_repo()
    add_notifications(
        repo.root / "environments" / f"{repo.env}.yaml",
        f"{{webhook: '{receiver.url()}', events: [drift], format: slack}}",
    )
    return repo


@pytest.mark.integration
def test_drift_found_posts_one_message(control_repo: MakeControlRepo, receiver: Receiver) -> None:
    receiver.start()
    repo = _drift_repo(control_repo, receiver)  # nothing deployed: every resource is missing

    code, report = repo.drift()

    assert code == 5, report
    (request,) = receiver.received
    message = request.json()
    assert message["blocks"][0]["text"]["text"] == f"cpl drift found drift on {repo.env}"
    findings = [
        b["text"]["text"] for b in message["blocks"] if "text" in b and b["type"] == "section"
    ]
    assert len(findings) == report["summary"]["missing"] == 3
    assert all(" missing " in finding for finding in findings)
    assert any(
        f.startswith(f"`workflows/{repo.tenant}/order-fulfillment.yaml` missing") for f in findings
    ), findings
    assert repo.sfn_resource in _texts(message)


@pytest.mark.integration
def test_drift_keeps_exit_5_when_the_webhook_is_down(
    control_repo: MakeControlRepo, receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = _drift_repo(control_repo, receiver)

    code, _ = repo.drift()

    assert code == 5
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning: notif" in line]
    assert len(warnings) == 1 and "notification (drift)" in warnings[0]
    spool = repo.root / ".cpl" / "notify" / "spool" / repo.env
    assert len(list(spool.rglob("*.notice.json"))) == 1
