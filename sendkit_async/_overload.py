"""Pure decisions about faults and overload: a retry budget, a fault circuit, 429 cooldowns.

Nothing here awaits, sleeps or reads a clock: callers pass ``now``. The hosts are
:class:`~sendkit_async._guard.OverloadGuard` (one per client, for faults and the retry
budget) and the two rate limiters (for the 429 cooldown rule, which they share).

Throttles and faults are different signals (botocore, gRPC, Google SRE):

- a **throttle** (429) says "you, slower": the rate limiters lower the shared rate and
  close the shared gate for :func:`throttle_cooldown`;
- a **fault** (5xx, timeout, reset, refused connection) says "this attempt failed": only
  the failed request waits (its own backoff, or the server's Retry-After if longer) and
  the others go on. Faults feed :class:`FaultCircuit`, which holds every request and
  lets a trickle of probes through only when most recent attempts fail (an outage),
  and :class:`RetryBudget`, which caps retries at a share of requests (a retry storm).
"""

from __future__ import annotations

import math

__all__ = [
    "MAX_THROTTLE_COOLDOWN",
    "FaultCircuit",
    "RetryBudget",
    "throttle_cooldown",
]

# -- 429 cooldowns ----------------------------------------------------------------------

BARE_COOLDOWN = 0.5
"""First cooldown after a hint-less 429 while no rate is known (seconds)."""
PACED_COOLDOWN = 0.05
"""Least cooldown after a 429 with a rate known: a few token intervals, at least this."""
ESCALATION = 1.5
"""Each further 429 episode with nothing accepted between multiplies our cooldown by
this: a window that counts refused requests frees room only as its accepted requests age
out, and doubling would overshoot that moment by up to the whole window (in virtual time
against a charging one-second window, 2,000 ids: 1.10 x ideal with 2, 1.07 with 1.5)."""
MAX_THROTTLE_COOLDOWN = 1.0
"""Escalation cap of the cooldowns we choose: while a server answers nothing but 429s,
one probe goes per this many seconds at most, and full speed is back this soon after."""


def throttle_cooldown(
    episodes: int,
    rate: float | None,
    retry_after: float | None,
    reset_after: float | None,
) -> float:
    """How long a 429 closes the shared gate: the one rule both rate limiters follow.

    ``episodes`` counts 429 episodes in a row with no accepted answer between them (1 for
    the first). A Retry-After is honoured as asked, but never below ``PACED_COOLDOWN``
    times ``ESCALATION`` per further episode (up to ``MAX_THROTTLE_COOLDOWN``):
    ``Retry-After: 0`` from a server that answers nothing but 429s is not "retry now in
    a tight loop". Without one, our own choice is a few token intervals (at least
    ``PACED_COOLDOWN``) with a rate known, else ``BARE_COOLDOWN``, times ``ESCALATION``
    per further episode up to ``MAX_THROTTLE_COOLDOWN``, and capped by an announced
    reset (a fixed window's reset is exact). Non-finite or negative inputs count as absent.
    """
    growth = ESCALATION ** min(max(episodes, 1) - 1, 32)
    if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
        return max(retry_after, min(MAX_THROTTLE_COOLDOWN, PACED_COOLDOWN * growth))
    floor = max(PACED_COOLDOWN, 4.0 / rate) if rate and rate > 0 else BARE_COOLDOWN
    floor = min(MAX_THROTTLE_COOLDOWN, floor * growth)
    if reset_after is not None and math.isfinite(reset_after) and reset_after > 0:
        floor = min(floor, max(PACED_COOLDOWN, reset_after))
    return floor


# -- retry budget -----------------------------------------------------------------------


class RetryBudget:
    """Retries capped at a share of requests plus a small floor per second (Finagle, gRPC A6).

    Every first attempt deposits ``ratio`` of a token and time deposits ``per_second``
    tokens a second, up to ``cap``; every retry withdraws one. At 5 % faults the budget
    only grows; in a storm it runs dry and retries wait for tokens, so they go at most at
    ``per_second`` plus ``ratio`` of the new requests.
    """

    __slots__ = ("balance", "cap", "per_second", "ratio", "updated")

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        per_second: float = 5.0,
        cap: float = 50.0,
        now: float = 0.0,
    ) -> None:
        if not (ratio >= 0 and per_second > 0 and cap >= 1):
            raise ValueError("ratio must be >= 0, per_second > 0 and cap >= 1")
        self.ratio, self.per_second, self.cap = ratio, per_second, cap
        self.balance = min(cap, 10.0)  # a few retries are allowed from the start
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.balance = min(self.cap, self.balance + (now - self.updated) * self.per_second)
            self.updated = now

    def deposit(self) -> None:
        """A first attempt is being sent."""
        self.balance = min(self.cap, self.balance + self.ratio)

    def withdraw(self, now: float) -> float:
        """Take one retry token and return 0.0, or return the seconds until one accrues."""
        self._refill(now)
        if self.balance >= 1.0:
            self.balance -= 1.0
            return 0.0
        return (1.0 - self.balance) / self.per_second

    def __repr__(self) -> str:
        return f"<RetryBudget balance={self.balance:.2f}/{self.cap:g}>"


# -- fault circuit ----------------------------------------------------------------------

