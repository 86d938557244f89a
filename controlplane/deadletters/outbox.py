"""Handing dead letters to their queues without losing any: send with retries, else spool.

`Outbox.hand_off` tries the queue a few times with exponential backoff inside a short time
budget (a run never waits long on it), then appends the message to the environment's spool
(`spool.py`). `Outbox.resend` sends what the spool holds and drops what arrived; `cpl worker`
calls it when it starts and every `RESEND_INTERVAL` seconds, and every `cpl dlq` command
calls it first. A message sent whose answer was lost may arrive twice: it carries the same
CloudEvent `id` both times, and readers dedupe by it.

Which queue: a Step Functions target's dead letters are in SQS in the target's region,
through its endpoint (where its state machines send them); a Temporal target's in SQS of the
environment's `spec.aws` section. An environment without `spec.aws` has no queue for its
Temporal targets: their dead letters stay in the spool, which `cpl dlq` reads as well.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from controlplane.deadletters.spool import Spool, Spooled, spool_path
from controlplane.deadletters.sqs import Queue, QueueUnreachable, client_for, send
from controlplane.spec.environment import Environment, Target

RESEND_INTERVAL: Final = 30.0
QUEUED_ENGINES: Final = frozenset({"temporal", "stepfunctions"})
"""Engines whose dead letters cpl reads from SQS (Argo's dead-letter container is the
user's own image, whose queue cpl does not know)."""


@dataclass(frozen=True)
class SendRetry:
    """`attempts` sends, `base_delay` doubling up to `max_delay` between them (full jitter),
    and no new attempt that (as slow as the last one) would end after `budget` seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    budget: float = 4.0


def queue_for(environment: Environment, target: Target, binding: str) -> Queue | None:
    """Where the target's dead letters bound to `binding` live (see module doc)."""
    if target.engine == "stepfunctions":
        return Queue(binding, target.region or "us-east-1", target.endpoint)
    aws = environment.spec.aws
    return None if aws is None else Queue(binding, aws.region, aws.endpoint)


def bound_queues(
    environment: Environment, target_name: str | None = None
) -> list[tuple[Target, Queue]]:
    """The dead-letter queues of the environment's targets (one entry per distinct queue)."""
    found: dict[tuple[str | None, str, str], tuple[Target, Queue]] = {}
    for target in environment.spec.targets:
        if target.engine not in QUEUED_ENGINES:
            continue
        if target_name is not None and target.name != target_name:
            continue
        for binding in environment.spec.bindings.queues.values():
            value = binding.get(target.engine)
            queue = queue_for(environment, target, value) if value else None
            if queue is not None:
                found.setdefault((queue.endpoint, queue.region, queue.name), (target, queue))
    return list(found.values())


@dataclass(frozen=True)
class Resent:
    """What one `resend` did: messages sent, messages still spooled, the last error."""

    sent: int
    pending: int
    error: str | None = None


class Outbox:
    """The dead-letter hand-off of one environment (see module doc)."""

    def __init__(
        self,
        environment: Environment,
        spool: Spool,
        retry: SendRetry = SendRetry(),
    ) -> None:
        self.environment = environment
        self.spool = spool
        self.retry = retry

    @classmethod
    def for_repo(cls, repo: Path, environment: Environment) -> Outbox:
        return cls(environment, Spool(spool_path(repo, environment.name)))

    def hand_off(self, target: Target, binding: str, message: str) -> Literal["sent", "spooled"]:
        """Send `message` to the queue bound as `binding`, or spool it (never lost)."""
        queue = queue_for(self.environment, target, binding)
        if queue is not None and self._send(queue, message):
            return "sent"
        self.spool.append(Spooled(target.name, binding, message))
        return "spooled"

    def resend(self) -> Resent:
        """Send every spooled message whose queue answers; keep the others (a queue that
        failed once is not tried again in this pass, so a down service costs one timeout)."""
        sent: set[str] = set()
        failed: dict[Queue, str] = {}
        pending = 0
        for entry in self.spool.entries():
            queue = self._queue_of(entry)
            if queue is None or queue in failed:
                pending += 1
                continue
            try:
                send(queue, entry.message)
            except QueueUnreachable as failure:
                pending += 1
                failed[queue] = str(failure)
                continue
            sent.add(entry.message)
        self.spool.remove(sent)
        return Resent(len(sent), pending, next(iter(failed.values()), None))

    def _queue_of(self, entry: Spooled) -> Queue | None:
        try:
            target = self.environment.target(entry.target)
        except KeyError:
            return None
        return queue_for(self.environment, target, entry.queue)

    def _send(self, queue: Queue, message: str) -> bool:
        started = time.monotonic()
        client = client_for(queue, connect=1.0, read=3.0)  # each attempt fits the budget
        for attempt in range(self.retry.attempts):
            began = time.monotonic()
            try:
                send(queue, message, client=client)
                return True
            except QueueUnreachable:
                pass
            delay = random.uniform(0, min(self.retry.max_delay, self.retry.base_delay * 2**attempt))
            # another attempt as slow as this one must still end within the budget
            took = time.monotonic() - began
            last = attempt == self.retry.attempts - 1
            if last or time.monotonic() - started + delay + took > self.retry.budget:
                break
            time.sleep(delay)
        return False
