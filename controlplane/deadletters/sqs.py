"""The SQS queues dead letters go to: send, read without consuming, take one, delete.

A queue is a binding value (a queue name or an SQS queue URL) reached in a region through an
optional endpoint: a Temporal target's queues through the environment's `spec.aws`, a Step
Functions target's through the target's own region and endpoint (where its state machines
send them). botocore's retries are off: the callers decide how hard to try.

Reading never consumes: messages are received with a visibility timeout long enough to walk
the queue (each receive returns messages not seen yet), then made visible again at once. A
walk is bounded by `MAX_MESSAGES` and by receives that bring nothing new.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MAX_MESSAGES: Final = 1000
"""At most this many messages are read from one queue per command."""

WALK_VISIBILITY: Final = 30
"""Seconds a message read by a walk stays hidden unless released earlier (a crashed walk
leaves the queue as it was after this long)."""

_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_lock = threading.Lock()


class QueueUnreachable(Exception):
    """The queue could not be reached or refused the call (the message says which queue)."""


class QueueMissing(QueueUnreachable):
    """The queue service answered: no such queue (it holds no messages yet)."""


_MISSING: Final = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class Queue:
    """A queue by its binding value, in `region`, through `endpoint` when set."""

    binding: str
    region: str
    endpoint: str | None = None

    @property
    def name(self) -> str:
        return self.binding.rstrip("/").rsplit("/", 1)[-1]

    def describe(self) -> str:
        where = self.endpoint or f"SQS in {self.region}"
        return f"queue {self.name} ({where})"


@dataclass(frozen=True)
class Received:
    """A message read from a queue: its SQS id, the handle to delete or release it, its body."""

    message_id: str
    receipt: str
    body: str


@lru_cache(maxsize=8)
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client_for(queue: Queue, *, connect: float = 2.0, read: float = 5.0) -> Any:
    """A boto3 SQS client for the queue (placeholder credentials for a loopback emulator)."""
    options: dict[str, Any] = {
        "config": Config(
            retries={"total_max_attempts": 1}, connect_timeout=connect, read_timeout=read
        )
    }
    with _lock:  # sessions are not thread-safe while creating clients
        session = _session(queue.region)
        if queue.endpoint:
            options["endpoint_url"] = queue.endpoint
            if urlparse(queue.endpoint).hostname in _LOOPBACK and session.get_credentials() is None:
                options.update(aws_access_key_id="cpl-local", aws_secret_access_key="cpl-local")
        return session.client("sqs", **options)


def queue_url(client: Any, queue: Queue) -> str:
    """The queue's URL: the binding itself when it is one, else looked up by name."""
    if queue.binding.startswith(("https://", "http://")):
        return queue.binding
    response = _call(queue, client.get_queue_url, QueueName=queue.binding)
    return str(response["QueueUrl"])


def send(queue: Queue, body: str, *, client: Any = None) -> str:
    """Send one message; its SQS message id. QueueUnreachable on any failure."""
    client = client or client_for(queue)
    url = queue_url(client, queue)
    response = _call(queue, client.send_message, QueueUrl=url, MessageBody=body)
    return str(response["MessageId"])


def peek(queue: Queue, *, client: Any = None, limit: int = MAX_MESSAGES) -> list[Received]:
    """Every message of the queue (at most `limit`), once each, none consumed."""
    return _walk(queue, client or client_for(queue), limit, None)[0]


def take(queue: Queue, wanted: Callable[[Received], bool], *, client: Any = None) -> list[Received]:
    """Every message `wanted` accepts (one dead letter may be there more than once), kept
    hidden for `WALK_VISIBILITY` seconds so that no other reader takes them meanwhile:
    delete them, or `release` them. The others are released at once."""
    return _walk(queue, client or client_for(queue), MAX_MESSAGES, wanted)[1]


def _walk(
    queue: Queue, client: Any, limit: int, wanted: Callable[[Received], bool] | None
) -> tuple[list[Received], list[Received]]:
    url = queue_url(client, queue)
    seen: dict[str, Received] = {}
    found: list[Received] = []
    try:
        while len(seen) < limit:
            response = _call(
                queue,
                client.receive_message,
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=WALK_VISIBILITY,
                WaitTimeSeconds=0,
            )
            fresh = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                received = Received(message["MessageId"], message["ReceiptHandle"], message["Body"])
                seen[received.message_id] = received
                if wanted is not None and wanted(received):
                    found.append(received)
    finally:
        held = {m.message_id for m in found}
        others = [m.receipt for m in seen.values() if m.message_id not in held]
        release(queue, others, client=client, url=url)
    return list(seen.values()), found


def release(queue: Queue, receipts: list[str], *, client: Any = None, url: str = "") -> None:
    """Make messages visible again now (best effort: they reappear by themselves anyway)."""
    if not receipts:
        return
    client = client or client_for(queue)
    url = url or queue_url(client, queue)
    for start in range(0, len(receipts), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
            for index, receipt in enumerate(receipts[start : start + 10])
        ]
        try:
            client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError):
            return


def delete(queue: Queue, receipt: str, *, client: Any = None) -> None:
    client = client or client_for(queue)
    url = queue_url(client, queue)
    _call(queue, client.delete_message, QueueUrl=url, ReceiptHandle=receipt)


def ensure(queue: Queue, *, client: Any = None) -> str:
    """Create the queue if it does not exist (local emulators); its URL."""
    client = client or client_for(queue)
    response = _call(queue, client.create_queue, QueueName=queue.name)
    return str(response["QueueUrl"])


def _call(queue: Queue, operation: Any, **arguments: Any) -> Any:
    try:
        return operation(**arguments)
    except ClientError as error:
        detail = error.response.get("Error", {})
        kind = QueueMissing if detail.get("Code") in _MISSING else QueueUnreachable
        raise kind(
            f"{queue.describe()}: {detail.get('Code', 'error')}: {detail.get('Message', '')}"
        ) from None
    except BotoCoreError as error:
        raise QueueUnreachable(f"{queue.describe()}: {error}") from None
