"""Cancellation at every wait of ``RateLimiter.slot()``, in every interleaving, in fake time.

Each scenario parks a victim at one await (slot, probe, gate, token lock, token sleep)
and has a trigger that frees what it waits for. The victim is cancelled (or its
``asyncio.timeout`` fires) before the trigger, in the same step, or k loop iterations
after it; afterwards it must have raised CancelledError (TimeoutError) and nothing may
have leaked: no slot, no probe, the next ``slot()`` is admitted without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendkit_async import AsyncSendKit, RateLimiter
from sendkit_async._bucket import FifoSlots
from tests.helpers import KEY, FakeClock, Script, wait_until


class ManualClock(FakeClock):
    """A fake clock whose sleeps end only when the test moves time with :meth:`advance`."""

    def __init__(self) -> None:
        super().__init__()
        self.parked: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.parked.append((self.now + max(0.0, seconds), fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time on and end (in this step) every sleep that is due."""
        self.now += seconds
        due = [fut for when, fut in self.parked if when <= self.now]
        self.parked = [(when, fut) for when, fut in self.parked if when > self.now]
        for fut in due:
            if not fut.done():
                fut.set_result(None)

    def limiter(self, **kwargs: object) -> RateLimiter:
        return RateLimiter(clock=self.time, sleep=self.sleep, random=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


async def steps(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def hold(limiter: RateLimiter) -> AbstractAsyncContextManager[None]:
    """Enter a slot from the test itself, so that leaving it is one synchronous step."""
    cm = limiter.slot()
    await cm.__aenter__()
    return cm


async def leave(cm: AbstractAsyncContextManager[None]) -> None:
    await cm.__aexit__(None, None, None)  # never suspends: the release lands in this step


async def forever(limiter: RateLimiter) -> None:
    """Enter a slot and stay inside until cancelled."""
    async with limiter.slot():
        await asyncio.get_running_loop().create_future()


Trigger = Callable[[], Awaitable[None]]

if sys.version_info >= (3, 11):

    def deadline() -> tuple[AbstractAsyncContextManager[object], Callable[[], None]]:
        """An ``asyncio.timeout`` scope and a function making it expire (soon, not later)."""
        scope = asyncio.timeout(None)
        return scope, lambda: scope.reschedule(asyncio.get_running_loop().time())

else:  # asyncio.timeout is new in Python 3.11

    def deadline() -> tuple[AbstractAsyncContextManager[object], Callable[[], None]]:
        pytest.skip("asyncio.timeout needs Python 3.11")


async def _slot(clock: ManualClock) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    limiter = clock.limiter(max_concurrency=1, adaptive=False)
    holder = await hold(limiter)
    return limiter, lambda: leave(holder), []


async def _probe(clock: ManualClock) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    limiter = clock.limiter(max_concurrency=3)  # nothing known: the first request goes alone
    prober = await hold(limiter)
    return limiter, lambda: leave(prober), []


async def _probe_answered(
    clock: ManualClock,
) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    limiter = clock.limiter(max_concurrency=3)
    prober = await hold(limiter)

    async def answer() -> None:
        limiter.observe(200, limit=100, remaining=99, reset_after=1.0, window=1.0)
        await leave(prober)

    return limiter, answer, []


async def _gate(clock: ManualClock) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    limiter = clock.limiter(adaptive=False)
    limiter.cooldown(1.0)

    async def reopen() -> None:
        clock.advance(1.0)

    return limiter, reopen, []


async def _prober_at_gate(
    clock: ManualClock,
) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    # The victim is the first request (the probe), held at a closed gate; another waits
    # for its answer and must not be stranded when the probe is cancelled.
    limiter = clock.limiter(max_concurrency=3)
    limiter.cooldown(1.0)

    async def reopen() -> None:
        clock.advance(1.0)

    return limiter, reopen, []


async def _token_wait(
    clock: ManualClock, *, lock: bool
) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    limiter = clock.limiter(adaptive=False, rate=1.0, burst=1)
    await leave(await hold(limiter))  # spends the one token
    others = []
    if lock:  # another request sleeps for the next token, holding the token lock
        others.append(asyncio.create_task(forever(limiter)))
        await steps()

    async def refill() -> None:
        clock.advance(1.0)

    return limiter, refill, others


async def _token_lock(clock: ManualClock) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    return await _token_wait(clock, lock=True)


async def _token_sleep(clock: ManualClock) -> tuple[RateLimiter, Trigger, list[asyncio.Task[None]]]:
    return await _token_wait(clock, lock=False)


SCENARIOS = {
    "slot": _slot,
    "probe": _probe,
    "probe-answered": _probe_answered,
    "gate": _gate,
    "prober-at-gate": _prober_at_gate,
    "token-lock": _token_lock,
    "token-sleep": _token_sleep,
}
# -1: cancelled before the trigger; 0: in the same step just after it; k: k iterations later.
OFFSETS = [-1, 0, 1, 2, 3, 4, 6, 10]


@pytest.mark.parametrize("how", ["cancel", "timeout"])
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_cancel_at_every_wait_leaks_nothing(scenario: str, offset: int, how: str) -> None:
    clock = ManualClock()
    limiter, trigger, others = await SCENARIOS[scenario](clock)
    loop = asyncio.get_running_loop()
    scope: AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if how == "timeout":
        scope, expire = deadline()

    async def victim() -> None:
        async with scope:
            await forever(limiter)

    task = asyncio.create_task(victim())
    await steps()
    if scenario == "prober-at-gate":
        others.append(asyncio.create_task(forever(limiter)))  # waits for the probe's answer
        await steps()
    assert not task.done()
    assert clock.sleeps or scenario in ("slot", "probe", "probe-answered")

    def stop() -> None:
        if how == "cancel":
            task.cancel()
        else:
            expire()  # due now: fires without real waiting

    def stop_later(hops: int) -> None:
        if hops == 0:
            stop()
        else:
            loop.call_soon(stop_later, hops - 1)

    if offset < 0:
        stop()
    await trigger()
    if offset >= 0:
        stop_later(offset)
    await steps(offset + 10)

    expected = asyncio.CancelledError if how == "cancel" else asyncio.TimeoutError
    with pytest.raises(expected):
        await task
    await _assert_nothing_leaked(limiter, clock, others)


async def _assert_nothing_leaked(
    limiter: RateLimiter, clock: ManualClock, others: list[asyncio.Task[None]]
) -> None:
    # Whoever else queued got in (the probe is not stuck): let time run until they did.
    for _ in range(5):
        clock.advance(10.0)
        await steps()
    for other in others:
        assert not other.done()  # inside its slot, not failed
        assert limiter.snapshot().in_flight >= 1
        other.cancel()
        with pytest.raises(asyncio.CancelledError):
            await other
    assert limiter.snapshot().in_flight == 0
    clock.advance(100.0)  # a full bucket, an open gate
    await steps()
    clock.sleeps.clear()
    newcomer = asyncio.create_task(forever(limiter))
    await steps(3)
    assert limiter.snapshot().in_flight == 1  # admitted at once, without a sleep
    assert clock.sleeps == []
    newcomer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await newcomer
    assert limiter.snapshot().in_flight == 0


async def test_waiter_cancelled_as_the_only_slot_frees_raises_cancelled_error() -> None:
    # The report: take the one slot, queue a second slot(), cancel it, release the first.
    limiter = RateLimiter(max_concurrency=1)
    first = limiter.slot()
    await first.__aenter__()
    second = asyncio.create_task(forever(limiter))
    await asyncio.sleep(0)
    second.cancel()
    await first.__aexit__(None, None, None)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert limiter.snapshot().in_flight == 0
    async with limiter.slot():
        assert limiter.snapshot().in_flight == 1


@pytest.mark.parametrize("hops", [0, 1, 2])
async def test_fifty_calls_timing_out_as_slots_free_raise_timeout_error_only(hops: int) -> None:
    # 50 calls under one deadline with max_concurrency=2: the deadline passes in the
    # step in which the two calls inside finish. Every waiter times out, none raises
    # anything else, and no slot is lost.
    clock = ManualClock()
    limiter = clock.limiter(max_concurrency=2, adaptive=False)
    inside = [await hold(limiter), await hold(limiter)]
    expires: list[Callable[[], None]] = []

    async def call() -> None:
        scope, expire = deadline()
        expires.append(expire)
        async with scope:
            await forever(limiter)

    tasks = [asyncio.create_task(call()) for _ in range(50)]
    await steps()
    for expire in expires:
        expire()
    await steps(hops)
    for cm in inside:
        await leave(cm)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.TimeoutError) for r in results), results
    assert limiter.snapshot().in_flight == 0
    assert (await hold(limiter)) is not None  # admitted at once
    assert limiter.snapshot().in_flight == 1


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 3),
    waiters=st.integers(1, 6),
    ops=st.lists(st.tuples(st.sampled_from(["release", "cancel", "step"]), st.integers(0, 8))),
)
def test_fifo_slots_survive_any_mix_of_releases_and_cancellations(
    limit: int, waiters: int, ops: list[tuple[str, int]]
) -> None:
    async def main() -> None:
        slots = FifoSlots(limit)
        for _ in range(limit):
            await slots.acquire()
        holding = limit  # slots the test holds

        async def wait() -> None:
            await slots.acquire()
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                slots.release()

        tasks = [asyncio.create_task(wait()) for _ in range(waiters)]
        await asyncio.sleep(0)
        for op, n in ops:  # no step between ops: they land in the same tick
            if op == "release" and holding:
                holding -= 1
                slots.release()
            elif op == "cancel":
                tasks[n % waiters].cancel()
            elif op == "step":
                await asyncio.sleep(0)
        await steps()
        assert slots.held <= limit
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        for _ in range(holding):
            slots.release()
        assert slots.held == 0
        assert not slots._waiters
        assert slots.try_acquire()

    asyncio.run(main())


