"""The Redis-backed shared rate-limit budget (imported only via ``sendkit_async.redis_limiter``)."""
