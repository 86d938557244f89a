"""Posting to a real local receiver: retries, Retry-After, redirects; the spool's bounds and
crash safety; which webhook URLs an environment may name."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.notify import spool as spool_module
from controlplane.notify.sender import RetryPolicy, post
from controlplane.notify.spool import Failure, Spool
from controlplane.notify.webhook import shown_url, url_problem
from tests.notify.conftest import Repo, add_notifications
from tests.receivers import Receiver

BODY = b'{"text": "hello"}'


def test_backoff_between_retries_is_bounded_and_retries_are_bounded(receiver: Receiver) -> None:
    receiver.answers = [(500, {})] * 4
    receiver.start()
    pauses: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.08)

    error = post(receiver.url(), BODY, policy, sleep=pauses.append)

    assert error == Failure("HTTP 500 Internal Server Error (after 4 attempts)")
    assert len(receiver.received) == 4
    assert len(pauses) == 3 and all(0.025 <= pause <= 0.08 for pause in pauses)


def test_retry_after_is_honoured_within_its_cap(receiver: Receiver) -> None:
    receiver.answers = [(429, {"Retry-After": "2"})]
    receiver.start()
    pauses: list[float] = []

    error = post(receiver.url(), BODY, RetryPolicy(retry_after_cap=5), sleep=pauses.append)

    assert error is None
    assert pauses == [2.0]
    assert [r.status for r in receiver.received] == [429, 200]


def test_a_retry_after_beyond_the_cap_leaves_the_message_for_later(receiver: Receiver) -> None:
    receiver.answers = [(503, {"Retry-After": "3600"})]
    receiver.start()
    pauses: list[float] = []

    error = post(receiver.url(), BODY, RetryPolicy(retry_after_cap=30), sleep=pauses.append)

    assert error is not None and "Retry-After 3600s: not waiting" in error.reason
    assert pauses == [] and len(receiver.received) == 1


def test_a_rejection_is_not_retried_and_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answers = [(404, {}), (302, {"Location": "http://127.0.0.1:9/elsewhere"})]
    receiver.start()

    assert post(receiver.url(), BODY, sleep=lambda _: None) == Failure("HTTP 404 Not Found")
    assert post(receiver.url(), BODY, sleep=lambda _: None) == Failure("HTTP 302 Found")
    assert len(receiver.received) == 2


def test_a_message_refused_as_malformed_is_dropped_and_does_not_block_the_next(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.answers = [(404, {}), (400, {})]
    receiver.start()
    spool = Spool(tmp_path / "spool")
    spool.add(b'{"n": 1}', "drift")
    spool.add(b'{"n": 2}', "drift")

    def send(body: bytes) -> Failure | None:
        return post(receiver.url(), body, sleep=lambda _: None)

    gone = spool.flush(send)  # 404: the webhook is gone; both wait
    assert (gone.delivered, gone.pending, gone.error) == (0, 2, "HTTP 404 Not Found")
    refused = spool.flush(send)  # 400 for the first: dropped, the second goes out

    assert (refused.delivered, refused.pending) == (1, 0)
    assert refused.error == "a message was refused and dropped: HTTP 400 Bad Request"
    assert [r.body for r in receiver.received] == [b'{"n": 1}', b'{"n": 1}', b'{"n": 2}']
    assert spool.pending() == []


def test_a_full_spool_drops_its_oldest_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "MAX_SPOOLED", 3)
    spool = Spool(tmp_path / "spool")

    dropped = [spool.add(f'{{"n": {n}}}'.encode(), "drift") for n in range(5)]

    assert dropped == [0, 0, 0, 1, 1]
    assert [path.read_text() for path in spool.pending()] == ['{"n": 2}', '{"n": 3}', '{"n": 4}']


def test_a_message_cut_short_by_a_crash_is_never_sent(tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    spool = Spool(tmp_path / "spool")
    spool.add(b'{"n": 1}', "drift")
    (spool.directory / ".00000000000000000002-0000001-drift.notice.json.tmp").write_bytes(b'{"n"')

    result = spool.flush(lambda body: post(receiver.url(), body))

    assert (result.delivered, result.pending, result.error) == (1, 0, None)
    assert [r.body for r in receiver.received] == [b'{"n": 1}']


def test_a_webhook_url_shows_only_its_scheme_and_host() -> None:
    assert shown_url("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"
    assert shown_url("https://example.com:8443/?token=x") == "https://example.com:8443/…"
    assert shown_url("https://example.com") == "https://example.com/"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/services/x", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://[::1]:9/hook", True),
        ("http://hooks.example.com/hook", False),
        ("http://10.0.0.1/hook", False),
        ("ftp://example.com/x", False),
        ("https://user:pw@example.com/x", False),
        ("https:///nohost", False),
    ],
)
def test_which_webhooks_may_be_posted_to(url: str, allowed: bool) -> None:
    assert (url_problem(url) is None) is allowed


def test_an_http_webhook_to_another_host_is_refused_when_the_environment_loads(
    checked_repo: Repo,
) -> None:
    environment = checked_repo.root / "environments" / "dev.yaml"
    add_notifications(
        environment, "{webhook: 'http://hooks.example.com/services/abc', events: [drift]}"
    )
    text = environment.read_text().splitlines()
    line = next(n for n, row in enumerate(text, 1) if "hooks.example.com" in row)

    result = checked_repo.cpl("check")

    assert result.code == 1
    assert f"environments/dev.yaml:{line}:" in result.out + result.err
    assert (
        "CPL-S061 webhook: 'http://hooks.example.com/…' is http:// to a host that is not loopback"
        in (result.out + result.err)
    )
    assert "services/abc" not in result.out + result.err