CLOSED, OPEN, PROBING = "closed", "open", "probing"
_PROBE_PATIENCE = 4.0  # a probe unanswered for this many max intervals: send another


class FaultCircuit:
    """Detects an outage from attempts' outcomes; then only probes go until one succeeds.

    Outcomes are counted in a sliding window of ``window`` seconds (``buckets`` slices).
    The circuit opens when the window holds at least ``min_requests`` outcomes and more
    than half of them are faults: Google SRE's adaptive throttling condition
    ``requests > K * accepts`` with K = 2, which 5 % (or even 40 %) of faults never
    meets; or after ``max_streak`` faults in a row, however slowly they came. While
    open, one probe may go every ``probe_interval`` seconds (doubling per
    failed probe up to ``max_probe_interval``); the first probe that is answered closes
    the circuit and clears the window, so full speed is back one round trip later.
    A 429 counts as an answer: the server is up, and throttles are the rate limiter's.
    """

    __slots__ = (
        "_accepts", "_bucket_len", "_counts", "_head", "_interval", "_requests", "_streak",
        "max_probe_interval", "max_streak", "min_requests", "probe_at", "probe_interval",
        "state",
    )  # fmt: skip

    def __init__(
        self,
        *,
        window: float = 1.0,
        buckets: int = 10,
        min_requests: int = 10,
        max_streak: int = 5,
        probe_interval: float = 0.1,
        max_probe_interval: float = 0.5,
    ) -> None:
        if not (window > 0 and buckets >= 1 and min_requests >= 1):
            raise ValueError("window must be > 0, buckets >= 1 and min_requests >= 1")
        if not (0 < probe_interval <= max_probe_interval):
            raise ValueError("need 0 < probe_interval <= max_probe_interval")
        self.min_requests = min_requests
        self.max_streak = max_streak
        self._streak = 0  # faults in a row, however slowly they came
        self.probe_interval = probe_interval
        self.max_probe_interval = max_probe_interval
        self.state = CLOSED
        self.probe_at = -math.inf  # while open: when the next probe may go
        self._bucket_len = window / buckets
        self._counts = [[0, 0] for _ in range(buckets)]  # [requests, accepts] per slice
        self._head = -1  # index (time // bucket_len) of the newest slice
        self._requests = self._accepts = 0
        self._interval = probe_interval

    # -- outcomes -----------------------------------------------------------------------

    def record(self, now: float, ok: bool, probe: bool = False) -> None:
        """Count one attempt's outcome (``ok``: any answer but a 5xx); ``probe``: it was one."""
        if probe:
            if ok:
                self._close()
            else:
                self.state = OPEN
                self._interval = min(self.max_probe_interval, 2.0 * self._interval)
                self.probe_at = now + self._interval
            return
        if self.state != CLOSED:
            if ok:
                self._close()  # an answer to a request sent before the outage was seen
            return
        if ok:
            self.accepted(now)
            return
        self._advance(now)
        self._counts[self._head % len(self._counts)][0] += 1
        self._requests += 1
        self._streak += 1
        if self._streak >= self.max_streak or (
            self._requests >= self.min_requests and self._requests > 2 * self._accepts
        ):
            self.state = OPEN
            self._interval = self.probe_interval
            self.probe_at = now + self._interval

    def accepted(self, now: float) -> None:
        """An answer while closed (what ``record(now, ok=True)`` does then, called directly
        for nearly every answer)."""
        if int(now // self._bucket_len) != self._head:
            self._advance(now)
        slot = self._counts[self._head % len(self._counts)]
        slot[0] += 1
        slot[1] += 1
        self._requests += 1
        self._accepts += 1
        self._streak = 0

    def _close(self) -> None:
        self.state = CLOSED
        self.probe_at = -math.inf
        for slot in self._counts:
            slot[0] = slot[1] = 0
        self._requests = self._accepts = self._streak = 0

    def _advance(self, now: float) -> None:
        head = int(now // self._bucket_len)
        if head == self._head:
            return
        stale = min(len(self._counts), max(0, head - self._head))
        for i in range(1, stale + 1):
            slot = self._counts[(self._head + i) % len(self._counts)]
            self._requests -= slot[0]
            self._accepts -= slot[1]
            slot[0] = slot[1] = 0
        self._head = head

    # -- admission ----------------------------------------------------------------------

    def admit(self, now: float) -> float | None:
        """Whether an attempt may go now.

        Returns 0.0 (go), a positive number of seconds (ask again then, or sooner if the
        state changes), or None (go as this open circuit's one probe: report its outcome
        with ``probe=True``). While a probe is out, others wait for its answer, or
        until it has been out for a few probe intervals.
        """
        if self.state == CLOSED:
            return 0.0
        if now >= self.probe_at:
            # The next probe is due (or the last one has gone unanswered for too long).
            self.state = PROBING
            self.probe_at = now + _PROBE_PATIENCE * self.max_probe_interval
            return None
        return self.probe_at - now

    def probe_lost(self, now: float) -> None:
        """The probe was never answered (cancelled before sending): another may go now."""
        if self.state == PROBING:
            self.state = OPEN
            self.probe_at = now

    def __repr__(self) -> str:
        return (
            f"<FaultCircuit {self.state} window={self._requests} requests/{self._accepts} accepted>"
        )
