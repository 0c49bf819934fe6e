"""The rate a shared budget learns from bare 429s: one schedule for every process.

The rules are the pure :class:`~sendkit_async._controller.RateController`'s (the same
object the in-memory limiter hosts, with ``shared=True``); ``SharedRate`` is only the
glue between it and Redis: server time against this process's clock (``offset``), the
schedule last followed, and the arguments of the scripts. No I/O here.

- The first process to see an accepted answer with no limit headers publishes its slow
  start (rate, start); every other process follows it (no slow start each).
- Every process counts its accepted answers into per-100-ms buckets in Redis.
- A bare 429 starts an epoch: the first process to claim it (atomically, in Redis) is
  its leader: it closes the shared gate once, feeds the accepted answers of every
  process to its controller, and publishes the new climb (estimate, start, length,
  trust). 429s of the other processes in the same epoch change nothing.
- Every process, including one started later, follows the published schedule, and its
  rate is the same function of that schedule and the time in every process.
"""

from __future__ import annotations

import math

from .._controller import AIMD, RateController, Schedule

__all__ = ["BUCKET_SECONDS", "Schedule", "SharedRate", "answer_times", "settle_time"]

BUCKET_SECONDS = 0.1
"""Accepted answers are counted in Redis per this many seconds of server time."""

SETTLE = 0.05
"""The least time an epoch's leader waits before it reads every process's counts."""
MAX_SETTLE = 0.5
"""The longest (a backend answering in seconds must not hold the decision that long)."""
PUSH = 0.01
"""What another process's background push of its counts may take."""


def settle_time(srtt: float, cooldown: float) -> float:
    """How long an epoch's leader waits before it reads every process's counts (0: it
    decides at once).

    The leader compares whole episodes: it waits for the answers to the requests sent
    before the 429 (a backend answers what a gateway admitted later than the gateway
    refuses; about a round trip ``srtt``, the slowest about twice that) and for every
    process to push them, within a quarter of the gate's ``cooldown`` (the new climb is
    published well before any process reopens; a gate shorter than ``4 * SETTLE``, a
    bare 429's, is decided at once). Behind a 50 ms backend, a slow start that took
    75-80 answers read 63-65 when the leader waited 50 ms and left its own out.
    """
    wait = min(MAX_SETTLE, max(SETTLE, 2.0 * srtt + PUSH), cooldown / 4)
    return wait if wait >= SETTLE else 0.0


class SharedRate:
    """One process's side of the schedule learned from 429s by every process of a budget."""

    __slots__ = ("_seen", "ctl", "offset")

    def __init__(self, ctl: RateController) -> None:
        self.ctl = ctl
        self.offset = 0.0  # Redis server time minus our clock
        self._seen: tuple[float, float] | None = None  # (kind, start) followed, server time

    def bucket(self, now: float) -> int:
        """The 100 ms bucket of server time that our ``now`` falls in (as the scripts
        count accepted answers)."""
        return math.floor((now + self.offset) / BUCKET_SECONDS)

    def args(self, now: float) -> list[str]:
        """ACQUIRE's 'rate and burst learned from bare 429s' and the 429 time (server
        time) of the climb they come from ('' = none)."""
        ctl = self.ctl
        rate = ctl.rate_at(now) if ctl.source == AIMD else None
        if rate is None:
            return ["", "", ""]
        seen = self._seen
        followed = repr(seen[1]) if seen is not None and seen[0] == 1.0 else ""
        return [repr(rate), repr(ctl.burst), followed]

    def take(self, now: float, climb: Schedule | None, start: tuple[float, float] | None) -> None:
        """Follow the schedule an ACQUIRE reply carried (server times), if it is new."""
        if climb is not None:
            seen = (1.0, climb.limited)
            if self._seen is None or seen > self._seen:
                self._seen = seen
                self.ctl.follow(now, climb.shifted(-self.offset))
        elif start is not None:
            seen = (0.0, start[1])
            if self._seen is None or seen > self._seen:
                self._seen = seen
                self.ctl.follow_start(now, start[0], start[1] - self.offset)

    def start_to_publish(self) -> tuple[float, float] | None:
        """The slow start this process began (server time), for the other processes."""
        started = self.ctl.slow_start()
        if started is None:
            return None
        return started[0], started[1] + self.offset

    def lead(
        self,
        now: float,
        cooldown: float,
        counts: dict[int, int],
        cautious: bool = True,
        lag: float = 0.0,
    ) -> list[str]:
        """An epoch's leader: SCHEDULE's arguments but for the epoch's end (server times):
        the new climb, or a new slow start when nothing could be learned. ``lag``: how
        long after their requests the answers came (see `answer_times`)."""
        ctl = self.ctl
        aimd = ctl.aimd
        times = answer_times(counts, self.offset, aimd.resumed, now, aimd.limited_at, lag)
        schedule = ctl.lead(now, cooldown, times, cautious)
        if schedule is not None:
            climb = schedule.shifted(self.offset)
            self._seen = (1.0, climb.limited)
            return [str(v) if isinstance(v, int) else repr(float(v)) for v in climb]
        started = ctl.restart(now + cooldown)
        self._seen = (0.0, started[1] + self.offset)
        return ["", repr(started[0]), repr(started[1] + self.offset)]


def answer_times(
    counts: dict[int, int],
    offset: float,
    resumed: float,
    now: float,
    closed: float = -math.inf,
    lag: float = 0.0,
) -> list[float]:
    """Times (on our clock) for the answers counted per 100 ms bucket of server time.

    Each bucket's answers are spread over the part of it when they can have come: after
    the gate reopened at ``resumed`` (nothing is accepted behind it) and by ``now`` (the
    429's own bucket is still running: spread over all of it, the answers after ``now``
    would be dropped, and a leader counted 89 of a window's 100). Answers that came
    while the gate was closed (from ``closed``, the last 429, to ``resumed``) answer
    requests sent before it closed, and count then: behind a backend slower than its
    gateway they came up to 75 ms late, and the second of a gate of one second no
    longer looked quiet enough to find the server full at the reopening.

    ``lag`` > 0: the leader waited for the answers to the requests sent by ``now``, which
    came up to about ``lag`` (a round trip) after them. Each answer is then dated ``lag``
    before it came, about when its request was sent, as one process dates its own: dated
    when they came and squeezed before ``now``, a drain of 58 answers in 0.38 s read
    107.8/s against nginx's 100 behind a 50 ms backend, and a third episode followed.
    (A leader that decides at once, ``lag`` 0, counts the answers that came by ``now``:
    those to requests sent a round trip earlier, at the same rate.)
    """
    times: list[float] = []
    last = now + lag
    after = math.nextafter(resumed, math.inf)  # (the episode since the reopening holds it)
    for index in sorted(counts):
        n = counts[index]
        begin = index * BUCKET_SECONDS - offset
        end = min(begin + BUCKET_SECONDS, last)
        if begin < resumed < end:
            begin = resumed
        begin = min(begin, end)
        for i in range(n):
            at = begin + (i + 0.5) * (end - begin) / n
            if closed < at < resumed:
                times.append(closed)
            elif at >= resumed:  # (sent after the gate reopened)
                times.append(max(at - lag, after))
            else:
                times.append(at - lag)
    return times
