"""What the client needs from a rate limiter, so another (e.g. shared) one can be plugged in."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from ._ratelimit import RateLimitSnapshot

__all__ = ["RateBudget"]


@runtime_checkable
class RateBudget(Protocol):
    """The rate-limit budget one client (or many processes) shares.

    :class:`~sendkit_async.RateLimiter` is the in-memory implementation.

    Priorities: a budget whose ``slot()`` also takes a keyword ``priority``
    (a :data:`~sendkit_async.Priority`, default ``"interactive"``) gets each call's
    priority, as ``RateLimiter`` and ``RedisRateLimiter`` do; a budget with a plain
    ``slot()`` keeps working and is called without it.

    Loops: a budget holding state of one event loop (connections) may also define
    ``async def release(self) -> None``; a client awaits it on its own loop when
    it closes (``RedisRateLimiter`` disconnects that loop's Redis connections).
    """

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Admit one attempt: wait for a concurrency slot, the cooldown gate and a token.

        May be declared ``slot(self, *, priority: Priority = "interactive")`` to
        queue ``"interactive"`` calls before ``"background"`` ones.
        """
        ...

    def observe(
        self,
        status: int,
        *,
        limit: int | None = None,
        remaining: int | None = None,
        reset_after: float | None = None,
        window: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Learn from one response's status and rate-limit hints (seconds from now)."""
        ...

    def cooldown(self, seconds: float) -> None:
        """Hold every request not yet sent for ``seconds`` (only ever pushed later)."""
        ...

    def snapshot(self) -> RateLimitSnapshot:
        """The budget's state now."""
        ...


async def release_budget(budget: RateBudget) -> None:
    """Await ``budget.release()`` if it has one (at a client's close, on its loop).

    Never raises but for cancellation: a user's budget failing must not fail the close.
    """
    release = getattr(budget, "release", None)
    if release is None:
        return
    try:
        await release()
    except Exception as exc:
        logging.getLogger("sendkit_async").warning(
            "rate limiter failed to release (%s)", type(exc).__name__
        )
