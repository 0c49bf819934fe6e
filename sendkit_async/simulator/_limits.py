"""Per-key token-bucket rate limiting and the four header conventions it can announce.

The limiter is pure: callers pass ``now`` (the loop's monotonic clock in the server, any
number in tests), so tests never sleep.
"""

from __future__ import annotations

import math

import attrs

HEADER_MODES = ("x-ratelimit", "ietf", "retry-after-only", "none")
_EPS = 1e-9


@attrs.frozen
class Decision:
    """Outcome of one ``acquire``: whether it passed and the bucket state afterwards."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one token is available (0.0 when allowed)
    rate: float


class TokenBucketLimiter:
    """One bucket of ``burst`` tokens per key, refilled at ``rate`` tokens per second.

    A denied request takes no token.
    """

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, now: float) -> Decision:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0 - _EPS
        if allowed:
            tokens = max(0.0, tokens - 1.0)
        self._buckets[key] = (tokens, now)
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=math.floor(tokens + _EPS),
            reset_after=max(0.0, (self.burst - tokens) / self.rate),
            retry_after=0.0 if allowed else (1.0 - tokens) / self.rate,
            rate=self.rate,
        )

    def tokens(self, key: str) -> float | None:
        """Tokens left after the last request of ``key`` (no refill applied), for tests."""
        found = self._buckets.get(key)
        return None if found is None else found[0]

    def __repr__(self) -> str:
        return f"<TokenBucketLimiter rate={self.rate} burst={self.burst} keys={len(self._buckets)}>"


def _ceil_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds - _EPS))


def _ceil_ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000.0 - _EPS))


def format_delta(seconds: float) -> str:
    """Delta seconds rounded UP to the millisecond, at most 3 decimals: "0.5", "2", "0"."""
    text = f"{_ceil_ms(seconds) / 1000:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def rate_limit_headers(decision: Decision, mode: str) -> dict[str, str]:
    """Headers announcing ``decision`` in convention ``mode`` (see ``HEADER_MODES``)."""
    headers: dict[str, str] = {}
    denied = not decision.allowed
    if mode == "x-ratelimit":
        headers["X-RateLimit-Limit"] = str(decision.limit)
        headers["X-RateLimit-Remaining"] = str(decision.remaining)
        headers["X-RateLimit-Reset"] = format_delta(decision.reset_after)
        if denied:
            headers["Retry-After"] = str(max(1, _ceil_seconds(decision.retry_after)))
            headers["retry-after-ms"] = str(max(1, _ceil_ms(decision.retry_after)))
    elif mode == "ietf":
        headers["RateLimit-Limit"] = str(decision.limit)
        headers["RateLimit-Remaining"] = str(decision.remaining)
        headers["RateLimit-Reset"] = str(_ceil_seconds(decision.reset_after))
        # The bucket's quota is `limit` requests per `limit / rate` seconds. The draft
        # wants whole seconds, but rounding up would understate a fast rate (10 per
        # 0.167 s is not 10 per second), so the window keeps its milliseconds.
        headers["RateLimit-Policy"] = (
            f"{decision.limit};w={format_delta(decision.limit / decision.rate)}"
        )
        if denied:
            headers["Retry-After"] = str(max(1, _ceil_seconds(decision.retry_after)))
    elif mode == "retry-after-only" and denied:
        headers["Retry-After"] = str(max(1, _ceil_seconds(decision.retry_after)))
    return headers
