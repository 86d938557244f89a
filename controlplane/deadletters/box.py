"""The dead letters of an environment, as `cpl dlq` sees them: its queues and its spool.

Every command first re-sends the spool (`Outbox.resend`), then reads the queues of the
environment's targets (or of one target) without consuming anything, then what the spool
still holds. A dead letter is known by its CloudEvent id; the same id seen twice (a re-send
whose answer was lost, a message both queued and spooled) is one dead letter. Messages that
are not cpl dead letters are left alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.deadletters.message import DeadLetter, NotADeadLetter, parse_message
from controlplane.deadletters.outbox import Outbox, Resent, bound_queues
from controlplane.deadletters.spool import Spooled
from controlplane.deadletters.sqs import (
    Queue,
    QueueMissing,
    QueueUnreachable,
    Received,
    delete,
    peek,
    release,
    take,
)
from controlplane.errors import CplError
from controlplane.spec.environment import Environment, Target


class DeadLetterError(CplError):
    """An unknown dead letter, or a queue that cannot be read (exit 1)."""


@dataclass
class Taken:
    """A dead letter held for a replay or purge: hidden in its queues (each copy), and/or
    in the spool."""

    letter: DeadLetter
    queued: list[tuple[Queue, Received]] = field(default_factory=list)
    spooled: list[Spooled] = field(default_factory=list)


class DeadLetterBox:
    """The dead letters of `environment` (of `target_name` only, when given)."""

    def __init__(self, repo: Path, environment: Environment, target_name: str | None = None):
        self.environment = environment
        self.target_name = target_name
        self.outbox = Outbox.for_repo(repo, environment)
        self.queues: list[tuple[Target, Queue]] = bound_queues(environment, target_name)
        self.resent: Resent | None = None
        self.missing: set[str] = set()
        """Queues that do not exist (yet): they hold no dead letters."""

    def resend(self) -> Resent:
        """Send what the spool holds to its queues (once per box)."""
        if self.resent is None:
            self.resent = self.outbox.resend()
        return self.resent

    def letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first (DeadLetterError when a queue cannot be read)."""
        self.resend()
        letters: dict[str, DeadLetter] = {}
        for _, queue in self.queues:
            for received in self._peek(queue):
                letter = self._parse(received.body)
                if letter is not None:
                    letters.setdefault(letter.id, letter)
        for entry in self.outbox.spool.entries():
            letter = self._parse(entry.message)
            if letter is not None:
                letters.setdefault(letter.id, letter)
        return sorted(letters.values(), key=lambda letter: (letter.time, letter.id))

    def find(self, letter_id: str) -> DeadLetter:
        for letter in self.letters():
            if letter.id == letter_id:
                return letter
        raise self._unknown(letter_id)

    def take(self, letter_id: str) -> Taken:
        """Hold the dead letter (hidden in its queue while held); DeadLetterError if unknown."""
        self.resend()
        taken: Taken | None = None
        for _, queue in self.queues:
            try:
                copies = take(queue, lambda r: self._id_of(r.body) == letter_id)
            except QueueMissing:
                self.missing.add(queue.describe())
                continue
            except QueueUnreachable as error:
                raise DeadLetterError(f"cannot read dead letters: {error}") from None
            for received in copies:
                letter = self._parse(received.body)
                assert letter is not None
                taken = taken or Taken(letter)
                taken.queued.append((queue, received))
        for entry in self.outbox.spool.entries():
            letter = self._parse(entry.message)
            if letter is not None and letter.id == letter_id:
                taken = taken or Taken(letter)
                taken.spooled.append(entry)
        if taken is None:
            raise self._unknown(letter_id)
        return taken

    def delete(self, taken: Taken) -> None:
        """Remove the held dead letter from its queues (every copy: a re-send whose answer
        was lost leaves two) and from the spool."""
        for queue, received in taken.queued:
            try:
                delete(queue, received.receipt)
            except QueueUnreachable as error:
                raise DeadLetterError(f"cannot delete dead letter: {error}") from None
        self.outbox.spool.remove({entry.message for entry in taken.spooled})

    def release(self, taken: Taken) -> None:
        """Make the held dead letter visible again (after a failed replay)."""
        for queue, received in taken.queued:
            with contextlib.suppress(QueueUnreachable):
                release(queue, [received.receipt])

    def _peek(self, queue: Queue) -> list[Received]:
        try:
            return peek(queue)
        except QueueMissing:
            self.missing.add(queue.describe())
            return []
        except QueueUnreachable as error:
            raise DeadLetterError(f"cannot read dead letters: {error}") from None

    def _parse(self, body: str) -> DeadLetter | None:
        try:
            letter = parse_message(body)
        except NotADeadLetter:
            return None
        if self.target_name is not None and letter.target != self.target_name:
            return None
        return letter

    def _id_of(self, body: str) -> str | None:
        letter = self._parse(body)
        return letter.id if letter is not None else None

    def _unknown(self, letter_id: str) -> DeadLetterError:
        where = f"target '{self.target_name}' of " if self.target_name else ""
        return DeadLetterError(
            f"no dead letter '{letter_id}' in {where}environment '{self.environment.name}' "
            "(cpl dlq list shows them)"
        )
