"""The one way our Redis users (the shared budget, the response cache) open a Redis client."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["bounded_redis"]


def bounded_redis(url: str, *, socket_timeout: float, socket_connect_timeout: float) -> Redis:
    """A Redis client for ``url`` whose every call is bounded by the two timeouts.

    One quick reconnect, never a long backoff: a Redis that is down must turn into
    our fallback (or a cache miss) within the bound, not a retry storm.
    """
    client: Redis = Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        retry=Retry(NoBackoff(), 1),
    )
    return client
