"""The rate learned from 429s alone, for servers that announce no limit.

`AdaptiveRate` is a plain state machine (no clock: callers pass ``now``), hosted by the
`RateController` of both rate limiters; `Climb` is what another process needs to follow
its climb.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import NamedTuple

from ._evidence import MIN_WINDOW as _MIN_WINDOW
from ._evidence import SAME_COUNT as _SAME_COUNT
from ._evidence import WINDOW as _WINDOW
from ._evidence import from_full, held, probe_limit, reach_back, since_full

__all__ = ["AdaptiveRate", "Climb"]

# AdaptiveRate (see its docstring):
_BURST_GUESS = 0.1  # a server's burst, in seconds of its rate, until shown to be larger
_MAX_BURST_GUESS = 1.6
_DOUBLING = 0.05  # slow start: the rate doubles per this much saturated sending (seconds)
_BELOW = 0.95  # after a 429: this fraction of the estimated rate
_BETA = 0.7  # past the slow start, one 429 episode's estimate is at least this x the rate
_PLATEAU = 0.98  # the climb levels off at this fraction of the estimate...
_EXACT_PLATEAU = 0.97  # ...or of a limit known exactly (room for pacing and jitter)...
_HOLD = 2.0  # ...for this many climb times before probing beyond it, when the
_TRUSTED = 0.6  # estimate rests at least this much on measured time, not assumed burst
_CLIMB = 10.0  # back at the estimate after this many times the 429's cooldown...
_MIN_CLIMB = 1.0  # ...times the trust in the estimate, but never sooner (seconds)
_CLIMB_RTTS = 20.0  # ...nor in fewer round trips
_RAMP_TRUST = 0.5  # at most this trust in the slow start's first estimate (bare 429s)
_READ = 0.55  # the trust in a count read from a full window (see _full_window)
_MIN_RATE = 0.05  # requests/s


class Climb(NamedTuple):
    """What another process needs to follow an `AdaptiveRate`'s climb and to learn on
    from it as that learner would (times on one clock)."""

    estimate: float
    start: float  # where the climb's cubic starts
    length: float  # seconds from its start back to the estimate
    trust: float  # share of the estimate's window that is not assumed burst
    full_count: int  # accepted from a full server in the last episode (0: none)...
    seconds: float  # ...in this many seconds
    limited: float  # when the last 429 came
    resumed: float  # when its gate reopened

    def shifted(self, by: float) -> Climb:
        """The same climb with every time moved by ``by`` seconds (to another clock)."""
        return self._replace(
            start=self.start + by, limited=self.limited + by, resumed=self.resumed + by
        )


class AdaptiveRate:
    """A send rate learned from 429s alone, for servers that announce no limit.

    Slow start: the rate doubles every ``_DOUBLING`` seconds (or round trip, if longer)
    of saturated sending until a 429, which means the server's bucket ran dry. A token
    bucket of rate R and burst B <= b * R accepts at most B + R * age requests in any
    window of ``age`` seconds, so ``accepted / (age + b)`` is a lower bound on R, and so
    is the accepted rate since the previous 429 (the bucket was empty then). The
    estimate is the largest such bound over the windows since the previous 429 (within a
    second of it, over those of the last second too), with b = ``_BURST_GUESS`` (doubled
    whenever a 429 arrives below the last estimate a second or more after the previous
    one: the burst was larger than assumed). Behind bare 429s, a probe past the estimate
    refused after a second that took more raises it to that count. A sliding one-second
    window shows itself by accepting the same count twice from a full start, or in the
    second before two probes past the plateau in a row: that count per second is then
    the estimate, known exactly (`from_full`, `probe_limit`); a 429 below a limit so
    known, after a second that took about that much, is a burst over it. Two episodes
    that each began with a token bucket full bound its rate from above, whatever its
    burst (`from_full`): the estimate is then at most that, and holds its plateau. Past
    the slow start's first 429, a reopening refused with nothing taken shows a window
    full at the last second's count (:meth:`_full_window`). The rate drops to ``_BELOW``
    times the estimate and climbs back like TCP CUBIC to a plateau at ``_PLATEAU`` of
    it, holds there for ``_HOLD`` climbs when the estimate rests on measured time (a
    steady run has no second episode), then probes faster past it (the limit may have
    grown). The climb takes ``_CLIMB`` times the cooldown that the 429 cost, so probing
    keeps a small share of the time behind a closed gate; less when the estimate rests
    mostly on the assumed burst (a short window) or, behind bare 429s, is the slow
    start's first (its windows include the ramp), since it may then be far too low: the
    climb then goes straight past it instead of holding a plateau below it.
    """

    __slots__ = (
        "_burst", "_climb", "_from", "_grown_at", "_last", "_learned", "_limited_at", "_oks",
        "_resumed", "_trust", "ceiling", "estimate", "rate", "start_rate", "started",
    )  # fmt: skip

    def __init__(self, ceiling: float | None = None) -> None:
        self.ceiling = ceiling  # the rate never exceeds it
        self.rate = 0.0  # requests/s; 0.0 until started or limited
        self.estimate: float | None = None  # the server's rate; None while in slow start
        self._oks: deque[float] = deque(maxlen=4096)  # accepted requests' send times, sorted
        self._burst = _BURST_GUESS
        self._grown_at = 0.0
        self._limited_at = -math.inf
        self._from = 0.0  # when the climb began (pushed later by time not saturated)
        self._resumed = -math.inf  # when the last 429's gate opened
        self._learned = True  # the last 429 gave a new estimate (see pause())
        self._last: tuple[int, float] | None = None  # (accepted, seconds) from a full server
        self._climb = 1.0  # seconds from the climb's start back to the estimate
        self._trust = 1.0  # share of the last estimate's window that is not assumed burst
        self.started = -math.inf  # when the slow start began...
        self.start_rate = 0.0  # ...and at what rate

    def accepted(self, sent: float) -> None:
        """Count one accepted answer (any status but 429 and 5xx) to a request sent at
        ``sent``. Answers may come out of order; they are counted in order of sending."""
        oks = self._oks
        if not oks or sent >= oks[-1]:
            oks.append(sent)
            return
        if len(oks) == oks.maxlen:
            if sent <= oks[0]:
                return
            oks.popleft()
        oks.insert(bisect_right(oks, sent), sent)

    def _upto(self, now: float) -> Sequence[float]:
        """The accepted requests sent at or before ``now``."""
        oks = self._oks
        if not oks or oks[-1] <= now:
            return oks
        return list(islice(oks, bisect_right(oks, now)))

    def start(self, now: float, rate: float) -> None:
        """(Re)start the slow start at ``rate``."""
        self.estimate, self._grown_at = None, now
        self.started, self.start_rate = now, rate
        self._set(rate)

    def grow(self, now: float, saturated: bool, rtt: float = 0.0) -> float:
        """After a success: the new rate (at most doubled per ``_DOUBLING`` or per ``rtt``).

        Only saturated time counts (requests were waiting for tokens): when demand, not
        the rate, is the bottleneck, a success proves nothing about a higher rate.
        """
        dt, self._grown_at = now - self._grown_at, now
        if dt <= 0 or self.rate <= 0:
            return self.rate
        if not saturated:
            self._from += dt
            return self.rate
        fastest = self.rate * 2.0 ** min(dt / max(_DOUBLING, rtt), 1.0)
        if self.estimate is None:
            self._set(fastest)
        else:
            self._set(min(fastest, max(self.rate, self._target(now, self.estimate))))
        return self.rate

    def limited(
        self,
        now: float,
        since: float,
        current: float,
        cautious: bool = True,
        closed: float | None = None,
    ) -> float | None:
        """The first 429 of an episode at send rate ``current``: the new, lower rate.

        ``now``: when the refused request was sent; answers count by when theirs were,
        and those before ``since`` (the first request) do not. ``closed``: when the gate
        closed (default ``now``): the episode's drain counts every answer sent before,
        as the server may have taken them first. None when unlimited
        so far and nothing was accepted. ``cautious``: another episode is cheap (its
        pause is ours, not a server's Retry-After), so past the slow start one episode
        cuts the rate by at most ``1 - _BETA`` (unless a reopening refused with nothing
        taken shows a full window: :meth:`_full_window`). Call :meth:`pause` next.
        """
        previous, self._limited_at = self._limited_at, now
        oks = self._upto(now)  # (answers to requests sent after the refused one wait)
        start = max(since, previous)
        self._learned = True
        if not oks or oks[-1] <= max(start, self._resumed):
            # Nothing accepted since the last 429's gate reopened (answers before that
            # were to requests sent before that 429: they show nothing new).
            if cautious and self.estimate is not None and self._full_window(now, previous, oks):
                return self.rate
            if self.estimate is not None:
                # The server takes nothing for now (an outage of 429s): the cooldown
                # helps; the climb goes on as it was, so full speed is back soon after.
                self._learned = False
                return self.rate
            if not math.isfinite(current):
                return None
            self.start(now, 0.5 * current)
            return self.rate
        if self.estimate is not None and current < self.estimate:
            took = held(oks, now)
            if self._trust >= 1.0 and took >= max(_MIN_WINDOW, 0.95 * self.estimate * _WINDOW):
                # A window's limit known exactly (two equal counts, or a plateau held), and
                # refused below it after a second that took about that much: a burst over
                # it (timing, a reopening's tokens) did it, not a lower limit. (Taken as a
                # larger burst, it sank the estimate to 83 % for good.) An estimate from
                # accepted time may be a bucket's rate plus part of its burst: not so.
                self.estimate = min(self.estimate, took / _WINDOW)
                self._set(_BELOW * self.estimate)
                return self.rate
            if now - previous >= _WINDOW or self._trust < _TRUSTED:
                # The burst was larger than assumed. (Not so within a second of the last
                # 429 behind an estimate from measured time: a window that counts refused
                # requests still holds that episode's. Behind the ramp's, it may well be.)
                self._burst = min(2.0 * self._burst, _MAX_BURST_GUESS)
        best = trust = 0.0
        count = 0
        for at in reversed(oks):
            if at <= start:
                break
            count += 1
            if count / (now - at + self._burst) > best:
                best = count / (now - at + self._burst)
                trust = (now - at) / (now - at + self._burst)
        if previous == start and count / (now - start) > best:
            # The bucket was empty at the previous 429 and refilled by at most the rate
            # times the pause since: the accepted rate since that 429 is a bound with no
            # burst to assume. It rests on sending time only as far as the pause was short.
            best = count / (now - start)
            trust = max(0.0, now - max(start, self._resumed)) / (now - start)
        if self.estimate is not None and start > now - _WINDOW and self._trust >= _TRUSTED:
            # Within a second of the last 429 (behind an estimate from measured time; the
            # ramp's windows hold a bucket's burst) the windows since it are too short to show
            # anything: a window that counts refused requests still holds the last
            # episode's and refuses again as soon as the gate reopens. Windows reaching
            # back past that 429 bound a bucket's rate all the same: a run of such 429s
            # must not cut below what the last second took (six sank 200 to 19 against a
            # limit of 100).
            best, trust = reach_back(oks, now, start, self._burst, best, trust)
        if cautious and self.estimate is not None and current > self.estimate:
            took = held(oks, now)
            # (Past a limit known exactly, a count within _SAME_COUNT of it is jitter.)
            exact = (1.0 + _SAME_COUNT) * self.estimate if self._trust >= 1.0 else 0.0
            if took >= _MIN_WINDOW and took / _WINDOW > max(best, exact):
                # Refused while probing past the estimate, after a second that took more:
                # the server sustains that much. (A window's limit bounds the count; a
                # bucket probed slowly takes its rate and a little of its burst, and one
                # more cheap episode corrects that. The bound from accepted time, which
                # assumes the burst, held a window of 100 at 88 for ten seconds.)
                best, trust = took / _WINDOW, max(trust, _TRUSTED)
        last = self._last
        closed = now if closed is None else max(closed, now)
        drain = since_full(self._upto(closed), closed, start, self._resumed, previous < since)
        full, self._last = from_full(drain, last), drain
        fitted = full[0] if full is not None and full[1] else None
        if fitted is not None:
            best, trust = fitted, 1.0
        elif (
            full is not None
            and previous == start
            and full[0] <= _BELOW * (self.estimate or 0.0)  # sent above it since then
        ):
            # Two drains of a bucket from full bound its rate from above, with no burst
            # to assume: the bound from accepted time read a bucket of 100/s with a burst
            # of 50 as 166/s, and the next episode came at once. (Not below the bound
            # from the previous 429, when it was empty: a bucket that had not refilled
            # in the pause drains less, and then that bound is its rate.)
            best = max(min(best, full[0]), count / (now - start))
            trust = max(trust, _TRUSTED)
        elif self.estimate is not None and current > self.estimate and self._trust >= _TRUSTED:
            # Throttled while probing past a sound estimate, whose plateau went without a
            # 429: the estimate stands, and so does the plateau below it. (The accepted
            # rate since the last 429 only bounds it by what we chose to send; the
            # plateau itself, 98 % of it, would ratchet it down 2 % per probe.)
            # Two such probes in a row may show a window's limit (`probe_limit`);
            # not behind a Retry-After, where a wrong guess costs the server's seconds.
            probed = None
            if cautious:
                took = held(oks, now)
                self._last = (took, -_WINDOW)  # a probe's count (see from_full)
                probed = probe_limit(took, last)
            sustained = max(self.estimate, probed or 0.0)
            if sustained > best or probed is not None:
                best, trust = sustained, 1.0
        elif cautious and self.estimate is not None and best < _BETA * current:
            # One episode past the slow start cuts the rate by at most CUBIC's 30 %: the
            # accepted rate since the last 429 bounds a token bucket's rate, but not that
            # of a window that counts refused requests too (they used up its room), and
            # one such episode must not sink the run to a fraction of the limit. (With a
            # Retry-After each episode costs seconds: the estimate is taken as it is.)
            best = _BETA * current
        if cautious and self.estimate is None and self.start_rate > 0 and fitted is None:
            # The slow start's first 429: its windows include the ramp, sent below the
            # limit, so the bound is loose however long they are. Search past it.
            trust = min(trust, _RAMP_TRUST)
        self.estimate = min(best, current)
        self._set(_BELOW * self.estimate)
        self._trust = trust
        return self.rate

    def _full_window(self, now: float, previous: float, oks: Sequence[float]) -> bool:
        """Refused with nothing taken since the gate reopened, behind an estimate that
        rests on the slow start's ramp or on an assumed burst: no bucket that sustains
        the count of the last second (a token since the last 429, at that rate) refuses
        everything, but a window full at that count does (the slow start's 100 in a
        quarter second read 300 a second, and 429s went on for three seconds). Take that
        count, with trust ``_READ``: still not measured time, so the climb goes straight
        past it (an outage, or 200s slower than 429s, can look the same), and not read
        again as that second's answers leave the last second. True when taken."""
        took = held(oks, now)
        if not (
            self._trust < _READ
            and took >= _MIN_WINDOW
            and took / _WINDOW < (self.estimate or 0.0)
            and (now - previous) * took / _WINDOW >= 1.0
        ):
            return False
        self.estimate, self._trust = took / _WINDOW, _READ
        self._set(_BELOW * self.estimate)
        return True

    def pause(self, until: float, cooldown: float, rtt: float) -> None:
        """The 429 closed the gate for ``cooldown`` seconds, until ``until``: the climb
        starts then. It is never faster than ``_CLIMB_RTTS`` round trips ``rtt``:
        feedback comes that late. After a 429 that taught nothing (nothing was accepted
        since the last), the climb is left as it was."""
        # (Just before: a request sent as the gate opens is sent after it reopened.)
        self._resumed = math.nextafter(until, -math.inf)
        if self._learned:
            self._from = self._grown_at = until
            self._climb = max(_MIN_CLIMB, _CLIMB * cooldown * self._trust, _CLIMB_RTTS * rtt)

    def _target(self, now: float, estimate: float) -> float:
        """Where the climb after the last 429 stands at ``now``."""
        x = (now - self._from) / self._climb - 1.0
        if self._trust < _TRUSTED:  # likely too low: back to it, then straight past it
            return estimate * (1.0 + (1.0 - _BELOW) * x * x * x)
        if x > 0.0:
            x = max(0.0, x - _HOLD)  # a sound estimate: hold the plateau a while
        # Up from _BELOW to the plateau, then (past the hold) beyond as fast as before.
        plateau = _EXACT_PLATEAU if self._trust >= 1.0 else _PLATEAU
        pace = (plateau - _BELOW) if x < 0.0 else (1.0 - _BELOW)
        return estimate * (plateau + pace * x * x * x)

    # -- sharing (RedisRateLimiter): one learner's state, adopted by the others ----------

    def at(self, now: float) -> float:
        """The rate at ``now`` as a function of the schedule alone, the same in every
        process that follows it: the slow start doubles every ``_DOUBLING`` seconds, the
        climb is its cubic (no growth held back for unsaturated time); 0.0 before a start.
        """
        if self.estimate is not None:
            self._set(self._target(max(now, self._from), self.estimate))
        elif self.start_rate > 0:
            doublings = max(0.0, now - self.started) / _DOUBLING
            self._set(self.start_rate * 2.0 ** min(doublings, 40.0))
        return self.rate

    def schedule(self) -> Climb | None:
        """This climb, for another process to follow (times on this object's clock);
        None before the first 429."""
        if self.estimate is None:
            return None
        count, seconds = self._last if self._last is not None else (0, 0.0)
        return Climb(
            self.estimate, self._from, self._climb, self._trust, count, seconds,
            self._limited_at, self._resumed,
        )  # fmt: skip

    def adopt(self, now: float, climb: Climb) -> None:
        """Follow ``climb`` (another learner's, its times on our clock) from ``now``: the
        next 429 is then learned from as that learner would have."""
        if not (climb.estimate > 0 and climb.length > 0):
            return
        self.estimate, self._climb, self._trust = climb.estimate, climb.length, climb.trust
        self._from = climb.start
        self._limited_at, self._resumed = climb.limited, climb.resumed
        self._grown_at = now
        self._last = (climb.full_count, climb.seconds) if climb.full_count > 0 else None
        self._set(self._target(max(now, climb.start), climb.estimate))

    @property
    def resumed(self) -> float:
        """When the last 429's gate reopened (-inf before the first)."""
        return self._resumed

    @property
    def limited_at(self) -> float:
        """When the last 429 came (-inf before the first)."""
        return self._limited_at

    def load(self, accepted: list[float]) -> None:
        """Replace the accepted answers' times (e.g. with those of every process)."""
        self._oks.clear()
        self._oks.extend(accepted[-(self._oks.maxlen or len(accepted)) :])

    def _set(self, rate: float) -> None:
        ceiling = math.inf if self.ceiling is None else self.ceiling
        self.rate = min(ceiling, max(_MIN_RATE, rate))
