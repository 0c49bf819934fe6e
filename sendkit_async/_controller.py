"""The rate controller: what a rate limiter learns from answers, as one pure object.

``RateController`` holds every learning rule of both rate limiters: the send rate (from
rate-limit headers, or from 429s: :class:`~sendkit_async._adaptive.AdaptiveRate`), the
429 episodes and the cooldown each one costs (:func:`~sendkit_async._overload.throttle_cooldown`),
and the hold that keeps the 429s of requests sent before a decrease from lowering the
rate again. It does no I/O and reads no clock: hosts pass ``now``. Its hosts
(composition, not inheritance):

- :class:`~sendkit_async.RateLimiter` (one process) applies ``rate``/``burst`` to its
  token bucket and each returned cooldown to its gate;
- :class:`~sendkit_async.redis_limiter.RedisRateLimiter` (``shared=True``) passes them
  to the token bucket and gate in Redis. There the rate learned from bare 429s is one
  schedule for every process: the first process to see an accepted answer publishes
  the slow start, each 429 epoch's leader publishes the climb (:meth:`lead`), and
  every process's rate is the same function of that schedule and the time
  (:meth:`rate_at`), with no per-process growth; a slow start is also held to twice
  the rate every process got accepted lately (``measured``, from Redis).

Headers: rate = limit / window, where the window is the policy's ``w=`` or else the
largest reset seen (capped by :func:`~sendkit_async._bucket.early_rate` while every
reset seen is under a second). A user-given ``rate`` is a ceiling learning never
exceeds.
"""

from __future__ import annotations

import math

from ._adaptive import AdaptiveRate, Climb
from ._bucket import early_rate
from ._overload import throttle_cooldown

__all__ = ["AIMD", "CHANGED", "HEADERS", "NONE", "STARTED", "USER", "RateController"]

SLOW_START_RTT = 0.001
"""Slow start begins at one request per round trip of the first, at most 1,000/s."""

_AIMD_BURST = 0.01  # seconds of a learned-from-429s rate the bucket may bank...
_AIMD_MIN_BURST = 2.0  # ...but at least this many tokens, so a waiter woken late
# catches up instead of losing its turn (with one token, waking ~1 ms late at 100/s
# cost ~12 % of the rate against nginx).
_SHARED_HOLD = 0.05  # a shared 429 starts no new epoch before Redis answered (seconds)
# A shared slow start's rate is at most this many times what every process got accepted
# in the last 0.2-0.3 s (answers come a round trip and a push after their requests). At
# twice, TCP's factor per round trip, it grew 1.5x per 100 ms behind a 50 ms backend and
# took 0.7 s to its first 429, where one process takes 0.26 s. At three, 0.5 s; at four,
# 0.4 s, but a bare 429's overshoot then drew twice the 429s.
_SHARED_GROWTH = 3.0

# Where the rate comes from (RateController.source).
NONE, USER, HEADERS, AIMD = "none", "user", "headers", "aimd"

# What accepted() did: nothing, changed rate/burst, or started the slow start (the host
# then lets one token through at first: paced from the start, no burst).
KEEP, CHANGED, STARTED = 0, 1, 2

Schedule = Climb
"""A published climb (see `Climb`)."""


