"""Client-wide rate-limit budget shared by every concurrent request: admission.

``RateLimiter.slot()`` admits one request attempt through three stages, in order:

1. a concurrency slot (at most ``max_concurrency`` attempts inside);
2. the shared cooldown gate, closed by ``cooldown()`` or by a 429 (a 5xx is a fault of
   one request, never a reason to hold the others: see ``_overload``);
3. one token from a token bucket, when a rate is known. Token waiters pass one
   at a time, so they leave one token interval apart instead of in one burst.

Each stage queues in two lanes (see ``_priority``): a queued ``"interactive"`` call
goes before queued ``"background"`` ones, which still get a bounded share
(``background_share``) of the admissions. The token goes to whoever's turn it is
when it exists, not when the wait for it began, and an interactive call finding every
slot held borrows one from a background call still queued for its token (that call
queues for a slot again, first in its lane): so an interactive call arriving during a
saturating bulk run waits about one token interval.

``observe()`` is fed every response. With nothing known the first request goes
alone: its answer may carry the limit. What the answers teach (the send rate, from
rate-limit headers or from 429s, and how long a 429 closes the gate) is decided by a
``RateController`` (``_controller``, pure, shared with ``RedisRateLimiter``), which this
limiter hosts: it applies the rate to its token bucket and the cooldowns to its gate.
The waits of an admission (slot lanes, probe, gate, tokens) are the ``_Admission`` base
in ``_admission``. This module holds the rest: ``observe()`` itself, the public API and
the synchronous lane (``_admit_now``).
"""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar

import attrs

from ._admission import _Admission, _Slot
from ._bucket import FifoSlots, OnTheWire, TokenBucket
from ._controller import AIMD, KEEP, STARTED, RateController
from ._priority import BACKGROUND_SHARE, INTERACTIVE, Priority, Turns

__all__ = ["RateLimitSnapshot", "RateLimiter", "sent_in_this_task"]

# When the attempt this task holds a slot for was sent: observe() dates its answer by it.
_SENT: ContextVar[float | None] = ContextVar("sendkit_async_sent", default=None)


def sent_in_this_task(slot: object) -> None:
    """Date the attempt admitted by ``slot`` (one of ours, entered in another task, as
    the pipeline does to race its wait against close) in the task that sends it."""
    if isinstance(slot, _Slot) and slot._sent_at is not None:
        _SENT.set(slot._sent_at)


@attrs.frozen
class RateLimitSnapshot:
    """Point-in-time view of a `RateLimiter`, for run reports and debugging."""

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


