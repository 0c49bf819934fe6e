"""Building blocks of the rate limiter: a token bucket, FIFO slots, the requests on
the wire, the rate a limit header implies.

Plain state machines (plus one pure rule for rates learned from headers); the rate
learned from 429s alone is `AdaptiveRate` (``_adaptive``). None reads a clock: callers
pass ``now``.
"""

from __future__ import annotations

import math
from collections import deque

from ._lanes import FifoSlots

__all__ = ["FifoSlots", "OnTheWire", "TokenBucket", "early_rate"]

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

    def until_token(self, now: float) -> float:
        """Seconds until a token is available (0.0: one is); takes nothing."""
        if self.refill(now) >= 1.0 - _EPS:
            return 0.0
        return max(self.updated - now, 0.0) + (1.0 - self.tokens) / self.rate

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


class OnTheWire:
    """The send times of the requests on the wire: how many, and the oldest.

    Sent in order, answered in any: an answer that is not the oldest is remembered until
    the ones sent before it are answered too.
    """

    __slots__ = ("_done", "_sent", "count")

    def __init__(self) -> None:
        self.count = 0  # requests on the wire
        self._sent: deque[float] = deque()  # their send times, oldest first, some
        self._done: dict[float, int] = {}  # answered already: these, by send time

    def add(self, at: float) -> None:
        """A request goes on the wire at ``at`` (never before the last one)."""
        self.count += 1
        self._sent.append(at)

    def remove(self, at: float) -> None:
        """The request sent at ``at`` is off the wire."""
        self.count -= 1
        sent, done = self._sent, self._done
        if not sent or sent[0] != at:
            done[at] = done.get(at, 0) + 1
            return
        sent.popleft()
        while done and sent and (n := done.get(sent[0])):
            if n == 1:
                del done[sent[0]]
            else:
                done[sent[0]] = n - 1
            sent.popleft()

    @property
    def oldest(self) -> float:
        """When the oldest request still on the wire was sent (inf: none)."""
        return self._sent[0] if self._sent else math.inf
