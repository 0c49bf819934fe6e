"""Stages of ``RateLimiter.slot()``: the slot (in lanes), the probe, the gate, the tokens.

``_Admission`` is a mixin that ``RateLimiter`` (in ``_ratelimit``) inherits; it holds
the waits of an admission that cannot be made at once (the synchronous lane,
``_admit_now``, stays in ``_ratelimit``), and ``_Slot`` is the context manager
``slot()`` returns. Who goes first when interactive and background calls both wait is
decided by ``_priority.Turns``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from ._bucket import FifoSlots, TokenBucket
from ._controller import RateController
from ._priority import BACKGROUND, INTERACTIVE, Priority, Turns

if TYPE_CHECKING:
    from ._ratelimit import RateLimiter

__all__: list[str] = []


class _Admission:
    """Base of `RateLimiter`: the waits of ``slot()``.

    ``RateLimiter.__init__`` sets every attribute declared here.
    """

    __slots__ = (
        "_bg_queued", "_handed", "_lent", "_prober_active", "_probing",
        "_throttle_events", "_throttled", "_token_lock", "_turns",
    )  # fmt: skip

    _bucket: TokenBucket | None
    _ctl: RateController
    _bg_queued: int  # background calls holding a slot, not yet sent
    _gate_len: float
    _gate_until: float
    _handed: bool  # the token lock was handed over by a turn already decided
    _lent: int  # of those, slots lent to interactive calls (see _enter)
    _probe_done: asyncio.Event
    _prober_active: bool
    _probing: bool
    _random: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _slots: FifoSlots
    _throttle_events: int
    _throttled: float
    _token_lock: FifoSlots
    _turns: Turns

    if TYPE_CHECKING:

        def _now(self) -> float: ...

    async def _await_probe(self) -> bool:
        """True for the one request that goes first alone; the others wait for its answer."""
        if not self._probing:
            return False
        if not self._prober_active:
            self._prober_active = True
            return True
        start = self._now()
        await self._probe_done.wait()
        self._throttle_events += 1
        self._throttled += max(0.0, self._now() - start)
        return False

    def _end_probe(self) -> None:
        if self._probing:
            self._probing = False
            self._probe_done.set()

    async def _take_budget(self, priority: Priority, prober: bool) -> bool:
        """Wait for the gate and a token. False (nothing taken): a background call whose
        slot was lent meanwhile (see :meth:`_enter`) must queue for a slot again."""
        start = self._now()
        waited = False
        yields = priority != INTERACTIVE and not prober  # a prober never gives way
        lock = self._token_lock
        holding = False
        try:
            while (delay := self._gate_until - self._now()) > 0:
                waited = True
                if self._bucket is None:  # no token schedule to spread the reopening: jitter
                    delay += self._random() * min(1.0, 0.25 * self._gate_len)
                await self._sleep(delay)
            if self._bucket is None and not lock.held:
                return not (yields and self._lent)
            waited = waited or bool(lock.held)
            await lock.acquire(priority)  # one token waiter at a time
            holding = True
            while True:
                now = self._now()
                delay = self._gate_until - now
                if delay <= 0:
                    if yields and self._lent:
                        if self._handed:  # it was the background lane's turn: keep it there
                            if lock.hand_to(BACKGROUND):
                                holding = False
                            else:
                                self._handed = False
                        return False
                    if self._bucket is None:
                        return True
                    delay = self._bucket.until_token(now)
                    if delay <= 0:
                        if self._handed:  # handed to us by the turn that picked us
                            self._handed = False
                        elif self._turn_elsewhere(priority):
                            holding = False
                            await lock.acquire(priority, front=True)
                            holding = True
                            continue
                        self._bucket.take(now)
                        return True
                    self._ctl.last_wait = now
                waited = True
                await self._sleep(delay)
        finally:
            if holding:
                lock.release()
            if waited:
                self._throttle_events += 1
                self._throttled += max(0.0, self._now() - start)

    def _turn_elsewhere(self, priority: Priority) -> bool:
        """A token exists and the token lock's holder (of ``priority``) waits for it: if
        the token is the other lane's turn, hand the lock to that lane's oldest waiter."""
        lock = self._token_lock
        mine = priority == INTERACTIVE
        fore = mine or lock.waiting(INTERACTIVE)
        back = not mine or lock.waiting(BACKGROUND)
        lane = self._turns.next(fore, back)
        if lane is None or lane == priority or not lock.hand_to(lane):
            return False
        self._handed = True
        return True

    async def _enter(self, priority: Priority, again: bool) -> None:
        """Stage 1: a concurrency slot, queued in the lane of ``priority``.

        An interactive call finding no free slot while background calls hold slots
        only to queue for their tokens borrows one of theirs (``_lent``): the first
        of them to reach its token gives its slot up instead of sending and queues
        again (``again``: first in its lane). Calls on the wire stay at most
        ``max_concurrency``.
        """
        slots = self._slots
        if priority == INTERACTIVE:
            if not slots.free and self._bg_queued > self._lent:
                self._lent += 1
                return
            await slots.acquire(priority)
            return
        await slots.acquire(priority, front=again)
        self._bg_queued += 1

    def _leave_queue(self, priority: Priority) -> None:
        """A call admitted by :meth:`_enter` leaves unsent: its slot goes back (a lent one
        stays with its borrower)."""
        if priority != INTERACTIVE:
            self._bg_queued -= 1
            if self._lent:
                self._lent -= 1
                return
        self._slots.release()


class _Slot(AbstractAsyncContextManager[None]):
    __slots__ = ("_limiter", "_priority", "_sent_at")

    def __init__(self, limiter: RateLimiter, priority: Priority) -> None:
        self._limiter = limiter
        self._priority = priority
        self._sent_at: float | None = None

    async def __aenter__(self) -> None:
        limiter = self._limiter
        self._sent_at = limiter._admit_now()
        if self._sent_at is not None:
            return
        priority = self._priority
        again = False
        while True:
            await limiter._enter(priority, again)
            prober = False
            try:
                prober = await limiter._await_probe()
                admitted = await limiter._take_budget(priority, prober)
            except BaseException:
                if prober:
                    limiter._end_probe()  # never sent: let the others go
                limiter._leave_queue(priority)
                raise
            if admitted:
                break
            limiter._leave_queue(priority)  # its slot was lent: queue again
            again = True
        if priority != INTERACTIVE:
            limiter._bg_queued -= 1
        self._sent_at = limiter._sent()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sent_at is not None:
            sent_at, self._sent_at = self._sent_at, None
            self._limiter._release_admitted(sent_at)