class RateController:
    """Learning rules of a rate limiter: rate, burst, 429 episodes and cooldowns.

    Args:
        rate: the user's ceiling in requests/s (None: none).
        burst: the user's ceiling on the bucket size.
        adaptive: learn from answers; with False the rate stays the user's.
        shared: the rate learned from 429s is published for other processes and
            followed by every one (see the module docstring).
    """

    __slots__ = (
        "adaptive", "aimd", "burst", "burst_ceiling", "ceiling", "episodes", "first_sent",
        "hold_until", "last_wait", "max_reset", "measured", "pending", "rate", "shared",
        "source", "srtt", "window",
    )  # fmt: skip

    def __init__(
        self,
        *,
        rate: float | None = None,
        burst: float | None = None,
        adaptive: bool = True,
        shared: bool = False,
    ) -> None:
        self.ceiling = rate
        self.burst_ceiling = burst
        self.adaptive = adaptive
        self.shared = shared
        self.source = USER if rate is not None else NONE
        self.rate: float | None = rate  # the send rate; None: unlimited (nothing known)
        self.burst = (burst or max(1.0, rate)) if rate is not None else 1.0
        self.aimd = AdaptiveRate(rate)  # the rate when no headers tell it
        self.episodes = 0  # consecutive 429 episodes without an accepted answer between
        self.hold_until = -math.inf  # no decrease (and no growth) before this time
        self.last_wait = -math.inf  # when a request last waited for a token
        self.srtt = 0.0  # smoothed round trip of answered attempts
        self.first_sent: float | None = None
        self.max_reset = 0.0
        self.window: float | None = None
        self.measured = 0.0  # shared: what every process got accepted lately, per second
        # A 429 episode to learn from once the requests sent before it are answered:
        # (its request's send time, when it came, when its gate opens, cautious?).
        self.pending: tuple[float, float, float, bool] | None = None

    # -- what the host reports ------------------------------------------------------------

    def sent(self, now: float) -> None:
        """An attempt goes on the wire."""
        if self.first_sent is None:
            self.first_sent = now

    def answered(self, rtt: float) -> None:
        """An attempt ended after ``rtt`` seconds (answered or not)."""
        self.srtt = 0.8 * self.srtt + 0.2 * rtt if self.srtt else rtt

    # -- rate-limit headers -----------------------------------------------------------------

    def headers(
        self,
        now: float,
        limit: int | None,
        remaining: int | None,
        reset_after: float | None,
        window: float | None,
    ) -> bool:
        """Learn the rate from one answer's headers; True when ``rate``/``burst`` changed."""
        if not self.adaptive:
            return False
        if reset_after is not None and reset_after > 0:
            self.max_reset = max(self.max_reset, reset_after)
        if window is not None and window > 0:
            self.window = window
        period = self.window or self.max_reset
        if limit is None or limit <= 0 or period <= 0:
            return False
        rate = limit / period
        if self.window is None and period < 1.0:
            rate = min(rate, early_rate(limit, remaining, reset_after))
        self.source = HEADERS
        return self._set(rate, max(1.0, float(limit)))

    def merge_period(self, max_reset: float | None, window: float | None) -> None:
        """Take the largest reset and the window other processes saw (shared host)."""
        if max_reset is not None and max_reset > self.max_reset:
            self.max_reset = max_reset
        if window is not None and window > 0 and self.window is None:
            self.window = window

    @staticmethod
    def net_remaining(remaining: int, others_on_wire: int) -> float:
        """The tokens ``remaining`` leaves: requests still on the wire besides the one
        answered were not counted by the server yet."""
        return max(0.0, float(remaining - max(0, others_on_wire)))

    # -- 429s -------------------------------------------------------------------------------

    def throttled(
        self,
        now: float,
        gate_until: float,
        retry_after: float | None,
        reset_after: float | None,
        sent: float | None = None,
        earlier: bool = False,
    ) -> tuple[float | None, bool]:
        """A 429: (how long to close the gate from now, or None to leave it; rate changed?).

        ``gate_until`` is when the host's gate opens (a 429 then is a new episode). No
        decrease while headers tell the rate. A single host's decrease is done here; a
        shared one is claimed in Redis by the host and done by the leader (:meth:`lead`).
        ``sent``: when the refused request was sent (default ``now``); ``earlier``:
        requests sent before it are still on the wire. Their answers belong to the
        episode (a backend answers what it admitted later than a gateway refuses), so
        the decrease then waits for them: :meth:`settle`.
        """
        settled = self.settle(now)  # past the pending episode's gate: learn from it first
        new_episode = now >= gate_until
        if new_episode:
            self.episodes += 1
        decrease = self.adaptive and self.source != HEADERS and now >= self.hold_until
        cautious = retry_after is None
        sent = now if sent is None else min(sent, now)
        if decrease and not self.shared and not earlier:
            self._decrease(sent, cautious)
        cooldown = None
        if new_episode or retry_after is not None or (decrease and self.shared):
            cooldown = throttle_cooldown(self.episodes, self.rate, retry_after, reset_after)
        if not decrease:
            return cooldown, settled
        if self.shared:
            self.hold_until = now + max(2.0 * self.srtt, _SHARED_HOLD)  # Redis answers
            return cooldown, True
        until = max(gate_until, now + (cooldown or 0.0))
        if earlier:
            self.pending = (sent, now, until, cautious)
            self.hold_until = max(self.hold_until, until)
            return cooldown, settled
        self._pause(now, until)
        return cooldown, True

    def settle(self, now: float, oldest: float = -math.inf) -> bool:
        """Learn from the pending 429 episode once ``oldest`` (the send time of the
        oldest request on the wire, inf for none) is after it came, or its gate opens at
        ``now``. True when the rate changed then."""
        if self.pending is None:
            return False
        sent, came, until, cautious = self.pending
        if oldest < came and now < until:
            return False
        self.pending = None
        if self.source == HEADERS:  # headers told the rate meanwhile: they rule
            return False
        self._decrease(sent, cautious, came)
        self._pause(came, until)
        return True

    def _pause(self, now: float, until: float) -> None:
        # The climb back starts as the gate opens; what this 429 costs sets its pace.
        self.aimd.pause(until, until - now, self.srtt)
        # 429s of requests sent before this decrease must not lower the rate again.
        self.hold_until = max(until, now + 2.0 * self.srtt)

    def _decrease(self, now: float, cautious: bool, closed: float | None = None) -> None:
        # (Answers are dated by their requests' send times: the first one's counts too.)
        since = math.nextafter(self.first_sent if self.first_sent is not None else now, -math.inf)
        current = math.inf if self.rate is None else self.rate
        if self.aimd.limited(now, since, current, cautious, closed) is None:
            self._start_slow(now, 0.5)  # limited before anything was learned
            return
        self.source = AIMD
        self._set_aimd()

    # -- accepted answers -------------------------------------------------------------------

    def accepted(
        self, now: float, hinted: bool, busy: bool = False, sent: float | None = None
    ) -> int:
        """An answer that was neither a 429 nor a 5xx: KEEP, CHANGED or STARTED.

        ``hinted``: it carried a limit; ``busy``: every concurrency slot is on the wire;
        ``sent``: when its request was sent (default ``now``), by which the learner dates
        it, as a server's limit counted it.
        """
        self.episodes = 0
        if not self.adaptive:
            return KEEP
        aimd = self.aimd
        aimd.accepted(now if sent is None else min(sent, now))
        if self.source == NONE and not hinted:
            self._start_slow(now)
            return STARTED
        if self.source != AIMD or self.rate is None or now < self.hold_until or self.shared:
            return KEEP
        if aimd.estimate is None and busy:
            # Slow start outgrew the concurrency cap (every slot is on the wire): the rate
            # binds no more, so drop it and spare every request the token stage.
            self.rate = None
            return CHANGED
        rate = self.rate
        # Saturated: requests are queueing for tokens, so the rate is the bottleneck.
        saturated = now - self.last_wait <= 2.0 / rate + 2.0 * self.srtt
        if aimd.grow(now, saturated, self.srtt) == rate:
            return KEEP
        return CHANGED if self._set_aimd() else KEEP

    def failed(self, now: float, sent: float | None = None) -> None:
        """A 5xx answer. It is a fault, not a throttle, and grows nothing; but the server's
        rate limit let it through and counted it (nginx's ``limit_req`` does, in front of
        a backend that fails), so the learner counts it with the accepted answers: left
        out, 5 % of 503s made every estimate 3-6 % low, and the run slower."""
        if self.adaptive:
            self.aimd.accepted(now if sent is None else min(sent, now))

    def _start_slow(self, now: float, share: float = 1.0) -> None:
        # No limit known: go on at the first request's own pace (one request per round
        # trip) and grow from there; a blind wave of max_concurrency would draw 429s.
        sent = self.first_sent if self.first_sent is not None else now
        self.aimd.start(now, share / max(now - sent, SLOW_START_RTT))
        self.source = AIMD
        self._set_aimd()

    # -- shared (RedisRateLimiter): one schedule for every process ---------------------------

    def rate_at(self, now: float) -> float | None:
        """The shared send rate at ``now``: the published schedule's, or None."""
        if self.source != AIMD:
            return self.rate
        aimd = self.aimd
        rate = aimd.at(now)
        if rate <= 0:
            return None
        if aimd.estimate is None:
            # Slow start grows with what the server accepts, as TCP's with its acks: at
            # most _SHARED_GROWTH times what every process got accepted lately, so the
            # sum of the processes' concurrency never goes out blind into an unknown limit.
            rate = min(rate, max(aimd.start_rate, _SHARED_GROWTH * self.measured))
        self.rate = rate
        self.burst = self._aimd_burst(rate)
        return rate

    def slow_start(self) -> tuple[float, float] | None:
        """(rate, start) of the slow start this process began, to publish; else None."""
        if self.source != AIMD or self.aimd.estimate is not None:
            return None
        return self.aimd.start_rate, self.aimd.started

    def follow_start(self, now: float, rate: float, start: float) -> None:
        """Adopt a published slow start (times on our clock) unless a climb is known."""
        if self.aimd.estimate is not None or not (rate > 0):
            return
        if self.source == AIMD and self.aimd.started == start:
            return
        self.aimd.start(start, rate)
        self.source = AIMD
        self.rate_at(now)

    def lead(
        self, now: float, cooldown: float, accepted: list[float], cautious: bool = True
    ) -> Schedule | None:
        """An epoch's leader: decide the new rate from every process's accepted answers
        (times on our clock); the climb to publish, or None if nothing can be learned.
        ``cautious``: the 429 carried no Retry-After (see ``AdaptiveRate.limited``)."""
        aimd = self.aimd
        aimd.load([t for t in accepted if t <= now])
        # Every process's answers count, also those before this one's first request.
        first = self.first_sent if self.first_sent is not None else now
        since = min(accepted[0] - 1e-9, first) if accepted else first
        current = self.rate_at(now) or math.inf
        if aimd.limited(now, since, current, cautious) is None or aimd.estimate is None:
            return None  # nothing learned: the host publishes restart()'s slow start
        self._pause(now, now + cooldown)
        self.source = AIMD
        return aimd.schedule()

    def restart(self, at: float) -> tuple[float, float]:
        """A new slow start from ``at`` when an epoch taught nothing: (rate, start)."""
        aimd = self.aimd
        rate = aimd.rate if aimd.rate > 0 else 0.5 / max(self.srtt, SLOW_START_RTT)
        aimd.start(at, rate)
        self.source = AIMD
        self.hold_until = max(self.hold_until, at)
        return rate, at

    def follow(self, now: float, schedule: Schedule) -> None:
        """Adopt a published climb (times on our clock)."""
        self.aimd.adopt(now, schedule)
        self.source = AIMD
        # 429s of requests sent before we follow it must not start another epoch.
        self.hold_until = max(self.hold_until, schedule.start, now + 2.0 * self.srtt)
        self.rate_at(now)

    # -- rate and burst -----------------------------------------------------------------------

    @staticmethod
    def _aimd_burst(rate: float) -> float:
        # Ten milliseconds of burst: a waiter woken late catches up instead of losing its
        # turn (with a burst of one, waking ~1 ms late cost ~12 % of 200/s in benchmarks).
        return max(_AIMD_MIN_BURST, rate * _AIMD_BURST)

    def _set_aimd(self) -> bool:
        rate = self.aimd.rate
        return self._set(rate, self._aimd_burst(rate))

    def _set(self, rate: float, burst: float) -> bool:
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        if self.burst_ceiling is not None:
            burst = min(burst, self.burst_ceiling)
        if rate == self.rate and burst == self.burst:
            return False
        self.rate, self.burst = rate, burst
        return True

    def __repr__(self) -> str:
        rate = "unlimited" if self.rate is None else f"{self.rate:.3g}/s"
        slow = self.source == AIMD and self.aimd.estimate is None
        return f"<RateController {rate} ({'slow start' if slow else self.source})>"