class RateLimiter(_Admission):
    """Concurrency cap, token bucket and cooldown gate shared by one client.

    Args:
        max_concurrency: most request attempts inside ``slot()`` at once (default 100,
            the size of the client's default connection pool).
        rate: fixed ceiling in requests/s; learning may go below it, never above.
            ``None`` = no limit until one is learned.
        burst: bucket capacity (ceiling for learned bursts); defaults to one
            second of ``rate``.
        adaptive: learn from ``observe()`` (headers, AIMD). With ``False`` the
            bucket keeps the user's numbers; the cooldown gate still works.
        background_share: least share of the admissions that queued background
            calls get while interactive ones also queue (0 < share < 1).
        clock, sleep, random: injectable time and randomness (for tests).

    Raises:
        ValueError: ``max_concurrency < 1``, ``rate <= 0``, ``burst < 1`` or a
            ``background_share`` not between 0 and 1.
    """

    # The queues' slots are _Admission's.
    __slots__ = (
        "_adaptive", "_bucket", "_clock", "_ctl", "_gate_len", "_gate_until", "_limit",
        "_probe_done", "_random", "_rate_limited", "_remaining", "_reset_at", "_sleep",
        "_slots", "_wire",
    )  # fmt: skip

    def __init__(
        self,
        *,
        max_concurrency: int = 100,
        rate: float | None = None,
        burst: float | None = None,
        adaptive: bool = True,
        background_share: float = BACKGROUND_SHARE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive finite number, got {rate}")
        if burst is not None and not (burst >= 1 and math.isfinite(burst)):
            raise ValueError(f"burst must be >= 1, got {burst}")
        self._ctl = RateController(rate=rate, burst=burst, adaptive=adaptive)
        self._adaptive = adaptive
        self._clock = clock
        self._sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        self._random: Callable[[], float] = random or _random.random
        self._slots = FifoSlots(max_concurrency, Turns(background_share))  # held while
        # waiting for gate/token too; interactive first, background keeps its share.
        self._wire = OnTheWire()  # slots past the token stage: requests on the wire
        self._token_lock = FifoSlots(1)  # one token waiter at a time, interactive first
        self._turns = Turns(background_share)  # whose turn each token is
        self._handed = False  # the token lock was handed over by a turn already decided
        self._bg_queued = 0  # background calls holding a slot, not yet sent
        self._lent = 0  # of those, slots lent to interactive calls (see _enter)
        self._bucket: TokenBucket | None = None  # None: no rate known, unlimited
        if rate is not None:
            self._bucket = TokenBucket(rate, self._ctl.burst)
        self._gate_until = -math.inf
        self._gate_len = 0.0
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._throttled = 0.0
        self._throttle_events = 0
        self._rate_limited = 0
        # With nothing known, the first request goes alone: its answer may carry the
        # limit, and a blind first wave of max_concurrency requests would mostly be 429s.
        self._probing = adaptive and rate is None
        self._prober_active = False
        self._probe_done = asyncio.Event()

    # -- public API -------------------------------------------------------------------

    def slot(self, *, priority: Priority = INTERACTIVE) -> AbstractAsyncContextManager[None]:
        """Admit one request attempt: slot, then cooldown gate, then token.

        Use ``async with limiter.slot():`` around sending one request and reading
        its response; call ``observe()`` inside the block. The slot is released
        on exit; cancellation at any stage leaks neither slot nor token, and
        frees the call's place in the queue at once. A queued ``"interactive"``
        call goes before queued ``"background"`` ones (see ``background_share``).
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
        """Learn from one response (any status) and its already-parsed hints.

        Call it inside the ``slot()`` block: requests still on the wire are
        subtracted from ``remaining`` because the server has not counted them, and an
        answer is dated by when its request was sent.
        """
        if self._probing:
            self._end_probe()
        now = self._now()
        sent = _SENT.get()
        if limit is not None:
            self._limit = limit
        if remaining is not None:
            self._remaining = remaining
        if reset_after is not None:
            self._reset_at = now + reset_after
        ctl = self._ctl
        hinted = limit is not None or remaining is not None or reset_after is not None
        if self._adaptive and (hinted or window is not None):
            if ctl.headers(now, limit, remaining, reset_after, window):
                self._apply(now, KEEP)
            if remaining is not None and self._bucket is not None:
                # Only ever lower the tokens: a stale, higher `remaining` gives nothing back.
                self._bucket.cap(now, ctl.net_remaining(remaining, self._wire.count - 1))
        if status == 429:
            self._rate_limited += 1
            cooldown, changed = ctl.throttled(
                now, self._gate_until, retry_after, reset_after, sent, self._wire.count > 1
            )
            if changed:
                self._apply(now, KEEP)
            if cooldown is not None:
                self.cooldown(cooldown)
            return
        if status < 500:
            busy = self._wire.count >= self._slots.limit
            done = ctl.accepted(now, limit is not None, busy, sent)
            if done:
                self._apply(now, done)
        else:
            ctl.failed(now, sent)

    def _apply(self, now: float, done: int) -> None:
        """Give the bucket the controller's rate and burst (STARTED: one token at first)."""
        ctl = self._ctl
        if ctl.rate is None:
            self._bucket = None  # unlimited: spare every request the token stage
            return
        if self._bucket is None:
            self._bucket = TokenBucket(ctl.rate, ctl.burst, now)
        else:
            self._bucket.reconfigure(now, ctl.rate, ctl.burst)
        if done == STARTED:
            self._bucket.cap(now, 1.0)  # paced from the first token on, no burst

    def cooldown(self, seconds: float) -> None:
        """Close the shared gate for ``seconds`` from now; never reopens it earlier.

        With a known rate, exactly one token is available when the gate opens and
        the rest arrive at the bucket's rate, so the waiters leave spread out.
        """
        now = self._now()
        until = now + max(0.0, seconds)
        if until <= self._gate_until:
            return
        self._gate_until = until
        self._gate_len = seconds
        if self._bucket is not None:
            # Tokens banked during the cooldown are not the server's: one request goes
            # when the gate opens, the others follow at the bucket's rate.
            self._bucket.restart_at(until)

    def snapshot(self) -> RateLimitSnapshot:
        """Return the current state (tokens and countdowns as of now)."""
        now = self._now()
        bucket = self._bucket
        reset_after = None if self._reset_at is None else max(0.0, self._reset_at - now)
        return RateLimitSnapshot(
            max_concurrency=self._slots.limit,
            in_flight=self._slots.held,
            rate=None if bucket is None else bucket.rate,
            burst=None if bucket is None else bucket.burst,
            tokens=None if bucket is None else max(0.0, bucket.refill(now)),
            limit=self._limit,
            remaining=self._remaining,
            reset_after=reset_after,
            cooldown_remaining=max(0.0, self._gate_until - now),
            throttled_seconds=self._throttled,
            throttle_events=self._throttle_events,
            rate_limited_responses=self._rate_limited,
        )

    def __repr__(self) -> str:
        s = self.snapshot()
        ctl = self._ctl
        slow = ctl.source == AIMD and ctl.aimd.estimate is None
        source = "slow start" if slow else ctl.source
        rate = "unlimited" if s.rate is None else f"{s.rate:.3g}/s ({source})"
        tokens = "" if s.tokens is None else f" tokens={s.tokens:.2f}/{s.burst:.3g}"
        return (
            f"<RateLimiter in_flight={s.in_flight}/{s.max_concurrency} rate={rate}{tokens}"
            f" cooldown={s.cooldown_remaining:.2f}s 429s={s.rate_limited_responses}>"
        )

    # -- time -------------------------------------------------------------------------

    def _now(self) -> float:
        if self._clock is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # snapshot()/repr outside a loop, before first use
                return time.monotonic()
            # asyncio's own loops tell time by time.monotonic(): skip the extra call.
            clock = loop.time
            native = getattr(clock, "__func__", None) is asyncio.BaseEventLoop.time
            self._clock = time.monotonic if native else clock
        return self._clock()

    # -- slot bookkeeping -------------------------------------------------------------

    def _admit_now(self) -> float | None:
        """Slot, gate and token in one step when none of them needs a wait.

        Returns the send time, the ticket :meth:`_release_admitted` takes back;
        or None (nothing taken): then :meth:`slot` must wait. This is how nearly
        every request of a bulk run gets in.
        """
        if self._probing or not self._slots.free or self._token_lock.held:
            return None
        now = self._now()
        if self._gate_until > now:
            return None
        if self._bucket is not None and self._bucket.take(now) > 0.0:
            return None
        self._slots.try_acquire()
        return self._sent(now)

    def _sent(self, now: float | None = None) -> float:
        """Count one request as on the wire from ``now``; return its send time."""
        if now is None:
            now = self._now()
        ctl = self._ctl
        if ctl.first_sent is None:
            ctl.first_sent = now
        self._wire.add(now)
        _SENT.set(now)
        if ctl.pending is not None and ctl.settle(now, self._wire.oldest):
            self._apply(now, KEEP)
        return now

    def _release_admitted(self, sent_at: float) -> None:
        """End an attempt admitted at ``sent_at``, answered or not: leaving its slot."""
        if self._probing:
            self._end_probe()  # the first attempt is over, answered or not
        _SENT.set(None)
        now = self._now()
        rtt = now - sent_at
        ctl = self._ctl
        ctl.answered(rtt if rtt > 0.0 else 0.0)
        self._wire.remove(sent_at)
        if ctl.pending is not None and ctl.settle(now, self._wire.oldest):
            self._apply(now, KEEP)
        self._slots.release()
