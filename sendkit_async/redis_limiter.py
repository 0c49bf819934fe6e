"""A rate-limit budget shared by every process (on any machine) through Redis.

Needs the ``redis`` extra (``pip install 'sendkit-async[redis]'``)::

    from sendkit_async import AsyncSendKit
    from sendkit_async.redis_limiter import RedisRateLimiter

    async with RedisRateLimiter.from_url("redis://127.0.0.1:6379/0") as limiter:
        async with AsyncSendKit(rate_limiter=limiter) as client:
            ...

Importing :mod:`sendkit_async` alone never imports redis.
"""

from ._redis._limiter import RedisRateLimiter, SharedBudgetUnavailableError

__all__ = ["RedisRateLimiter", "SharedBudgetUnavailableError"]
