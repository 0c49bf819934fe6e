"""``RedisRateLimiter``'s admission: the shared gate, a shared token, or the fallback.

``_Admission`` is a mixin that ``RedisRateLimiter`` (in ``_limiter``) inherits. One
waiter per lane of a process asks Redis at a time (the head of the lane's queue, first
come first served); the others wait in the process. Every waiter polling ACQUIRE
instead cost about 60 script calls per request sent at 4 processes x 50 slots, now
about 6 (benchmarks/README.md, "One asker per lane").
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from .. import errors
from .._priority import BACKGROUND, INTERACTIVE, Priority
from ._calls import _parse_seconds, _RedisCalls
from ._parts import SharedBudgetUnavailableError, _RedisDown, _Slot

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__: list[str] = []


def turns() -> dict[Priority, asyncio.Lock]:
    """A lock per lane: who asks Redis next (asyncio locks bind to a loop at first use)."""
    return {INTERACTIVE: asyncio.Lock(), BACKGROUND: asyncio.Lock()}


class _Admission(_RedisCalls):
    """Mixin of `RedisRateLimiter`: ``_admit``. Its ``__init__`` sets every attribute."""

    _turns: dict[Priority, asyncio.Lock]  # per lane: the one waiter asking Redis
    _check: AsyncScript
    _held_until: float
    _max_gate_wait: float
    _random: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _throttle_events: int
    _throttled: float

    if TYPE_CHECKING:

        def _now(self) -> float: ...

    async def _admit(self, slot: _Slot) -> AbstractAsyncContextManager[None] | None:
        """Wait for the shared gate and a shared token; or enter the fallback.

        Returns the entered fallback slot, or None when admitted by Redis.
        """
        start = self._now()
        waited = False
        waiter = secrets.token_hex(8)  # this admission's name in its lane, while it waits
        announced = False
        admitted = False
        # Only the head of this lane's queue asks Redis (see the module docstring).
        turn = self._turns[slot.priority]
        holding = False
        try:
            while True:
                if self._closed:
                    raise errors.ClientClosedError("the RedisRateLimiter is closed")
                if not holding:
                    await turn.acquire()
                    holding = True
                    if self._closed:
                        raise errors.ClientClosedError("the RedisRateLimiter is closed")
                try:
                    token = secrets.token_hex(8)
                    acquire = self._acquire_once(token, slot.priority, waiter)
                    kind, wait, _ = await slot.ask(acquire, probe=token)
                    if kind == "wait":  # announced in its lane (if a rate is known)
                        announced = True
                    elif kind == "token":  # ...and unannounced by the same script
                        announced = False
                    if kind in ("token", "open", "probe"):
                        turn.release()  # the next waiter of this lane asks at once
                        holding = False
                        if kind == "probe":
                            slot.probe = token
                        if wait <= 0:
                            # A 429 this process saw closes the gate before Redis knows.
                            wait = self._held_until - self._now()
                            if wait <= 0:
                                admitted = True
                                return None
                        waited = True
                        await self._sleep(wait)
                        # A cooldown may have closed the gate while we waited for our token.
                        closed = await slot.ask(
                            self._run(self._check, self._keys[1:2], [], _parse_seconds)
                        )
                        closed = max(closed, self._held_until - self._now())
                        if closed <= 0:
                            admitted = True
                            return None
                        wait = closed
                except _RedisDown:
                    if holding:
                        turn.release()
                        holding = False
                    if self._on_error == "raise":
                        raise SharedBudgetUnavailableError(
                            f"the shared rate limit in Redis at {self._where()} is unreachable"
                        ) from None
                    fallback = self._fallback.slot(priority=slot.priority)
                    await fallback.__aenter__()
                    return fallback
                if kind == "cooldown" and wait > self._max_gate_wait:
                    # A gate closed for hours (a reset a day ahead): fail, never hang.
                    error = errors.RateLimitError(
                        f"not sent: the shared rate limit is closed for {wait:.0f}s more",
                        status=429,
                        retry_after=wait,
                    )
                    error._final = error._unsent = True  # type: ignore[attr-defined]
                    raise error
                if wait > 0:  # (0: the reply carried a newer climb; ask again, no throttle)
                    waited = True
                await self._sleep(wait + self._random() * min(0.05, 0.1 * wait + 0.002))
        finally:
            if holding:
                turn.release()
            if announced and not admitted:  # cancelled or failed while announced: leave now
                self._forget_waiter(waiter)
            if waited:
                self._throttle_events += 1
                self._throttled += max(0.0, self._now() - start)
