"""Building blocks of the rate limiter: a FIFO slot counter, a token bucket, rate rules.

Both are plain state machines; `RateLimiter` (in ``_ratelimit``) decides when
and how to use them. Neither reads a clock: callers pass ``now``.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["FifoSlots", "TokenBucket", "early_rate"]

_EPS = 1e-9  # float slack so that waiting exactly the computed delay yields a token


def early_rate(limit: int, remaining: int | None, reset_after: float | None) -> float:
    """A cap on ``limit / largest reset`` while every reset seen is under a second.

    A token bucket's reset is the time until it is full again: right after the first
    request it is one token's refill time, and ``limit / reset`` overshoots the rate
    many times (20 / 0.005 s = 4,000/s for a 200/s bucket). Its refill rate is exactly
    ``(limit - remaining) / reset``; a fixed window's is at most ``limit`` per second
    until a reset of a second or more is seen. The larger of the two is never below
    either server's real rate, so the cap only removes the overshoot.
    """
    refill = 0.0
    if remaining is not None and reset_after and 0 <= remaining < limit:
        refill = (limit - remaining) / reset_after
    return max(refill, float(limit))


class FifoSlots:
    """A counting semaphore that serves waiters strictly first come, first served.

    A released slot is handed straight to the oldest waiter, so a newcomer can
    never overtake the queue. Cancellation never leaks a slot.
    """

    __slots__ = ("_waiters", "held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for and take one slot."""
        if self.held < self.limit and not self._waiters:
            self.held += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Give one slot back (to the oldest waiter, if any)."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot moves to the waiter: `held` is unchanged
                return
        self.held -= 1


class TokenBucket:
    """Token bucket with a mutable rate; tokens may be frozen until a future time."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float = -math.inf) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now  # tokens are credited from this time on (may be in the future)

    def refill(self, now: float) -> float:
        """Credit tokens earned up to ``now``; return the tokens available (may be < 1)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        return self.tokens

    def take(self, now: float) -> float:
        """Take one token if available and return 0.0, else return the seconds to wait."""
        if self.refill(now) >= 1.0 - _EPS:
            self.tokens -= 1.0
            return 0.0
        return max(self.updated - now, 0.0) + (1.0 - self.tokens) / self.rate

    def reconfigure(self, now: float, rate: float, burst: float) -> None:
        """Change rate and capacity, keeping the tokens earned so far (up to ``burst``)."""
        self.refill(now)
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)

    def cap(self, now: float, tokens: float) -> None:
        """Lower the available tokens to at most ``tokens``; never raises them."""
        self.refill(now)
        self.tokens = min(self.tokens, tokens)

    def restart_at(self, when: float) -> None:
        """Hold one token for ``when``; nothing accrues before it."""
        self.tokens, self.updated = 1.0, when
