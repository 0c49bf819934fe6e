"""State a client shares with its ``with_options`` copies: transport, budget, counters.

The request pipeline (:mod:`._pipeline`) runs over it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import attrs

from ._budget import RateBudget
from ._guard import OverloadGuard
from ._ratelimit import RateLimiter
from ._transport import Transport

__all__ = ["ClientStats", "Core"]


@attrs.define
class ClientStats:
    """Running counters of one client (shared by its ``with_options`` copies)."""

    requests: int = 0
    """HTTP attempts sent."""
    retries: int = 0
    """Attempts that were retries of an earlier one."""
    rate_limited: int = 0
    """Responses with status 429."""
    by_status: dict[int, int] = attrs.field(factory=dict)
    """Responses by HTTP status."""
    connection_errors: int = 0
    """Attempts that got no response."""

    def copy(self) -> ClientStats:
        return attrs.evolve(self, by_status=dict(self.by_status))


class Core:
    """What a client and its ``with_options`` copies share."""

    __slots__ = (
        "admit_now", "clock", "guard", "limiter", "release_admitted", "sleep", "stats",
        "transport",
    )  # fmt: skip

    def __init__(
        self,
        transport: Transport,
        limiter: RateBudget,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.transport = transport
        self.limiter = limiter
        # Our own limiter has a synchronous lane for requests that need no wait:
        # ``admit_now()`` returns a ticket (or None: use ``slot()``), and
        # ``release_admitted(ticket)`` ends the attempt as leaving the slot would.
        self.admit_now: Callable[[], float | None] | None = None
        self.release_admitted: Callable[[float], None] = _no_release
        if isinstance(limiter, RateLimiter):
            self.admit_now = limiter._admit_now
            self.release_admitted = limiter._release_admitted
        self.stats = ClientStats()
        # Retry waits, deadlines and the overload guard read time through these, so
        # tests can control it.
        self.clock: Callable[[], float] = clock or time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        # Through ``self`` so that a test replacing ``core.sleep`` reaches the guard too.
        self.guard = OverloadGuard(clock=self.clock, sleep=lambda seconds: self.sleep(seconds))

    def count_retry(self, _: object) -> None:
        """A retry is about to be made (the retry loop's ``on_retry`` hook)."""
        self.stats.retries += 1


def _no_release(ticket: float) -> None:
    raise AssertionError("release_admitted() without admit_now()")  # pragma: no cover
