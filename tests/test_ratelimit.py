"""Tests for the client-wide rate limiter, all in fake time (nothing waits on the wall clock)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendkit_async._bucket import FifoSlots, OnTheWire
from sendkit_async._ratelimit import RateLimiter, RateLimitSnapshot
from tests.helpers import VirtualClock


class FakeClock(VirtualClock):
    """Virtual time (see :class:`tests.helpers.VirtualClock`) that builds limiters on it."""

    def limiter(self, **kwargs: object) -> RateLimiter:
        rng = random.Random(1234)
        return RateLimiter(clock=self.time, sleep=self.sleep, random=rng.random, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def acquire_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    """Start n concurrent attempts; return the fake times at which each got in."""
    times: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            times.append(clock.now)

    await asyncio.gather(*(one() for _ in range(n)))
    return times


async def send_at_rate(limiter: RateLimiter, clock: FakeClock, n: int, gap: float) -> None:
    """Send n requests, one every `gap` fake seconds, each answered 200 with no hints."""
    for _ in range(n):
        async with limiter.slot():
            limiter.observe(200)
        await clock.sleep(gap)


# -- construction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_concurrency": 0},
        {"rate": 0.0},
        {"rate": -1.0},
        {"rate": float("nan")},
        {"burst": 0.5},
        {"rate": 1.0, "burst": 0.0},
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


def test_snapshot_and_repr_before_use_outside_a_loop() -> None:
    limiter = RateLimiter(max_concurrency=4)
    snap = limiter.snapshot()
    assert snap == RateLimitSnapshot(
        max_concurrency=4,
        in_flight=0,
        rate=None,
        burst=None,
        tokens=None,
        limit=None,
        remaining=None,
        reset_after=None,
        cooldown_remaining=0.0,
        throttled_seconds=0.0,
        throttle_events=0,
        rate_limited_responses=0,
    )
    assert repr(limiter) == ("<RateLimiter in_flight=0/4 rate=unlimited cooldown=0.00s 429s=0>")


async def test_default_clock_and_sleep_work_on_a_real_loop() -> None:
    # A refill so slow that however long this test really takes, no token comes back.
    limiter = RateLimiter(max_concurrency=2, rate=0.001, burst=5)
    for _ in range(3):
        async with limiter.slot():
            assert limiter.snapshot().in_flight == 1
    assert limiter.snapshot().tokens == pytest.approx(2.0, abs=0.01)
    limiter.cooldown(0.001)  # the real sleep waits the gate out, however long that takes
    async with limiter.slot():
        assert limiter.snapshot().cooldown_remaining == 0.0


# -- concurrency -----------------------------------------------------------------------


async def test_concurrency_cap_is_never_exceeded(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=3, adaptive=False)  # no first-request probe
    inside = peak = 0
    order: list[int] = []

    async def one(i: int) -> None:
        nonlocal inside, peak
        async with limiter.slot():
            order.append(i)
            inside += 1
            peak = max(peak, inside)
            assert limiter.snapshot().in_flight == inside
            await clock.sleep(0.1 + (i % 4) * 0.05)
            inside -= 1

    await asyncio.gather(*(one(i) for i in range(20)))
    assert peak == 3
    assert order == list(range(20))  # FIFO
    assert limiter.snapshot().in_flight == 0
    assert limiter.snapshot().throttle_events == 0  # waiting for slots is not throttling


async def test_slot_is_released_when_the_body_raises(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=1)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("boom")
    assert limiter.snapshot().in_flight == 0
    async with limiter.slot():
        pass


@settings(max_examples=40, deadline=None)
@given(
    cap=st.integers(1, 5),
    jobs=st.lists(st.tuples(st.floats(0.0, 0.5), st.booleans(), st.floats(0.0, 0.3)), max_size=25),
)
def test_in_flight_never_exceeds_cap_with_cancellations(
    cap: int, jobs: list[tuple[float, bool, float]]
) -> None:
    async def main() -> None:
        clock = FakeClock()
        limiter = clock.limiter(max_concurrency=cap, rate=20.0, burst=2)
        inside = 0

        async def one(duration: float) -> None:
            nonlocal inside
            async with limiter.slot():
                inside += 1
                assert inside <= cap
                assert limiter.snapshot().in_flight <= cap
                await clock.sleep(duration)
                inside -= 1

        tasks = [asyncio.create_task(one(d)) for d, _, _ in jobs]

        async def cancel_later(task: asyncio.Task[None], after: float) -> None:
            await clock.sleep(after)
            task.cancel()

        cancellers = [
            cancel_later(t, after)
            for t, (_, cancel, after) in zip(tasks, jobs, strict=True)
            if cancel
        ]
        await asyncio.gather(*cancellers)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert limiter.snapshot().in_flight == 0
        async with limiter.slot():  # still usable
            pass

    asyncio.run(main())


# -- fixed token bucket ----------------------------------------------------------------


async def test_burst_is_allowed_at_once(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10, rate=1.0, burst=5)
    times = await acquire_times(limiter, clock, 5)
    assert times == [0.0] * 5
    assert limiter.snapshot().throttle_events == 0


async def test_fixed_rate_spreads_acquisitions(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=100, rate=10.0, burst=3)
    times = await acquire_times(limiter, clock, 20)
    assert times[:3] == [0.0] * 3
    gaps = [b - a for a, b in itertools.pairwise(times[2:])]
    assert all(g >= 0.1 - 1e-9 for g in gaps)
    assert times[-1] == pytest.approx((20 - 3) / 10)
    snap = limiter.snapshot()
    assert snap.throttle_events == 17
    assert snap.throttled_seconds == pytest.approx(sum(t for t in times))
    assert snap.tokens == pytest.approx(0.0, abs=1e-6)


async def test_default_burst_is_one_second_of_rate(clock: FakeClock) -> None:
    limiter = clock.limiter(rate=4.0)
    assert limiter.snapshot().burst == 4.0
    assert limiter.snapshot().tokens == 4.0


# -- learning from headers -------------------------------------------------------------


async def test_rate_learned_from_largest_reset(clock: FakeClock) -> None:
    limiter = clock.limiter()
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=99, reset_after=2.0)
    assert limiter.snapshot().rate == pytest.approx(50.0)
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=98, reset_after=10.0)
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=97, reset_after=4.0)  # smaller: ignored
    snap = limiter.snapshot()
    assert snap.rate == pytest.approx(10.0)
    assert snap.burst == 100.0
    assert (snap.limit, snap.remaining, snap.reset_after) == (100, 97, 4.0)
    clock.now += 1.5
    assert limiter.snapshot().reset_after == pytest.approx(2.5)


async def test_policy_window_wins_over_reset(clock: FakeClock) -> None:
    limiter = clock.limiter()
    async with limiter.slot():
        limiter.observe(200, limit=120, remaining=50, reset_after=5.0, window=60.0)
    assert limiter.snapshot().rate == pytest.approx(2.0)


async def test_learned_rate_never_exceeds_user_ceiling(clock: FakeClock) -> None:
    limiter = clock.limiter(rate=5.0, burst=3)
    async with limiter.slot():
        limiter.observe(200, limit=1000, remaining=900, window=10.0)
    assert (limiter.snapshot().rate, limiter.snapshot().burst) == (5.0, 3.0)
    async with limiter.slot():
        limiter.observe(200, limit=20, remaining=10, window=10.0)
    assert limiter.snapshot().rate == pytest.approx(2.0)


async def test_remaining_lowers_tokens_and_stale_remaining_does_not_raise_them(
    clock: FakeClock,
) -> None:
    limiter = clock.limiter()
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=3, window=100.0)
    assert limiter.snapshot().tokens == pytest.approx(3.0)
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=1, window=100.0)
    assert limiter.snapshot().tokens == pytest.approx(1.0)
    async with limiter.slot():  # a late answer from an earlier request
        limiter.observe(200, limit=100, remaining=40, window=100.0)
    assert limiter.snapshot().tokens == pytest.approx(0.0)


async def test_remaining_accounts_for_requests_still_in_flight(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10)
    async with limiter.slot():
        limiter.observe(200, limit=100, remaining=90, window=10.0)
    release = asyncio.Event()
    entered = 0

    async def in_flight() -> None:
        nonlocal entered
        async with limiter.slot():
            entered += 1
            await release.wait()

    tasks = [asyncio.create_task(in_flight()) for _ in range(4)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert entered == 4
    async with limiter.slot():  # 4 others unanswered: the server has not counted them
        limiter.observe(200, limit=100, remaining=6, window=10.0)
    assert limiter.snapshot().tokens == pytest.approx(2.0)
    release.set()
    await asyncio.gather(*tasks)


async def test_remaining_zero_waits_for_the_next_refill(clock: FakeClock) -> None:
    limiter = clock.limiter()
    async with limiter.slot():
        limiter.observe(200, limit=10, remaining=0, reset_after=5.0)
    assert limiter.snapshot().rate == pytest.approx(2.0)
    times = await acquire_times(limiter, clock, 3)
    assert times == pytest.approx([0.5, 1.0, 1.5])


async def test_adaptive_false_ignores_headers_and_429s(clock: FakeClock) -> None:
    limiter = clock.limiter(rate=5.0, adaptive=False)
    async with limiter.slot():
        limiter.observe(200, limit=10, remaining=0, window=10.0)
        limiter.observe(429)
    snap = limiter.snapshot()
    assert (snap.rate, snap.limit, snap.remaining) == (5.0, 10, 0)
    assert snap.rate_limited_responses == 1
    assert snap.cooldown_remaining == pytest.approx(0.8)  # the gate still works: 4 intervals


# -- cooldown gate ---------------------------------------------------------------------


async def test_cooldown_only_pushes_later(clock: FakeClock) -> None:
    limiter = clock.limiter()
    limiter.cooldown(5.0)
    limiter.cooldown(2.0)
    assert limiter.snapshot().cooldown_remaining == 5.0
    limiter.observe(429, retry_after=1.0)
    assert limiter.snapshot().cooldown_remaining == 5.0
    limiter.observe(429, retry_after=8.0)
    assert limiter.snapshot().cooldown_remaining == 8.0
    assert limiter.snapshot().rate_limited_responses == 2


async def test_a_503_with_retry_after_closes_no_gate(clock: FakeClock) -> None:
    # A fault is one request's business: the others go on (the failed request waits).
    limiter = clock.limiter()
    limiter.observe(503, retry_after=8.0)
    limiter.observe(500, retry_after=30.0)
    assert limiter.snapshot().cooldown_remaining == 0.0
    assert limiter.snapshot().rate_limited_responses == 0


async def test_cooldown_blocks_every_new_acquire(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10, adaptive=False)
    async with limiter.slot():
        limiter.observe(429, retry_after=3.0)
    times = await acquire_times(limiter, clock, 6)
    assert min(times) >= 3.0
    snap = limiter.snapshot()
    assert snap.throttle_events == 6
    assert snap.throttled_seconds >= 6 * 3.0
    assert snap.cooldown_remaining == 0.0


async def test_release_after_cooldown_is_spread_without_a_rate(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10, adaptive=False)
    limiter.cooldown(2.0)
    times = await acquire_times(limiter, clock, 8)
    assert len(set(times)) == 8  # not all at one instant
    assert all(2.0 <= t <= 2.0 + 0.5 for t in times)


async def test_release_after_cooldown_follows_the_token_schedule(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10, rate=4.0, burst=4, adaptive=False)
    limiter.cooldown(3.0)  # the bucket refills during these 3 s, yet must not burst after
    times = await acquire_times(limiter, clock, 5)
    assert times == pytest.approx([3.0, 3.25, 3.5, 3.75, 4.0])


async def test_429_with_reset_only_probes_early_and_escalates(clock: FakeClock) -> None:
    limiter = clock.limiter(rate=10.0, adaptive=False)
    limiter.observe(429, reset_after=30.0)
    assert limiter.snapshot().cooldown_remaining == pytest.approx(0.4)  # 4 token intervals
    clock.now += 0.4
    limiter.observe(429, reset_after=29.6)
    assert limiter.snapshot().cooldown_remaining == pytest.approx(0.6)  # escalated (x 1.5)
    clock.now += 0.6
    limiter.observe(200)
    limiter.observe(429, reset_after=0.2)
    assert limiter.snapshot().cooldown_remaining == pytest.approx(0.2)


async def test_bare_429_burst_is_one_episode(clock: FakeClock) -> None:
    limiter = clock.limiter(adaptive=False)
    for _ in range(10):
        limiter.observe(429)
    assert limiter.snapshot().cooldown_remaining == pytest.approx(0.5)
    assert limiter.snapshot().rate_limited_responses == 10


# -- AIMD ------------------------------------------------------------------------------


async def test_bare_429s_set_the_rate_just_below_the_accepted_rate_once_per_burst(
    clock: FakeClock,
) -> None:
    limiter = clock.limiter(max_concurrency=10)
    await send_at_rate(limiter, clock, 30, 0.05)  # 20 req/s accepted, no hints
    limiter.observe(429)
    snap = limiter.snapshot()
    rate = snap.rate or 0.0
    assert 0.85 * 20.0 <= rate <= 20.0  # 30 accepted in 1.5 s, less an assumed burst
    assert snap.burst == 2.0  # two tokens at least: a waiter woken late catches up
    assert snap.cooldown_remaining == pytest.approx(4.0 / rate)  # 4 intervals of the new rate
    for _ in range(7):  # the rest of the burst of 429s: the same episode, no new decrease
        limiter.observe(429)
    assert limiter.snapshot().rate == rate
    assert "aimd" in repr(limiter)


async def test_a_503_among_the_answers_keeps_the_rate_the_server_let_through(
    clock: FakeClock,
) -> None:
    # 20 req/s let through, one in ten answered 503 by the backend behind the limit: the
    # rate learned at the 429 is the same as with every answer a 200.
    rates = []
    for failing in (False, True):
        limiter = clock.limiter(max_concurrency=10)
        for i in range(30):
            async with limiter.slot():
                limiter.observe(503 if failing and i % 10 == 5 else 200)
            await clock.sleep(0.05)
        limiter.observe(429)
        rates.append(limiter.snapshot().rate)
    assert rates[0] is not None and rates[1] == pytest.approx(rates[0])


async def test_aimd_creeps_up_on_success_up_to_the_ceiling(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=10, rate=30.0)
    await send_at_rate(limiter, clock, 30, 0.05)
    limiter.observe(429)
    assert 0.85 * 20.0 <= (limiter.snapshot().rate or 0.0) <= 20.0
    rates: list[float] = []
    for _ in range(40):
        await send_at_rate(limiter, clock, 20, 0.0)  # saturate the limiter
        rates.append(limiter.snapshot().rate or 0.0)
    assert rates == sorted(rates)
    assert 10.0 < rates[0] < 30.0
    assert rates[-1] == 30.0


async def test_aimd_does_not_creep_when_demand_is_low(clock: FakeClock) -> None:
    limiter = clock.limiter()
    await send_at_rate(limiter, clock, 30, 0.05)
    limiter.observe(429)
    await clock.sleep(1.0)
    before = limiter.snapshot().rate
    await send_at_rate(limiter, clock, 20, 1.0)  # 1 req/s against a ~10 req/s budget
    assert limiter.snapshot().rate == before


async def test_header_learning_wins_over_aimd(clock: FakeClock) -> None:
    limiter = clock.limiter()
    async with limiter.slot():
        limiter.observe(200, limit=50, remaining=10, window=10.0)
    await send_at_rate(limiter, clock, 5, 0.05)
    limiter.observe(429, retry_after=1.0)
    snap = limiter.snapshot()
    assert snap.rate == pytest.approx(5.0)
    assert snap.cooldown_remaining == pytest.approx(1.0)


# -- cancellation ----------------------------------------------------------------------


async def _cancel_while_waiting(limiter: RateLimiter, clock: FakeClock) -> None:
    task = asyncio.create_task(acquire_times(limiter, clock, 1))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.snapshot().in_flight == 0


async def test_cancel_while_waiting_for_a_slot(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=1)
    gate = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await gate.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(acquire_times(limiter, clock, 1))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.snapshot().in_flight == 0
    assert await acquire_times(limiter, clock, 3) == [0.0] * 3


async def test_cancel_while_waiting_at_the_gate(clock: FakeClock) -> None:
    limiter = clock.limiter(adaptive=False)
    limiter.cooldown(1.0)
    await _cancel_while_waiting(limiter, clock)
    assert await acquire_times(limiter, clock, 2) == pytest.approx([1.0, 1.0], abs=0.25)


async def test_cancel_while_waiting_for_a_token(clock: FakeClock) -> None:
    limiter = clock.limiter(rate=2.0, burst=1)
    assert await acquire_times(limiter, clock, 1) == [0.0]
    await _cancel_while_waiting(limiter, clock)
    # The cancelled waiter's reservation is not kept: the next one gets the token at 0.5.
    assert await acquire_times(limiter, clock, 2) == pytest.approx([0.5, 1.0])


# -- simulation ------------------------------------------------------------------------


class FakeServer:
    """A rate-limited endpoint in fake time; answers 429 when over its limit.

    mode "bare": token bucket at `rate`/s (capacity `burst`), no hints at all.
    mode "retry-after": the same bucket; a 429 carries only Retry-After in whole seconds
    (the wait for one token rounded up, at least 1), as HTTP's delta-seconds force.
    mode "bucket": the same bucket, announcing limit/remaining/reset (time until full).
    mode "window": a fixed window of `burst` requests per `burst / rate` seconds,
    announcing limit/remaining/reset (time until the window ends).
    """

    def __init__(
        self,
        clock: FakeClock,
        rate: float,
        burst: float,
        rtt: float,
        mode: str = "bare",
        backend: float = 0.0,
    ) -> None:
        self.clock, self.rate, self.burst, self.rtt, self.mode = clock, rate, burst, rtt, mode
        self.backend = backend  # accepted requests are answered this much later (refusals not)
        self.tokens, self.updated = burst, 0.0
        self.window = burst / rate
        self.ok_times: list[float] = []
        self.limited_times: list[float] = []
        self.limited = 0

    def _admit(self, now: float) -> tuple[bool, dict[str, float]]:
        if self.mode == "window":
            start = now - now % self.window
            used = sum(1 for t in self.ok_times if t >= start)
            ok = used < self.burst
            left = self.burst - used - ok
            return ok, {
                "limit": self.burst,
                "remaining": left,
                "reset_after": start + self.window - now,
            }
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        ok = self.tokens >= 1
        self.tokens -= ok
        if self.mode == "bare":
            return ok, {}
        if self.mode == "retry-after":
            wait = (1.0 - self.tokens) / self.rate
            return ok, {} if ok else {"retry_after": float(max(1, math.ceil(wait)))}
        reset = (self.burst - self.tokens) / self.rate
        return ok, {"limit": self.burst, "remaining": int(self.tokens), "reset_after": reset}

    async def request(self) -> tuple[int, dict[str, float]]:
        await self.clock.sleep(self.rtt / 2)
        now = self.clock.now
        ok, hints = self._admit(now)
        if ok:
            self.ok_times.append(now)
            await self.clock.sleep(self.backend)
        else:
            self.limited += 1
            self.limited_times.append(now)
        await self.clock.sleep(self.rtt / 2)
        return (200 if ok else 429), hints


async def run_bulk(
    limiter: RateLimiter, server: FakeServer, clock: FakeClock, jobs: int, workers: int
) -> None:
    queue = list(range(jobs))

    async def worker() -> None:
        while queue:
            queue.pop()
            backoff = 0.25
            while True:
                async with limiter.slot():
                    status, hints = await server.request()
                    limiter.observe(
                        status,
                        limit=None if "limit" not in hints else int(hints["limit"]),
                        remaining=None if "remaining" not in hints else int(hints["remaining"]),
                        reset_after=hints.get("reset_after"),
                        retry_after=hints.get("retry_after"),
                    )
                if status == 200:
                    break
                # The retry pipeline sleeps without a slot: what the server asked, else backoff.
                await clock.sleep(hints.get("retry_after", backoff))
                backoff = min(backoff * 2, 4.0)

    await asyncio.gather(*(worker() for _ in range(workers)))


def episodes(times: list[float], gap: float = 0.5) -> int:
    """Bursts of 429s: runs of answers less than ``gap`` seconds apart."""
    return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] >= gap)


def steady_rate(ok_times: list[float]) -> float:
    """Accepted requests/s over the second half of a run."""
    half = ok_times[len(ok_times) // 2 :]
    return (len(half) - 1) / (half[-1] - half[0])


@pytest.mark.parametrize(("server_rate", "rtt"), [(20.0, 0.05), (50.0, 0.2), (5.0, 0.5)])
async def test_aimd_converges_to_the_server_limit(
    clock: FakeClock, server_rate: float, rtt: float
) -> None:
    limiter = clock.limiter(max_concurrency=32)
    server = FakeServer(clock, rate=server_rate, burst=server_rate, rtt=rtt)
    # Long enough that the first episode (the slow start overshooting) is amortised.
    jobs = max(int(server_rate * 60), 600)
    await run_bulk(limiter, server, clock, jobs=jobs, workers=64)
    attempts = jobs + server.limited
    assert server.limited / attempts < 0.05
    # Steady state: the second half of the run achieves close to the server's rate.
    assert 0.8 * server_rate <= steady_rate(server.ok_times) <= 1.05 * server_rate
    assert limiter.snapshot().rate_limited_responses == server.limited


@pytest.mark.parametrize("mode", ["bucket", "window"])
async def test_header_learning_follows_the_server(clock: FakeClock, mode: str) -> None:
    limiter = clock.limiter(max_concurrency=32)
    server = FakeServer(clock, rate=20.0, burst=40.0, rtt=0.1, mode=mode)
    await run_bulk(limiter, server, clock, jobs=1200, workers=64)
    assert server.limited / (1200 + server.limited) < 0.05
    assert 0.85 * 20.0 <= steady_rate(server.ok_times) <= 1.05 * 20.0
    assert limiter.snapshot().limit == 40


async def test_slot_handed_over_to_a_waiter_cancelled_before_it_ran() -> None:
    slots = FifoSlots(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # hands the slot to `first`, which has not run yet...
    first.cancel()  # ...and is cancelled before it does: the slot must move on
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert slots.held == 1
    slots.release()
    assert slots.held == 0


async def test_server_errors_neither_close_the_gate_nor_teach(clock: FakeClock) -> None:
    limiter = clock.limiter()
    await send_at_rate(limiter, clock, 30, 0.05)
    limiter.observe(429)
    rate = limiter.snapshot().rate
    clock.now += 5.0
    for _ in range(50):
        async with limiter.slot():
            limiter.observe(500)
    limiter.observe(503)
    snap = limiter.snapshot()
    assert (snap.rate, snap.cooldown_remaining) == (rate, 0.0)


@pytest.mark.parametrize("rate", [20.0, 100.0])
async def test_first_episode_does_not_pin_the_rate(clock: FakeClock, rate: float) -> None:
    # The slow start overshoots before the first 429 and the estimate then rests on a few
    # hundred milliseconds; it must not hold the rate down for the rest of the run.
    limiter = clock.limiter(max_concurrency=16)
    server = FakeServer(clock, rate=rate, burst=rate / 10, rtt=0.02)
    start = clock.now
    jobs = int(rate * 10)
    await run_bulk(limiter, server, clock, jobs=jobs, workers=32)
    assert clock.now - start <= 1.5 * jobs / rate  # fake time: ten seconds of work
    assert server.limited <= 0.03 * (jobs + server.limited)  # mostly the first episode


async def test_first_request_goes_alone_and_its_headers_pace_the_rest(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=8)
    sent: list[float] = []

    async def one(i: int) -> None:
        async with limiter.slot():
            sent.append(clock.now)
            await clock.sleep(0.1)
            limiter.observe(200, limit=10, remaining=max(0, 9 - i), reset_after=1.0, window=1.0)

    await asyncio.gather(*(one(i) for i in range(30)))
    assert sent[1] >= sent[0] + 0.1  # nobody else left before the first answer came back
    assert limiter.snapshot().rate == 10.0
    # paced by the learned 10/s: the 20 requests beyond the burst take about 2 s
    assert sent[-1] - sent[0] >= 1.5


async def test_first_request_failing_releases_the_others(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=4)
    entered: list[int] = []

    async def one(i: int) -> None:
        with contextlib.suppress(ConnectionError):
            async with limiter.slot():
                entered.append(i)
                if i == 0:
                    raise ConnectionError  # no response, so no observe()

    await asyncio.gather(*(one(i) for i in range(4)))
    assert sorted(entered) == [0, 1, 2, 3]
    assert limiter.snapshot().in_flight == 0


async def test_cancelled_first_request_releases_the_others(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=4, rate=None)
    gate = asyncio.Event()

    async def first() -> None:
        async with limiter.slot():
            await gate.wait()

    task = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0)
    assert not waiter.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(waiter, 1)
    assert limiter.snapshot().in_flight == 0


async def _enter(limiter: RateLimiter) -> None:
    async with limiter.slot():
        pass


async def test_first_reset_of_a_token_bucket_does_not_overshoot(clock: FakeClock) -> None:
    # The first answer of a full 200/s bucket says reset = 0.005 s (one token's refill):
    # limit / reset alone would be 4,000/s and the next wave would mostly be 429s.
    limiter = clock.limiter(max_concurrency=64)
    server = FakeServer(clock, rate=200.0, burst=20.0, rtt=0.005, mode="bucket")
    await run_bulk(limiter, server, clock, jobs=1000, workers=64)
    assert server.limited <= 5
    assert limiter.snapshot().rate == pytest.approx(200.0, rel=0.05)


# -- no rate-limit headers: slow start, then estimates from 429s ----------------------


async def test_no_hints_after_the_first_answer_the_rest_are_paced_and_speed_up(
    clock: FakeClock,
) -> None:
    limiter = clock.limiter(max_concurrency=64)
    sent: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            sent.append(clock.now)
            await clock.sleep(0.01)  # a 10 ms round trip
            limiter.observe(200)  # no rate-limit headers at all

    await asyncio.gather(*(one() for _ in range(64)))
    assert sent[1] >= sent[0] + 0.01  # the first request went alone
    # One round trip after its answer, not the 63 others at once but about one per round trip.
    assert len([t for t in sent if t < sent[0] + 0.02]) <= 3
    gaps = [b - a for a, b in itertools.pairwise(sent[1:])]
    assert max(gaps[-10:]) < min(gaps[:3]) / 4  # and the pace grows (slow start)
    assert "slow start" in repr(limiter)


@pytest.mark.parametrize(("rate", "burst", "most"), [(200.0, 20.0, 1), (50.0, 5.0, 2)])
async def test_retry_after_only_429s_cost_one_episode_then_the_rate_stays_near_the_limit(
    clock: FakeClock, rate: float, burst: float, most: int
) -> None:
    # Each 429 closes the gate for a whole second (Retry-After: 1 for a few ms of wait):
    # after the first, the rate must sit just below the server's instead of probing again.
    limiter = clock.limiter(max_concurrency=64)
    server = FakeServer(clock, rate=rate, burst=burst, rtt=0.004, mode="retry-after")
    jobs = int(rate * 10)
    await run_bulk(limiter, server, clock, jobs=jobs, workers=128)
    assert episodes(server.limited_times) <= most
    assert server.limited <= 0.01 * (jobs + server.limited)
    assert 0.9 * rate <= steady_rate(server.ok_times) <= 1.02 * rate


@pytest.mark.parametrize("backend", [0.02, 0.05])
async def test_a_backend_slower_than_the_gateways_429s_is_learned_as_on_loopback(
    clock: FakeClock, backend: float
) -> None:
    # A gateway refuses at once, but what it admitted is answered by the backend later:
    # when the first 429 comes, most answers of the requests sent before it are still on
    # the wire. Learned from the answers in hand, 50 ms read 100/s as 82/s and the climb
    # back took 14 s; counted once they are in, by when each request was sent, the slow
    # start's episode and at most one more find the limit.
    limiter = clock.limiter(max_concurrency=64)
    server = FakeServer(
        clock, rate=100.0, burst=20.0, rtt=0.002, mode="retry-after", backend=backend
    )
    await run_bulk(limiter, server, clock, jobs=1500, workers=64)
    assert episodes(server.limited_times) <= 2
    assert 0.92 * 100.0 <= steady_rate(server.ok_times) <= 1.02 * 100.0


@pytest.mark.parametrize(("rate", "burst"), [(200.0, 20.0), (500.0, 100.0)])
async def test_bare_429s_keep_the_rate_near_the_limit_with_few_429s(
    clock: FakeClock, rate: float, burst: float
) -> None:
    limiter = clock.limiter(max_concurrency=64)
    server = FakeServer(clock, rate=rate, burst=burst, rtt=0.004)
    jobs = int(rate * 10)
    await run_bulk(limiter, server, clock, jobs=jobs, workers=128)
    assert server.limited <= 0.01 * (jobs + server.limited)
    assert 0.9 * rate <= steady_rate(server.ok_times) <= 1.02 * rate


async def test_slow_start_past_the_concurrency_cap_drops_the_rate(clock: FakeClock) -> None:
    limiter = clock.limiter(max_concurrency=4)

    async def one() -> None:
        async with limiter.slot():
            await clock.sleep(0.1)
            limiter.observe(200)

    await asyncio.gather(*(one() for _ in range(200)))  # 4 per 0.1 s: 40/s at most
    assert limiter.snapshot().rate is None  # every slot on the wire: no rate binds
    limiter.observe(429)  # a later 429 is still measured against what was accepted
    assert 0.85 * 40.0 <= (limiter.snapshot().rate or 0.0) <= 40.0


async def test_without_a_clock_the_loop_s_own_time_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # A loop whose time() is not asyncio's own (here: 7 s pass at every reading) is
    # honoured; asyncio's own is read through time.monotonic() directly.
    ticks = itertools.count(1000.0, 7.0)
    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: next(ticks))
    limiter = RateLimiter()
    limiter.cooldown(5.0)  # at 1000: the gate opens at 1005
    assert limiter.snapshot().cooldown_remaining == 0.0  # read at 1007


def test_on_the_wire_keeps_the_oldest_send_time_whatever_order_answers_come_in() -> None:
    wire = OnTheWire()
    for at in (1.0, 2.0, 2.0, 3.0):
        wire.add(at)
    wire.remove(2.0)  # not the oldest: remembered
    assert (wire.count, wire.oldest) == (3, 1.0)
    wire.remove(1.0)  # the other 2.0 is still on the wire
    assert (wire.count, wire.oldest) == (2, 2.0)
    wire.remove(3.0)
    wire.remove(2.0)
    assert (wire.count, wire.oldest) == (0, math.inf)