async def test_a_task_cancelled_while_inside_its_slot_frees_it() -> None:
    clock = ManualClock()
    limiter = clock.limiter(max_concurrency=1, adaptive=False)
    task = asyncio.create_task(forever(limiter))
    await steps()
    waiter = asyncio.create_task(forever(limiter))
    await steps()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await steps()
    assert not waiter.done()
    assert limiter.snapshot().in_flight == 1  # handed to the waiter
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.snapshot().in_flight == 0


async def test_a_call_cancelled_in_the_step_its_slot_is_granted_frees_it(server: Script) -> None:
    # The client's own wait for a slot runs the limiter's slot() in a task of its own
    # (raced against close); the call is cancelled in the very step that task gets its
    # token. Found by test_bulk's failing-progress test on a loaded machine: a gather
    # cancelling its workers left in_flight == 1 after about one run in ten.
    clock = ManualClock()
    limiter = clock.limiter(max_concurrency=4, rate=1.0, burst=1, adaptive=False)
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, rate_limiter=limiter, max_retries=0
    ) as client:
        async with limiter.slot():
            pass  # the only token: the call below must wait for the next one
        task = asyncio.create_task(client.analytics.campaign("664a1b2c3d4e5f6a7b8c9d02"))
        await wait_until(lambda: bool(clock.parked))
        clock.advance(1.0)  # the token is due: the slot is entered in the next step...
        task.cancel()  # ...the step in which the call learns it was cancelled
        with pytest.raises(asyncio.CancelledError):
            await task
        await steps()
        assert limiter.snapshot().in_flight == 0
        assert server.count() == 0
