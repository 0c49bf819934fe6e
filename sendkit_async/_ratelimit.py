"""Client-wide rate-limit budget (interim: concurrency cap and cooldown gate only)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager as AsyncContextManager

import attrs

__all__ = ["RateLimitSnapshot", "RateLimiter"]


@attrs.frozen
class RateLimitSnapshot:
    max_concurrency: int
    in_flight: int
    rate: float | None
    burst: float | None
    tokens: float | None
    limit: int | None
    remaining: int | None
    reset_after: float | None
    cooldown_remaining: float
    throttled_seconds: float
    throttle_events: int
    rate_limited_responses: int


class RateLimiter:
    def __init__(
        self, *, max_concurrency: int = 16, rate: float | None = None, burst: float | None = None
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._cap = max_concurrency
        self._sem = asyncio.Semaphore(max_concurrency)
        self._in_flight = 0
        self._until = 0.0
        self._429 = 0

    def slot(self) -> AsyncContextManager[None]:
        return self._slot()

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self._sem:
            loop = asyncio.get_running_loop()
            while (delay := self._until - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)
            self._in_flight += 1
            try:
                yield
            finally:
                self._in_flight -= 1

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
        if status == 429:
            self._429 += 1
        if retry_after is not None and status in (429, 503):
            self.cooldown(retry_after)

    def cooldown(self, seconds: float) -> None:
        self._until = max(self._until, asyncio.get_running_loop().time() + seconds)

    def snapshot(self) -> RateLimitSnapshot:
        return RateLimitSnapshot(
            self._cap, self._in_flight, None, None, None, None, None, None, 0.0, 0.0, 0, self._429
        )
