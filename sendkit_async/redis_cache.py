"""A response cache shared by every process of an app, in Redis.

Needs the ``redis`` extra (``pip install 'sendkit-async[redis]'``)::

    from sendkit_async import AsyncSendKit
    from sendkit_async.redis_cache import RedisCache

    cache = RedisCache.from_url("redis://127.0.0.1:6379/0", ttl=30)
    async with AsyncSendKit(cache=cache) as client:
        ...
    await cache.aclose()

An entry is the wire answer: one line of JSON (status, kept headers, when it was
stored) then the body as received; Redis expires it. Importing
:mod:`sendkit_async` alone never imports redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ._redis._connect import bounded_redis
from .cache import CachedResponse, ResponseCache
from .errors import ConfigurationError

__all__ = ["RedisCache"]

logger = logging.getLogger("sendkit_async")

_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisCache(ResponseCache):
    """A :class:`ResponseCache` in Redis, for apps with several worker processes.

    A Redis failure is a miss (or an answer not stored) and one warning per outage,
    never a failed call; after a failure Redis is left alone for ``retry_after``
    seconds, so an outage costs the calls no time.

    Args:
        redis: a ``redis.asyncio.Redis`` client (closed by :meth:`aclose` only when
            made by :meth:`from_url`). Give it short socket timeouts.
        ttl, negative_ttl, stale_while_revalidate: see :class:`ResponseCache`.
        prefix: Redis key prefix.
        retry_after: seconds without Redis after a failure.
        clock: wall-clock seconds (default ``time.time``): ages are compared across
            processes and machines.

    Raises:
        ConfigurationError: a negative number.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        stale_while_revalidate: float = 0.0,
        prefix: str = "sendkit:cache:",
        retry_after: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            ttl=ttl, negative_ttl=negative_ttl, stale_while_revalidate=stale_while_revalidate
        )
        if not retry_after >= 0:
            raise ConfigurationError("retry_after must be >= 0")
        self._redis = redis
        self._prefix = prefix
        self._retry_after = retry_after
        self._clock = clock or time.time
        self._down_until: float | None = None  # set while Redis is left alone
        self._owns_redis = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        **options: Any,
    ) -> RedisCache:
        """Build one on a new Redis connection pool (closed by :meth:`aclose`).

        ``url`` is a redis-py URL; ``options`` are those of the constructor.
        """
        client = bounded_redis(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
        )
        cache = cls(client, **options)
        cache._owns_redis = True
        return cache

    async def get(self, key: str) -> tuple[CachedResponse, float] | None:
        if self._resting():
            return None
        try:
            value = await self._redis.get(self._prefix + key)
        except _REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        self._answered()
        if value is None:
            return None
        try:
            head, _, body = bytes(value).partition(b"\n")
            meta = json.loads(head)
            fresh = meta.get("f")
            entry = CachedResponse(
                int(meta["s"]),
                body,
                dict(meta["h"]),
                float(meta["a"]),
                None if fresh is None else float(fresh),
            )
            age = entry.age + max(0.0, self._clock() - float(meta["t"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("response cache: a garbled Redis entry, read as a miss")
            return None
        return entry, age

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> None:
        left = ttl - entry.age
        if left <= 0 or self._resting():
            return
        meta = {
            "s": entry.status,
            "h": dict(entry.headers),
            "a": entry.age,
            "f": entry.fresh_for,
            "t": self._clock(),
        }
        value = json.dumps(meta, separators=(",", ":")).encode() + b"\n" + entry.body
        try:
            await self._redis.set(self._prefix + key, value, px=max(1, int(left * 1000)))
        except _REDIS_ERRORS as exc:
            self._failed(exc)
            return
        self._answered()

    def _resting(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    def _failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            logger.warning(
                "response cache: Redis failed (%s); calls go to the API for %.1fs, then retry",
                type(exc).__name__,
                self._retry_after,
            )
        self._down_until = self._clock() + self._retry_after

    def _answered(self) -> None:
        if self._down_until is not None:
            logger.info("response cache: Redis answers again")
            self._down_until = None

    async def aclose(self) -> None:
        """Close the Redis connection pool if :meth:`from_url` made it. Idempotent."""
        if self._owns_redis:
            self._owns_redis = False
            await self._redis.aclose()

    async def release(self) -> None:
        """Disconnect the pool's connections (made in the running loop); it reconnects on use."""
        try:
            await self._redis.connection_pool.disconnect()
        except _REDIS_ERRORS as exc:
            logger.info("response cache: disconnecting from Redis failed (%s)", type(exc).__name__)

    async def __aenter__(self) -> RedisCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "resting after a failure" if self._down_until is not None else "up"
        return f"<RedisCache prefix={self._prefix!r} ttl={self.ttl} {state}>"
