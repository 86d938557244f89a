"""What a notification says: Slack's limits kept, document text escaped, secrets masked."""

from __future__ import annotations

import json

from controlplane.notify.notice import Finding, Notice, check_notice
from controlplane.notify.payload import MAX_BODY, SLACK_MAX_BLOCKS, SLACK_MAX_TEXT, render
from controlplane.policy.decision import Decision, Violation, WaiverReport, WorkflowResult

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def _violation(number: int, message: str) -> Violation:
    return Violation(
        rule=f"CPL-P{number % 30:03d}",
        severity="high",
        enforcement="mandatory",
        message=message,
        path="/spec",
        file=f"workflows/t/w{number}.yaml",
        line=number + 1,
        column=3,
    )


def _decision(*messages: str) -> Decision:
    results = tuple(
        WorkflowResult(f"t/w{n}", "sfn", f"workflows/t/w{n}.yaml", (_violation(n, m),))
        for n, m in enumerate(messages)
    )
    return Decision("prod", results, WaiverReport(), rules={})


def test_a_huge_denial_stays_within_slacks_limits() -> None:
    decision = _decision(*[("x" * 5000) + f" <!channel> {n}" for n in range(1000)])

    body = render(check_notice(decision), "slack")
    message = json.loads(body)

    assert len(body) <= MAX_BODY
    assert len(message["text"]) <= SLACK_MAX_TEXT
    assert len(message["blocks"]) <= SLACK_MAX_BLOCKS
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= 150
    sections = [
        b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b
    ]
    assert len(sections) == 10 and all(len(text) <= 3000 for text in sections)
    assert message["blocks"][-1]["elements"][0]["text"] == "… and 990 more"
    assert "<!channel>" not in body.decode()


def test_document_text_is_escaped_for_slack_mrkdwn() -> None:
    decision = _decision("see <https://evil.example|your bank> & <!here>")

    message = json.loads(render(check_notice(decision), "slack"))

    finding = message["blocks"][2]["text"]["text"]
    assert finding == (
        "`workflows/t/w0.yaml:1` CPL-P000 see &lt;https://evil.example|your bank&gt; "
        "&amp; &lt;!here&gt; (t/w0 on sfn)"
    )


def test_secrets_in_findings_are_masked_as_on_the_console() -> None:
    decision = _decision(
        f"key {AWS_KEY} in a parameter",
        "endpoint https://user:hunter2@example.com/x?token=abc",
    )

    for fmt in ("slack", "json"):
        body = render(check_notice(decision), fmt).decode()
        assert AWS_KEY not in body and "hunter2" not in body and "token=abc" not in body
        assert "***sha256:" in body and "***@example.com" in body


def test_the_json_body_drops_findings_to_fit_its_bound() -> None:
    findings = tuple(Finding(f"f{n}.yaml:1", "y" * 500, {"n": n}) for n in range(20))
    notice = Notice("drift", "drift", "prod", "t", 5, {"missing": 20}, findings, 20, run_url=None)

    small = json.loads(render(notice, "json"))
    assert [f["n"] for f in small["findings"]] == list(range(20))

    big = Notice("drift", "drift", "prod", "t", 5, {"x": "z" * 60_000}, findings, 20, run_url=None)
    body = render(big, "json")
    assert len(body) <= MAX_BODY
    assert json.loads(body)["totalFindings"] == 20


def test_a_failed_change_of_a_regulated_workflow_hides_the_engine_text() -> None:
    from controlplane.deploy.apply import ApplyResult, Outcome
    from controlplane.deploy.plan import PlannedChange
    from controlplane.notify.notice import apply_notice

    def failed(workflow: str) -> Outcome:
        change = PlannedChange(
            "create", workflow, "sfn", "stepfunctions", workflow.replace("/", "-")
        )
        return Outcome(change, "failed", message="input rejected: patient Jane Roe, 1970-01-01")

    result = ApplyResult("prod", "sha256:0", (failed("health/intake"), failed("retail/sync")))
    notice = apply_notice("prod", 1, result, None, {"health/intake": "phi", "retail/sync": None})

    body = render(notice, "json").decode()
    regulated, plain = json.loads(body)["findings"]
    assert "Jane Roe" not in regulated["text"]
    assert "[redacted: 44 characters of engine error text of a phi workflow" in regulated["text"]
    assert "patient Jane Roe" in plain["text"]  # an unregulated workflow's error is shown
