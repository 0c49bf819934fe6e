"""What the times of accepted answers show about a server that announces no limit.

Pure functions over those times (oldest first), for `~sendkit_async._adaptive.AdaptiveRate`:
the count of the last second, the bounds that windows reaching back give a token bucket's
rate, and the signatures of a sliding window's limit and of a bucket's rate in two
episodes that each began with the server full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["from_full", "held", "probe_limit", "reach_back", "since_full"]

REFILLED = 0.9  # this long with nothing accepted refills a one-second window (seconds)
SAME_COUNT = 0.05  # two episodes accepting counts this close: a sliding-window limit...
WINDOW = 1.0  # ...of that many requests per this many seconds, when there are at
MIN_WINDOW = 50  # least this many (a token bucket's burst can look the same when small)
MIN_FIT = 10  # two drains of a bucket this many accepted apart show its rate

Drain = tuple[int, float]
"""(accepted, seconds) of one episode; seconds < 0: a probe's count of the last second."""


def held(oks: Sequence[float], now: float) -> int:
    """Answers accepted in the last ``WINDOW`` seconds."""
    count = 0
    for at in reversed(oks):
        if at <= now - WINDOW:
            break
        count += 1
    return count


def reach_back(
    oks: Sequence[float], now: float, start: float, burst: float, best: float, trust: float
) -> tuple[float, float]:
    """``(best, trust)`` raised by the windows of the last ``WINDOW`` seconds that begin
    at or before ``start``: ``accepted / (age + burst)`` bounds a bucket's rate over any
    window, whatever 429s came within it."""
    for count, at in enumerate(reversed(oks), 1):
        if at <= now - WINDOW:
            break
        if at <= start and count / (now - at + burst) > best:
            best = count / (now - at + burst)
            trust = (now - at) / (now - at + burst)
    return best, trust


def probe_limit(count: int, last: Drain | None) -> float | None:
    """A sliding window's limit, when two probes past the plateau in a row show one.

    A window of L requests per second refuses a probe once the last second holds L (a
    steady plateau refused nothing before it): the count accepted in the second before
    the 429, ``count``, is then L, the same every time. (A token bucket's count there is
    its rate plus what the probe drained of its burst, which varies with the probe.)
    """
    if last is None or last[1] >= 0 or count < MIN_WINDOW:
        return None
    if abs(count - last[0]) <= SAME_COUNT * max(count, last[0]):
        return min(count, last[0]) / WINDOW
    return None


def since_full(
    oks: Sequence[float], now: float, start: float, resumed: float, first: bool
) -> Drain | None:
    """This episode's drain, if the server was full when it began: at the run's start
    (``first``), or when the gate reopened at ``resumed`` after ``REFILLED`` seconds
    with nothing accepted, however many 429s came meanwhile. Else None."""
    begin = max(start, resumed)
    count = 0
    quiet = math.inf  # seconds from the last answer accepted before ``begin`` to it
    for at in reversed(oks):
        if at <= begin:
            quiet = begin - at
            break
        count += 1
    if first or (resumed > start and quiet >= REFILLED):
        return count, now - begin
    return None


def from_full(drain: Drain | None, last: Drain | None) -> tuple[float, bool] | None:
    """A sliding window's limit (``(limit, True)``) or a bound on a token bucket's rate
    (``(rate, False)``), when this drain and the last one show one.

    From a full server, a limit per sliding one-second window (which may count refused
    requests too) accepts the same count every time until it refuses, whatever the send
    rate: that count is its limit per second, exactly, where the estimates from accepted
    time can only bound it. (A token bucket sent far above its rate also accepts about
    its burst each time: a small count is not taken for a window.) A token bucket of rate
    R and burst B, sent above R from full, accepts B + R * seconds instead: two such
    drains of different lengths bound R from above, whatever B (counts at least
    ``MIN_FIT`` apart).
    """
    if drain is None or last is None or drain[0] == 0 or last[1] < 0:
        return None
    (count, seconds), (count1, seconds1) = drain, last
    if max(seconds, seconds1) > WINDOW:
        return None
    if abs(count - count1) <= SAME_COUNT * max(count, count1) and count >= MIN_WINDOW:
        return min(count, count1) / WINDOW, True
    if count - count1 >= MIN_FIT and seconds > seconds1:
        # At most: each count may have lost up to one request to rounding.
        return (count - count1 + 1) / (seconds - seconds1), False
    return None
