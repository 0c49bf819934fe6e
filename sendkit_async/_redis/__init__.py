"""Redis-backed parts: the shared rate-limit budget (``sendkit_async.redis_limiter``) and
the connection helper ``RedisCache`` shares (imported only by those; needs the ``redis`` extra)."""
