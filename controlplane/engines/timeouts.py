"""How long cpl waits for one target's engine, and what it tells the user while it waits.

A target's `timeouts` (spec/environment.py: `connect`, `call`, `deadline`) bound every call an
engine module makes: a connection attempt waits at most `connect`, one request at most `call`,
and the retries of a request that does not answer stop at `deadline` after it was first made.
A target that has not answered within its deadline is *silent*: the other calls of the same
client fail at once instead of waiting again, so a frozen engine costs one deadline per
command, not one per resource.

The first time a request to a target times out or cannot connect, a warning names the target
and the time cpl retries until (once per target and deadline, whichever thread sees it first).
It goes to the `controlplane.engines` logger: without logging configured, Python prints it on
standard error, which is where the CLI wants it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.spec.environment import Target

_log = logging.getLogger("controlplane.engines")
_announced: dict[str, float] = {}
_announced_lock = threading.Lock()


@dataclass(frozen=True)
class Timeouts:
    """A target's timeouts in seconds."""

    connect: float
    call: float
    deadline: float

    @classmethod
    def of(cls, target: Target) -> Timeouts:
        """The target's configured timeouts (its environment's `timeouts`, or the defaults)."""
        settings = target.timeouts
        return cls(
            connect=settings.connect.seconds,
            call=settings.call.seconds,
            deadline=settings.deadline.seconds,
        )


class TargetSilent(Exception):
    """The target has not answered within its deadline (the message names it)."""


class TargetClock:
    """The deadline of one request to one target, and whether the target fell silent.

    `label` names the target in messages (`temporal-local (127.0.0.1:7233)`). One clock per
    engine client; `clock()` (monotonic seconds) is replaceable for tests.
    """

    def __init__(
        self,
        label: str,
        timeouts: Timeouts,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.timeouts = timeouts
        self._clock = clock
        self._silent = False

    def start(self) -> float:
        """The absolute deadline of a request made now; TargetSilent if the target is silent."""
        if self._silent:
            raise TargetSilent(self.silent_message())
        return self._clock() + self.timeouts.deadline

    def attempt_timeout(self, deadline: float) -> float:
        """How long one attempt may wait: `call`, cut to what is left of the deadline."""
        return max(0.001, min(self.timeouts.call, deadline - self._clock()))

    def left(self, deadline: float) -> float:
        return deadline - self._clock()

    def not_answering(self, deadline: float) -> None:
        """Tell the user (once per target and deadline) that the target does not answer."""
        wall = time.time() + (deadline - self._clock())
        with _announced_lock:
            if _announced.get(self.label, 0.0) >= time.time():
                return  # already announced, and that deadline has not passed yet
            _announced[self.label] = wall
        until = dt.datetime.fromtimestamp(wall).strftime("%H:%M:%S")
        _log.warning("warning: %s is not answering; retrying until %s", self.label, until)

    def fell_silent(self) -> None:
        """The request ran out of deadline: later requests of this client fail at once."""
        self._silent = True

    def silent_message(self) -> str:
        return f"{self.label} did not answer within {self.timeouts.deadline:g}s"
