"""The rate a shared budget learns from bare 429s: one learner for every process.

``SharedLearner`` hosts the same pure :class:`~sendkit_async._bucket.AdaptiveRate` as
the in-memory :class:`~sendkit_async.RateLimiter` and the same 429 cooldown rule
(:func:`~sendkit_async._overload.throttle_cooldown`); ``RedisRateLimiter`` feeds it
answers and Redis replies, and passes its rate to the shared token bucket. No I/O here:
times are this process's clock, and ``offset`` maps them to Redis server time.

- Every process counts its accepted answers into per-100-ms buckets in Redis.
- A bare 429 starts an epoch: the first process to claim it (atomically, in Redis) is
  its leader: it closes the shared gate once, feeds the accepted answers of every
  process to its learner, and publishes the new climb (estimate, start, length,
  trust). 429s of the other processes in the same epoch change nothing.
- Every process, including one started later, follows the published climb.
"""

from __future__ import annotations

import math

from .._bucket import AdaptiveRate
from .._learning import _AIMD_BURST, _AIMD_MIN_BURST, SLOW_START_RTT
from .._overload import throttle_cooldown

__all__ = ["BUCKET_SECONDS", "Schedule", "SharedLearner"]

BUCKET_SECONDS = 0.1
"""Accepted answers are counted in Redis per this many seconds of server time."""

Schedule = tuple[float, float, float, float, int, float]
"""A climb: (estimate, start, length, trust, last episode's accepted count, its seconds)."""


class SharedLearner:
    """One process's view of the rate learned from 429s by every process of a budget."""

    __slots__ = (
        "_episodes", "_first_sent", "_hold", "_last_wait", "_seen", "_srtt", "learner",
        "offset",
    )  # fmt: skip

    def __init__(self, ceiling: float | None = None) -> None:
        self.learner = AdaptiveRate(ceiling)
        self.offset = 0.0  # Redis server time minus our clock
        self._first_sent: float | None = None
        self._srtt = 0.0
        self._last_wait = -math.inf
        self._hold = -math.inf  # our clock: no new epoch from our 429s before this
        self._episodes = 0
        self._seen: float | None = None  # start (server time) of the climb we follow

    # -- what the bucket uses -------------------------------------------------------------

    def rate(self) -> float | None:
        """The send rate to pass to the shared bucket; None before anything was learned."""
        rate = self.learner.rate
        return rate if rate > 0 else None

    def burst(self) -> float:
        rate = self.learner.rate
        return max(_AIMD_MIN_BURST, rate * _AIMD_BURST)  # as the in-memory limiter's

    # -- events from the host -------------------------------------------------------------

    def sent(self, now: float) -> None:
        if self._first_sent is None:
            self._first_sent = now

    def waited(self, now: float) -> None:
        """A request waited for a shared token: the rate is what limits us."""
        self._last_wait = now

    def answered(self, rtt: float) -> None:
        self._srtt = 0.8 * self._srtt + 0.2 * rtt if self._srtt else rtt

    def accepted(self, now: float) -> None:
        """An answer with no rate-limit headers that was not a 429 (nor a 5xx)."""
        self._episodes = 0
        learner = self.learner
        if learner.rate <= 0:
            # The first answer: go on at its pace, as the in-memory limiter does.
            sent = self._first_sent if self._first_sent is not None else now
            learner.start(now, 1.0 / max(now - sent, SLOW_START_RTT))
            return
        if now < self._hold:
            return
        rate = learner.rate
        saturated = now - self._last_wait <= 2.0 / rate + 2.0 * self._srtt
        learner.grow(now, saturated, self._srtt)

    def throttled(
        self, now: float, retry_after: float | None, reset_after: float | None
    ) -> float | None:
        """A 429 with no limit headers: the cooldown to claim a new epoch with, or None
        when an epoch we know of already covers it."""
        if now < self._hold:
            return None
        self._episodes += 1
        self._hold = now + max(2.0 * self._srtt, 0.05)  # until Redis has answered
        return throttle_cooldown(self._episodes, self.rate(), retry_after, reset_after)

    # -- an epoch's leader ----------------------------------------------------------------

    def lead(self, now: float, cooldown: float, counts: dict[int, int]) -> Schedule | None:
        """Decide the new rate from every process's accepted answers; the climb to publish
        (times in server time), or None if nothing can be learned yet."""
        times: list[float] = []
        for index in sorted(counts):
            n = counts[index]
            start = index * BUCKET_SECONDS - self.offset
            times.extend(start + (i + 0.5) * BUCKET_SECONDS / n for i in range(n))
        learner = self.learner
        learner.load([t for t in times if t <= now])
        since = self._first_sent if self._first_sent is not None else now
        current = learner.rate if learner.rate > 0 else math.inf
        if learner.limited(now, since, current) is None:
            return None
        learner.pause(now + cooldown, cooldown, self._srtt)
        self._hold = now + cooldown + 2.0 * self._srtt
        schedule = learner.schedule()
        if schedule is None:
            return None
        estimate, start, climb, trust, count, seconds = schedule
        self._seen = start + self.offset
        return (estimate, start + self.offset, climb, trust, count, seconds)

    # -- everyone -------------------------------------------------------------------------

    def follow(self, now: float, schedule: Schedule) -> None:
        """Adopt the published climb (server times) if it is one we do not follow yet."""
        start = schedule[1]
        if self._seen is not None and start <= self._seen:
            return
        self._seen = start
        local = (schedule[0], start - self.offset, *schedule[2:])
        self.learner.adopt(now, local)
        self._hold = max(self._hold, start - self.offset)
