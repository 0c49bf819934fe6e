"""State a client shares with its ``with_options`` copies: transport, budget, counters.

The request pipeline (:mod:`._pipeline`) runs over it.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Awaitable, Callable

import attrs

from . import errors
from ._budget import RateBudget
from ._flight import Flights
from ._guard import OverloadGuard
from ._hooks import Dispatch
from ._priority import INTERACTIVE, Priority
from ._ratelimit import RateLimiter
from ._transport import Transport

__all__ = ["ClientStats", "Core", "Lifecycle"]


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
    cache_hits: int = 0
    """Calls answered by the response cache (no request, no rate-limit token)."""
    coalesced: int = 0
    """Calls that shared the request of an identical call in progress."""

    def copy(self) -> ClientStats:
        return attrs.evolve(self, by_status=dict(self.by_status))


class Lifecycle:
    """The event loop a client is bound to, and the signal :meth:`close` gives its waiters.

    One object shared by a client, its ``with_options`` copies and a bulk run's
    counting copy of the :class:`Core`, so closing any of them reaches every wait.
    """

    __slots__ = ("_signals", "closed", "loop")

    def __init__(self) -> None:
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None  # bound at the first call
        self._signals: set[asyncio.Future[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to ``loop`` at the first call; a call from any other loop is refused.

        Raises:
            ClientClosedError: the client is bound to another event loop.
        """
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            if self.loop.is_closed():
                raise errors.ClientClosedError(
                    "this client was used in another event loop, which has ended;"
                    " create one client per asyncio.run()"
                )
            raise errors.ClientClosedError(
                "this client belongs to another event loop, which is still running;"
                " a client works in the event loop of its first call only"
            )

    def signal(self) -> asyncio.Future[None]:
        """A future of the running loop that :meth:`close` completes; :meth:`forget` it."""
        future = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_result(None)
        else:
            self._signals.add(future)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        self._signals.discard(future)

    def close(self) -> None:
        """Complete every signal, from whichever thread and loop closes the client."""
        self.closed = True
        signals, self._signals = self._signals, set()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in signals:
            loop = future.get_loop()
            if loop is running:
                _complete(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_complete, future)


def _complete(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Core:
    """What a client and its ``with_options`` copies share."""

    __slots__ = (
        "admit_now", "clock", "flights", "guard", "hooks", "life", "limiter", "prioritized",
        "priority", "release_admitted", "sleep", "stats", "transport",
    )  # fmt: skip

    def __init__(
        self,
        transport: Transport,
        limiter: RateBudget,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        hooks: Dispatch | None = None,
    ) -> None:
        self.transport = transport
        self.hooks = hooks  # None unless some hook would be called: the pipeline checks this
        self.limiter = limiter
        # Our own limiter has a synchronous lane for requests that need no wait:
        # ``admit_now()`` returns a ticket (or None: use ``slot()``), and
        # ``release_admitted(ticket)`` ends the attempt as leaving the slot would.
        self.admit_now: Callable[[], float | None] | None = None
        self.release_admitted: Callable[[float], None] = _no_release
        if isinstance(limiter, RateLimiter):
            self.admit_now = limiter._admit_now
            self.release_admitted = limiter._release_admitted
        # The calls' priority (a client's ``with_options(priority=...)`` copy has its
        # own), passed to ``slot()`` by budgets that take one: a user's budget written
        # before priorities existed keeps its plain ``slot()``.
        self.priority: Priority = INTERACTIVE
        self.prioritized = _takes_priority(limiter)
        self.stats = ClientStats()
        # Retry waits, deadlines and the overload guard read time through these, so
        # tests can control it.
        self.clock: Callable[[], float] = clock or time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        # Through ``self`` so that a test replacing ``core.sleep`` reaches the guard too.
        self.guard = OverloadGuard(clock=self.clock, sleep=lambda seconds: self.sleep(seconds))
        self.life = Lifecycle()
        self.flights = Flights()  # single calls' shared requests (bulk runs share none)

    def close(self) -> None:
        """End every wait of the client at once with :class:`ClientClosedError`.

        Retry sleeps and waits for the budget (raced by the pipeline against
        :attr:`life`'s signal, so a shared limiter needs no change) and the guard's waits.
        """
        self.life.close()
        self.guard.close()

    def with_priority(self, priority: Priority) -> Core:
        """A copy sharing everything (transport, budget, counters, lifecycle) but the priority."""
        if priority == self.priority:
            return self
        core = copy.copy(self)
        core.priority = priority
        return core

    def count_retry(self, _: object) -> None:
        """A retry is about to be made (the retry loop's ``on_retry`` hook)."""
        self.stats.retries += 1


def _takes_priority(limiter: RateBudget) -> bool:
    """True when ``limiter.slot()`` accepts a ``priority`` keyword."""
    try:
        params = inspect.signature(limiter.slot).parameters.values()
    except (TypeError, ValueError):  # no signature to read: call it the plain way
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "priority" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in params
    )


def _no_release(ticket: float) -> None:
    raise AssertionError("release_admitted() without admit_now()")  # pragma: no cover
