"""What the client needs from a rate limiter, so another (e.g. shared) one can be plugged in."""

from __future__ import annotations

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
