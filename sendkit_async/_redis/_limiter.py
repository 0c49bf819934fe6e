"""``RedisRateLimiter``: one rate-limit budget shared by every process using the same key.

This module holds its public API and the cooldowns it derives from responses;
admission is the ``_Admission`` mixin in ``_admission``, its calls to Redis (outages,
pulls, background pushes) the ``_RedisCalls`` mixin in ``_calls``.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import attrs
from redis.asyncio import Redis

from .. import errors
from .._config import resolve_base_url, resolve_key
from .._controller import AIMD, STARTED, RateController
from .._priority import BACKGROUND_SHARE, INTERACTIVE, Priority, check_share
from .._ratelimit import RateLimiter, RateLimitSnapshot
from . import _scripts as scripts
from ._admission import _Admission, turns
from ._connect import bounded_redis
from ._learner import SharedRate
from ._lifecycle import _Lifecycle
from ._parts import SharedBudgetUnavailableError, _Pending, _Slot
from ._scripts import budget_id, budget_keys

__all__ = ["RedisRateLimiter", "SharedBudgetUnavailableError"]


class RedisRateLimiter(_Lifecycle, _Admission):
    """A :class:`RateBudget` whose rate, cooldown and learned limits live in Redis.

    Every process (on any machine) that builds one with the same API key and
    base URL shares one token bucket, one cooldown gate and what any of them
    learned from rate-limit headers. The concurrency cap and the rate learned
    from 429s without headers stay per process. Pass it as
    ``AsyncSendKit(rate_limiter=...)``; the client never closes it: call
    :meth:`aclose` (or use ``async with``) yourself. A closing client calls
    :meth:`release` on its loop, so one limiter serves one client (one event loop)
    after another; two running loops at once cannot share one.

    Args:
        redis: a ``redis.asyncio.Redis`` client (not closed by us unless made by
            :meth:`from_url`). Give it short socket timeouts.
        api_key, base_url: identify the budget (default: the environment, as the
            client does). Only a truncated sha256 of them is stored.
        rate, burst: a ceiling in requests/s for all processes together, and the
            bucket size; learned limits may only go below them.
        max_concurrency: requests in flight at once in this process (100, as
            ``AsyncSendKit``'s). An admission holds a Redis connection only for
            its round trip, so a burst may open up to this many per process.
        on_redis_error: ``"fallback"`` to a per-process :class:`RateLimiter`
            while Redis is unreachable (one warning per outage), or ``"raise"``
            :class:`SharedBudgetUnavailableError`.
        prefix: Redis key prefix.
        horizon: a token at most this far (or one token interval) in the future
            is reserved at once; beyond, the caller sleeps and asks again.
        retry_after: seconds between attempts to reach Redis again after an error.
        max_gate_wait: a request finding the shared gate closed for longer than this
            raises :class:`RateLimitError` (not sent, with ``retry_after``) instead of
            waiting (a reset announced a day ahead must not hang every process).
        background_share: least share of the shared tokens that waiting background
            calls (of any process) get while interactive ones (of any process) also
            wait; the same value should be given to every process of one budget.

    Raises:
        ConfigurationError: invalid numbers, no key, or a bad base URL.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        rate: float | None = None,
        burst: float | None = None,
        max_concurrency: int = 100,
        on_redis_error: Literal["fallback", "raise"] = "fallback",
        prefix: str = "sendkit:rl",
        horizon: float = 0.05,
        retry_after: float = 1.0,
        max_gate_wait: float = 60.0,
        background_share: float = BACKGROUND_SHARE,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        if on_redis_error not in ("fallback", "raise"):
            raise errors.ConfigurationError("on_redis_error must be 'fallback' or 'raise'")
        if not (horizon >= 0 and retry_after >= 0 and max_gate_wait >= 0):
            raise errors.ConfigurationError("horizon, retry_after and max_gate_wait must be >= 0")
        try:
            # This process's concurrency cap (and its first request going alone): pacing
            # is the shared bucket's, learning the shared learner's (observe() is not fed).
            self._local = RateLimiter(
                max_concurrency=max_concurrency, background_share=background_share
            )
            RateLimiter(rate=rate, burst=burst)  # same validation as the in-memory limiter
            self._share = check_share(background_share)
        except ValueError as exc:
            raise errors.ConfigurationError(str(exc)) from None
        key = resolve_key(api_key)
        url = resolve_base_url(base_url, allow_insecure_http=True)
        self.budget = budget_id(key, url)
        """Truncated sha256 of (base URL, key): names this budget's keys in Redis."""
        self._keys = budget_keys(prefix, self.budget)
        self._redis = redis
        self._owns_redis = False
        self._rate, self._burst = rate, burst
        self._max = max_concurrency
        self._on_error = on_redis_error
        self._horizon = horizon
        self._retry_after = retry_after
        self._max_gate_wait = max_gate_wait
        self._sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        self._random: Callable[[], float] = random or _random.random
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._observe = redis.register_script(scripts.OBSERVE)
        self._check = redis.register_script(scripts.CHECK)
        self._epoch = redis.register_script(scripts.EPOCH)
        self._counts = redis.register_script(scripts.COUNTS)
        self._schedule = redis.register_script(scripts.SCHEDULE)
        self._leave = redis.register_script(scripts.LEAVE)
        self._learner = SharedRate(RateController(rate=rate, burst=burst, shared=True))
        self._step = self._share / (1.0 - self._share)
        self._fallback = RateLimiter(
            max_concurrency=max_concurrency, rate=rate, burst=burst, background_share=self._share
        )
        self._down = False
        self._down_until = -math.inf
        self._closed = False
        self._loop = None
        self._calls = set()
        self._turns = turns()
        self._pending = None
        self._flusher = None
        self._sending = 0
        self._shared = {}
        self._shared_at = 0.0
        self._reopen_at = self._held_until = -math.inf  # _held_until: see observe()
        self._throttled = 0.0
        self._throttle_events = 0
        self._rate_limited = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.5,
        socket_connect_timeout: float = 0.5,
        **options: Any,
    ) -> RedisRateLimiter:
        """Build one on a new Redis connection pool (closed by :meth:`aclose`).

        ``url`` is a redis-py URL (``redis://host:6379/0``, ``rediss://``,
        ``unix://``); ``options`` are those of the constructor.
        """
        client = bounded_redis(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout
        )
        limiter = cls(client, **options)
        limiter._owns_redis = True
        return limiter

    # -- RateBudget -------------------------------------------------------------------

    def slot(self, *, priority: Priority = INTERACTIVE) -> AbstractAsyncContextManager[None]:
        """Admit one attempt: local concurrency slot, shared cooldown gate, shared token.

        Waiting ``"interactive"`` calls of every process sharing the budget get the
        shared tokens before waiting ``"background"`` ones, which keep
        ``background_share`` of them. In a process, waiters of one priority queue
        first come first served and only the first of them asks Redis; it announces
        itself there until a little after its next ask, so a crashed process holds
        nobody back for long.

        Raises:
            SharedBudgetUnavailableError: Redis failed and ``on_redis_error="raise"``.
            ClientClosedError: after :meth:`aclose`.
        """
        return _Slot(self, priority)

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
        """Learn from one response; shared parts are pushed to Redis in the background.

        The rules are the controller's (``_controller``): the rate from headers, the 429
        episodes and their cooldowns. A bare 429 that calls for a decrease claims an
        epoch instead (see ``_learner``): its leader closes the shared gate, once.
        """
        now = self._now()
        ctl = self._learner.ctl
        p = self._pending if self._pending is not None else _Pending()
        no_headers = limit is None and remaining is None and reset_after is None
        if (not no_headers or window is not None) and ctl.headers(
            now, limit, remaining, reset_after, window
        ):
            p.rate, p.burst = ctl.rate, ctl.burst
        if self._down:
            self._fallback.observe(
                status,
                limit=limit,
                remaining=remaining,
                reset_after=reset_after,
                window=window,
                retry_after=retry_after,
            )
        cool = None
        if status == 429:
            self._rate_limited += 1
            cool, decrease = ctl.throttled(now, self._reopen_at, retry_after, reset_after)
            if decrease:
                claim = cool or 0.0
                p.claim = max(claim, p.claim or 0.0)
                p.cautious = p.cautious and retry_after is None
                self._local.cooldown(claim)  # this process stops at once, before Redis
                self._held_until = max(self._held_until, now + claim)  # knows (see _admit)
                self._reopen_at = max(self._reopen_at, now + claim)
                if retry_after is None and reset_after is None:
                    cool = None  # a bare 429: the epoch's leader closes the gate, once
        elif status < 500 and ctl.accepted(now, limit is not None) == STARTED:
            p.start = self._learner.start_to_publish()
        if remaining is not None:  # requests still on the wire were not counted yet
            net = int(ctl.net_remaining(remaining, self._sending - 1))
            p.remaining = net if p.remaining is None else min(p.remaining, net)
        p.limit = limit if limit is not None else p.limit
        if reset_after is not None:
            p.reset_after = max(reset_after, p.reset_after or 0.0)
        p.window = window if window is not None else p.window
        if cool is not None:
            p.reopen_at = max(now + cool, p.reopen_at or -math.inf)
            self._reopen_at = max(self._reopen_at, now + cool)
        p.no_headers = p.no_headers or (no_headers and status < 400)
        if no_headers and status != 429:
            # Every answer the server's limit let through counts, 5xx too (as
            # `RateController.failed`): it counted them.
            p.count_accepted(self._learner.bucket(now))
        self._pending = p
        self._kick()

    def cooldown(self, seconds: float) -> None:
        """Close the shared gate for ``seconds`` for every process (never reopens earlier)."""
        now = self._now()
        self._fallback.cooldown(seconds)
        p = self._pending if self._pending is not None else _Pending()
        p.reopen_at = max(now + max(0.0, seconds), p.reopen_at or -math.inf)
        self._reopen_at = max(self._reopen_at, p.reopen_at)
        self._pending = p
        self._kick()

    def snapshot(self) -> RateLimitSnapshot:
        """The state now: shared values as last seen from Redis (or the fallback's)."""
        now = self._now()
        local = self._local.snapshot()
        if self._down:
            fb = self._fallback.snapshot()
            return attrs.evolve(
                fb,
                max_concurrency=self._max,
                in_flight=local.in_flight,
                throttled_seconds=self._throttled + fb.throttled_seconds,
                throttle_events=self._throttle_events + fb.throttle_events,
                rate_limited_responses=self._rate_limited,
            )
        sh, age = self._shared, max(0.0, now - self._shared_at)
        rate, burst, tokens = sh.get("rate"), sh.get("burst"), sh.get("tokens")
        ctl = self._learner.ctl
        if rate is None and ctl.source == AIMD:  # learned from bare 429s: not in OBSERVE's reply
            rate, burst, tokens = ctl.rate_at(now), ctl.burst, None
        if rate is None:
            rate, burst, tokens = self._rate, self._burst, None
        elif tokens is not None and burst is not None:
            tokens = max(0.0, min(burst, tokens + age * rate))
        limit, remaining, reset = sh.get("limit"), sh.get("remaining"), sh.get("reset_after")
        return RateLimitSnapshot(
            max_concurrency=self._max,
            in_flight=local.in_flight,
            rate=rate,
            burst=burst,
            tokens=tokens,
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset_after=None if reset is None else max(0.0, reset - age),
            cooldown_remaining=max(0.0, self._reopen_at - now, local.cooldown_remaining),
            throttled_seconds=self._throttled + local.throttled_seconds,
            throttle_events=self._throttle_events + local.throttle_events,
            rate_limited_responses=self._rate_limited,
        )

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def shared(self) -> bool:
        """False while Redis is unreachable (requests then use the fallback, or fail)."""
        return not self._down

    def __repr__(self) -> str:
        s = self.snapshot()
        rate = "unlimited" if s.rate is None else f"{s.rate:.3g}/s"
        mode = "shared" if self.shared else f"redis down ({self._on_error})"
        return (
            f"<RedisRateLimiter {mode} budget={self._keys[0].rsplit(':', 1)[0]} "
            f"redis={self._where()} in_flight={s.in_flight}/{s.max_concurrency} "
            f"rate={rate} cooldown={s.cooldown_remaining:.2f}s 429s={s.rate_limited_responses}>"
        )

    # -- clock ----------------------------------------------------------------------

    def _now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # snapshot()/repr outside a loop
            return time.monotonic()
