"""The learning half of `RateLimiter`: what it learns from responses and 429s.

``_Learning`` is a mixin that ``RateLimiter`` (in ``_ratelimit``) inherits, so
``observe()`` reaches these methods with no extra attribute hop; the state only
learning writes lives in the mixin's ``__slots__``. Admission (slots, gate, tokens,
the first request's probe) stays in ``_ratelimit``.

Rate-limit headers drive the bucket (rate = limit / window, where the window is the
policy's ``w=`` or else the largest reset seen); ``remaining`` only ever lowers the
local tokens. If the first answer names no limit, the rate starts at its pace and is
learned from 429s (``AdaptiveRate``: slow start, then an estimate of the server's
rate at each 429 and a slow climb back). A user-given ``rate`` is a ceiling that
learning never exceeds. A 429 closes the gate for ``_overload.throttle_cooldown``:
its Retry-After, but at least a few token intervals (50 ms at least; 0.5 s with no
rate known), doubling per consecutive 429 episode up to 1 s.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._bucket import AdaptiveRate, FifoSlots, TokenBucket, early_rate
from ._overload import throttle_cooldown

SLOW_START_RTT = 0.001
"""Slow start begins at one request per round trip of the first, at most 1,000/s."""

_AIMD_BURST = 0.01  # seconds of a learned-from-429s rate the bucket may bank...
_AIMD_MIN_BURST = 2.0  # ...but at least this many tokens, so a waiter woken late
# catches up instead of losing its turn (with one token, waking ~1 ms late at 100/s
# cost ~12 % of the rate against nginx).

# Where the bucket's rate comes from (RateLimiter._source).
_NONE, _USER, _HEADERS, _AIMD = "none", "user", "headers", "aimd"


class _Learning:
    """Mixin of `RateLimiter`: sets the bucket's rate and the 429 cooldowns from answers.

    ``RateLimiter.__init__`` sets every attribute declared here.
    """

    __slots__ = (
        "_aimd", "_bucket", "_burst_ceiling", "_ceiling", "_episodes", "_hold_until",
        "_max_reset", "_source", "_window",
    )  # fmt: skip

    _aimd: AdaptiveRate  # the rate when no headers tell it
    _bucket: TokenBucket | None  # None: no rate known, unlimited
    _burst_ceiling: float | None
    _ceiling: float | None
    _episodes: int  # consecutive 429 episodes without a success in between
    _hold_until: float  # no AIMD decrease before this time
    _max_reset: float
    _source: str  # one of _NONE, _USER, _HEADERS, _AIMD
    _window: float | None

    # Kept by RateLimiter's admission half; only read here.
    _adaptive: bool
    _first_sent: float | None
    _gate_until: float
    _last_wait: float
    _sending: int
    _slots: FifoSlots
    _srtt: float

    if TYPE_CHECKING:

        def cooldown(self, seconds: float) -> None: ...

    def _learn_headers(
        self,
        now: float,
        limit: int | None,
        remaining: int | None,
        reset_after: float | None,
        window: float | None,
    ) -> None:
        if reset_after is not None and reset_after > 0:
            self._max_reset = max(self._max_reset, reset_after)
        if window is not None and window > 0:
            self._window = window
        period = self._window or self._max_reset
        if limit is not None and limit > 0 and period > 0:
            rate = limit / period
            if self._window is None and period < 1.0:
                rate = min(rate, early_rate(limit, remaining, reset_after))
            self._source = _HEADERS
            self._set_rate(now, rate, max(1.0, float(limit)))
        if remaining is not None and self._bucket is not None:
            # Requests on the wire besides this one were not counted by the server yet.
            # Only ever lower the tokens: a stale, higher `remaining` gives nothing back.
            self._bucket.cap(now, max(0.0, remaining - max(0, self._sending - 1)))

    def _on_429(self, now: float, reset_after: float | None, retry_after: float | None) -> None:
        new_episode = now >= self._gate_until
        if new_episode:
            self._episodes += 1
        decrease = self._adaptive and self._source != _HEADERS and now >= self._hold_until
        if decrease:
            self._decrease(now)
        if new_episode or retry_after is not None:
            rate = None if self._bucket is None else self._bucket.rate
            self.cooldown(throttle_cooldown(self._episodes, rate, retry_after, reset_after))
        if decrease:
            # The climb back starts as the gate opens; what this 429 costs sets its pace.
            until = max(now, self._gate_until)
            self._aimd.pause(until, until - now, self._srtt)
            # 429s of requests sent before this decrease must not lower the rate again.
            self._hold_until = max(self._gate_until, now + 2.0 * self._srtt)

    def _start_slow(self, now: float, share: float = 1.0) -> None:
        # No limit known: go on at the first request's own pace (one request per round
        # trip) and grow from there; a blind wave of max_concurrency would draw 429s.
        sent = self._first_sent if self._first_sent is not None else now
        self._aimd.start(now, share / max(now - sent, SLOW_START_RTT))
        self._source = _AIMD
        self._set_aimd(now)
        if self._bucket is not None:
            self._bucket.cap(now, 1.0)  # paced from the first token on, no burst

    def _decrease(self, now: float) -> None:
        since = self._first_sent if self._first_sent is not None else now
        current = math.inf if self._bucket is None else self._bucket.rate
        if self._aimd.limited(now, since, current) is None:
            self._start_slow(now, 0.5)  # limited before anything was learned
            return
        self._source = _AIMD
        self._set_aimd(now)

    def _increase(self, now: float) -> None:
        if self._bucket is None:
            return
        if self._aimd.estimate is None and self._sending >= self._slots.limit:
            # Slow start outgrew the concurrency cap (every slot is on the wire): the rate
            # binds no more, so drop it and spare every request the token stage.
            self._bucket = None
            return
        rate = self._bucket.rate
        # Saturated: requests are queueing for tokens, so the rate is the bottleneck.
        saturated = now - self._last_wait <= 2.0 / rate + 2.0 * self._srtt
        if self._aimd.grow(now, saturated, self._srtt) != rate:
            self._set_aimd(now)

    def _set_aimd(self, now: float) -> None:
        # Ten milliseconds of burst: a waiter woken late catches up instead of losing its
        # turn (with a burst of one, waking ~1 ms late cost ~12 % of 200/s in benchmarks).
        rate = self._aimd.rate
        self._set_rate(now, rate, max(_AIMD_MIN_BURST, rate * _AIMD_BURST))

    def _set_rate(self, now: float, rate: float, burst: float) -> None:
        if self._ceiling is not None:
            rate = min(rate, self._ceiling)
        if self._burst_ceiling is not None:
            burst = min(burst, self._burst_ceiling)
        if self._bucket is None:
            self._bucket = TokenBucket(rate, burst, now)
        else:
            self._bucket.reconfigure(now, rate, burst)
