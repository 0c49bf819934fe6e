"""Priorities: interactive calls are admitted before queued background ones, with a share.

The decision (:class:`Turns`) is tested as a pure object; the limiter in virtual time
(no test waits, no timing asserts): every outcome is an order or a count.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendkit_async import (
    AsyncSendKit,
    ConfigurationError,
    Priority,
    RateLimiter,
    RateLimitSnapshot,
    RetryPolicy,
)
from sendkit_async._priority import Turns, as_priority
from tests.helpers import GUARD, KEY, Script, VirtualClock, wait_until
from tests.test_bulk import ids, serve

# -- the decision, pure ----------------------------------------------------------------


def test_turns_interactive_first_then_alternate_at_half_share() -> None:
    turns = Turns(0.5)
    picks = [turns.next(True, True) for _ in range(6)]
    assert picks == ["interactive", "background"] * 3


def test_turns_a_quarter_share_gives_background_one_admission_in_four() -> None:
    turns = Turns(0.25)
    picks = [turns.next(True, True) for _ in range(12)]
    assert picks.count("background") == 3
    assert picks[:4] == ["interactive"] * 3 + ["background"]


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_turns_background_share_holds_for_every_prefix(share: float) -> None:
    turns = Turns(share)
    background = 0
    for n in range(1, 501):
        background += turns.next(True, True) == "background"
        assert background >= int(share * n) - 1, (n, background)
        assert background <= int(share * n) + 1, (n, background)


def test_turns_lone_callers_and_nobody() -> None:
    turns = Turns()
    assert turns.next(False, True) == "background"
    assert turns.next(True, False) == "interactive"
    assert turns.next(False, False) is None


def test_turns_debt_is_paid_by_background_alone_then_a_lone_interactive_goes_first() -> None:
    turns = Turns(0.5)
    assert turns.next(True, True) == "interactive"  # background is now owed one
    assert turns.next(False, True) == "background"  # ...and got it while nobody else waited
    assert turns.next(True, True) == "interactive"  # so the next interactive call goes first


def test_turns_and_priority_validation() -> None:
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="background_share"):
            Turns(bad)
    with pytest.raises(ValueError, match="priority"):
        as_priority("urgent")
    with pytest.raises(ValueError, match="background_share"):
        RateLimiter(background_share=1.0)


# -- the in-memory limiter, in virtual time ------------------------------------------------


class Run:
    """Tasks admitted by one limiter; each records (label, admission time) and then holds
    its slot for ``hold`` virtual seconds."""

    def __init__(self, limiter: RateLimiter, clock: VirtualClock, hold: float = 0.0) -> None:
        self.limiter, self.clock, self.hold = limiter, clock, hold
        self.order: list[tuple[str, float]] = []
        self.inside = 0
        self.most_inside = 0
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, label: str, priority: Priority) -> asyncio.Task[None]:
        async def one() -> None:
            async with self.limiter.slot(priority=priority):
                self.order.append((label, self.clock.now))
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                try:
                    if self.hold:
                        await self.clock.sleep(self.hold)
                finally:
                    self.inside -= 1

        task = asyncio.create_task(one())
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    async def finish(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks), GUARD)

    def labels(self) -> list[str]:
        return [label for label, _ in self.order]


def limiter_on(clock: VirtualClock, **kw: Any) -> RateLimiter:
    kw.setdefault("adaptive", False)
    return RateLimiter(clock=clock.time, sleep=clock.sleep, **kw)


def assert_idle(limiter: RateLimiter) -> None:
    assert limiter.snapshot().in_flight == 0
    assert limiter._lent == 0 and limiter._bg_queued == 0
    assert not limiter._slots._waiters and not limiter._token_lock._waiters
    assert limiter._token_lock.held == 0


async def test_queued_interactive_calls_go_before_queued_background_ones() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=4, rate=10.0, burst=1.0)
    run = Run(limiter, clock, hold=0.05)
    for n in range(10):
        run.start(f"b{n}", "background")
    await run.settle()  # b0 took the one token; the others queue (slots, then token)
    run.start("i0", "interactive")
    run.start("i1", "interactive")
    await run.finish()
    labels = run.labels()
    assert labels[0] == "b0"
    # Every slot was held by background calls queued for tokens: the interactive calls
    # still take the next token, and the one after the background's share. (Which
    # background call: those whose slot was lent queued for one again.)
    assert (labels[1], labels[2][0], labels[3]) == ("i0", "b", "i1")
    assert sorted(labels) == sorted([f"b{n}" for n in range(10)] + ["i0", "i1"])
    times = [t for _, t in run.order]
    assert times == pytest.approx([0.1 * n for n in range(12)])  # never above the rate
    assert run.most_inside <= 4
    assert_idle(limiter)


async def test_fifo_within_a_lane_and_with_one_priority_only() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=3, rate=20.0, burst=1.0)
    run = Run(limiter, clock, hold=0.2)
    for n in range(8):
        run.start(f"b{n}", "background")
        await run.settle()
    await run.finish()
    assert run.labels() == [f"b{n}" for n in range(8)]
    assert run.most_inside <= 3
    assert_idle(limiter)


async def test_background_keeps_half_the_admissions_under_sustained_interactive_load() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=8, rate=10.0, burst=1.0)
    run = Run(limiter, clock, hold=0.01)
    for n in range(30):
        run.start(f"b{n}", "background")
    await run.settle()
    for n in range(30):
        run.start(f"i{n}", "interactive")
    await run.finish()
    labels = run.labels()[1:]  # the first went before anyone queued
    last_i = max(k for k, label in enumerate(labels) if label.startswith("i"))
    contended = labels[: last_i + 1]  # admissions while interactive calls waited
    background = sum(label.startswith("b") for label in contended)
    assert contended[0].startswith("i")
    assert background >= len(contended) // 2 - 1, contended
    # ...and not much more: the interactive calls do go first.
    assert background <= len(contended) // 2 + 1, contended
    assert run.most_inside <= 8
    assert_idle(limiter)


async def test_a_share_of_a_quarter_gives_background_a_quarter() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=4, rate=10.0, burst=1.0, background_share=0.25)
    run = Run(limiter, clock)
    for n in range(20):
        run.start(f"b{n}", "background")
    await run.settle()
    for n in range(24):
        run.start(f"i{n}", "interactive")
    await run.finish()
    labels = run.labels()[1:]
    last_i = max(k for k, label in enumerate(labels) if label.startswith("i"))
    contended = labels[: last_i + 1]
    background = sum(label.startswith("b") for label in contended)
    assert abs(background - len(contended) / 4) <= 1.5, contended
    assert_idle(limiter)


async def test_a_lone_interactive_call_waits_one_token_while_background_saturates() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=4, rate=10.0, burst=1.0)
    run = Run(limiter, clock, hold=0.03)
    for n in range(40):
        run.start(f"b{n}", "background")
    waits: list[float] = []

    async def interactive_every(period: float, count: int) -> None:
        for _ in range(count):
            await clock.sleep(period)
            asked = clock.now
            async with limiter.slot(priority="interactive"):
                waits.append(clock.now - asked)

    await asyncio.wait_for(interactive_every(0.45, 5), GUARD)
    await run.finish()
    assert len(waits) == 5
    assert all(w <= 0.1 + 1e-9 for w in waits), waits  # at most one token interval
    assert_idle(limiter)


async def test_without_rate_interactive_calls_go_first_for_the_slots() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=2)
    run = Run(limiter, clock, hold=1.0)
    for n in range(6):
        run.start(f"b{n}", "background")
    await run.settle()
    run.start("i0", "interactive")
    await run.finish()
    # b0, b1 hold the two slots (on the wire: nothing to borrow); i0 gets the first freed.
    assert run.labels()[:3] == ["b0", "b1", "i0"]
    assert run.most_inside <= 2
    assert_idle(limiter)


@pytest.mark.parametrize("where", ["slot", "token"])
async def test_cancelling_a_queued_interactive_call_frees_its_place_at_once(where: str) -> None:
    clock = VirtualClock()
    if where == "slot":  # every slot on the wire: the interactive call queues for one
        limiter = limiter_on(clock, max_concurrency=2)
        run = Run(limiter, clock, hold=1.0)
    else:  # background calls queue for tokens: the interactive call borrows a slot
        limiter = limiter_on(clock, max_concurrency=2, rate=10.0, burst=1.0)
        run = Run(limiter, clock)
    for n in range(4):
        run.start(f"b{n}", "background")
    await run.settle()
    victim = run.start("i0", "interactive")
    await run.settle()
    if where == "slot":
        assert limiter._slots.waiting("interactive")
    else:
        assert limiter._lent == 1 and limiter._token_lock.waiting("interactive")
    victim.cancel()
    await run.settle()
    assert victim.cancelled()
    assert not limiter._slots.waiting("interactive")
    assert not limiter._token_lock.waiting("interactive")
    run.tasks.remove(victim)
    await run.finish()
    assert sorted(run.labels()) == ["b0", "b1", "b2", "b3"]
    assert_idle(limiter)

    async def enter() -> int:
        async with limiter.slot(priority="interactive"):
            return limiter.snapshot().in_flight

    assert await asyncio.wait_for(enter(), GUARD) == 1
    assert_idle(limiter)


async def test_cancelling_background_calls_whose_slot_was_lent_leaks_nothing() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, max_concurrency=3, rate=10.0, burst=1.0)
    run = Run(limiter, clock)
    for n in range(6):
        run.start(f"b{n}", "background")
    await run.settle()
    interactive = run.start("i0", "interactive")
    await run.settle()
    assert limiter._lent == 1
    for task in run.tasks:
        if task is not interactive:
            task.cancel()
    await asyncio.wait_for(interactive, GUARD)
    await asyncio.gather(*run.tasks, return_exceptions=True)
    assert "i0" in run.labels()
    assert_idle(limiter)


# -- through the client ----------------------------------------------------------------


class RecordingBudget:
    """A user's budget that takes the priority: records it, admits at once."""

    def __init__(self) -> None:
        self.priorities: list[str] = []
        self.inner = RateLimiter()

    def slot(self, *, priority: Priority = "interactive") -> AbstractAsyncContextManager[None]:
        self.priorities.append(priority)
        return self.inner.slot()

    def observe(self, status: int, **hints: Any) -> None:
        self.inner.observe(status, **hints)

    def cooldown(self, seconds: float) -> None:
        self.inner.cooldown(seconds)

    def snapshot(self) -> RateLimitSnapshot:
        return self.inner.snapshot()


class LegacyBudget(RecordingBudget):
    """A budget written before priorities: ``slot()`` takes nothing."""

    def slot(self) -> AbstractAsyncContextManager[None]:  # type: ignore[override]
        self.priorities.append("-")
        return self.inner.slot()


async def test_priorities_reach_a_custom_budget(server: Script) -> None:
    serve(server)
    budget = RecordingBudget()
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, rate_limiter=budget, retry=RetryPolicy(0)
    ) as client:
        await client.analytics.campaign(ids(1)[0])
        assert budget.priorities == ["interactive"]
        await client.gather_campaigns(ids(3))
        assert budget.priorities[1:] == ["background"] * 3
        await client.gather_campaigns(ids(2), priority="interactive")
        assert budget.priorities[4:] == ["interactive"] * 2
        async for _ in client.iter_campaigns(ids(2)):
            pass
        assert budget.priorities[6:] == ["background"] * 2
        bulk = client.with_options(priority="background")
        await bulk.analytics.campaign(ids(1)[0])
        await client.analytics.campaign(ids(1)[0])  # the client itself is unchanged
        assert budget.priorities[8:] == ["background", "interactive"]
        assert bulk.with_options(timeout=5)._core.priority == "background"
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, rate_limiter=budget, priority="background"
    ) as worker:
        await worker.analytics.campaign(ids(1)[0])
        assert budget.priorities[-1] == "background"


async def test_a_budget_with_a_plain_slot_keeps_working(server: Script) -> None:
    serve(server)
    budget = LegacyBudget()
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, rate_limiter=budget, retry=RetryPolicy(0)
    ) as client:
        result = await client.analytics.campaign(ids(1)[0])
        results = await client.gather_campaigns(ids(3))
        await client.with_options(priority="background").analytics.campaign(ids(1)[0])
    assert result.campaign.id == ids(1)[0]
    assert [r.campaign.id for r in results] == ids(3)
    assert budget.priorities == ["-"] * 5


async def test_priority_option_is_checked(server: Script) -> None:
    with pytest.raises(ConfigurationError, match="priority"):
        AsyncSendKit(api_key=KEY, base_url=server.base_url, priority="urgent")  # type: ignore[arg-type]
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url) as client:
        with pytest.raises(ConfigurationError, match="priority"):
            client.with_options(priority="high")  # type: ignore[arg-type]


async def test_a_single_call_overtakes_a_saturating_bulk_run_on_one_client(
    server: Script,
) -> None:
    """Through the whole pipeline: the id fetched alone is answered after about one token,
    not after the run's queue (the run counts requests the server got before it)."""
    serve(server)
    clock = VirtualClock()
    async with AsyncSendKit(
        api_key=KEY,
        base_url=server.base_url,
        rate_limit=20.0,
        burst=1.0,
        max_concurrency=4,
        clock=clock.time,
        sleep=clock.sleep,
    ) as client:
        bulk = asyncio.create_task(client.gather_campaigns(ids(60)))
        await wait_until(lambda: server.count() >= 10)
        single = "f" * 24
        before = server.count()
        await client.analytics.campaign(single)
        at = server.raw_paths.index(next(p for p in server.raw_paths if p.endswith(single)))
        results = await asyncio.wait_for(bulk, GUARD)
    assert len(results) == 60
    assert at - before <= 2, (at, before)  # at most one background request went first


# -- any mix of priorities, holds and cancellations ------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 4),
    rate=st.sampled_from([None, 5.0, 50.0]),
    calls=st.lists(
        st.tuples(
            st.sampled_from(["interactive", "background"]),
            st.sampled_from([0.0, 0.01, 0.3]),  # how long the call holds its slot
            st.one_of(st.none(), st.integers(0, 300)),  # cancelled after that many steps
        ),
        min_size=1,
        max_size=14,
    ),
)
def test_any_mix_keeps_the_cap_and_leaks_nothing(
    limit: int, rate: float | None, calls: list[tuple[Priority, float, int | None]]
) -> None:
    async def main() -> None:
        clock = VirtualClock()
        limiter = limiter_on(clock, max_concurrency=limit, rate=rate, burst=1.0 if rate else None)
        inside = 0
        most = 0

        async def one(priority: Priority, hold: float) -> None:
            nonlocal inside, most
            async with limiter.slot(priority=priority):
                inside += 1
                most = max(most, inside)
                try:
                    await clock.sleep(hold)
                finally:
                    inside -= 1

        tasks = [asyncio.create_task(one(p, h)) for p, h, _ in calls]
        for step in range(301):
            for task, (_, _, cancel_at) in zip(tasks, calls, strict=True):
                if cancel_at == step:
                    task.cancel()
            await asyncio.sleep(0)
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GUARD)
        assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results), results
        assert most <= limit
        assert_idle(limiter)
        finished = sum(r is None for r in results)
        assert finished >= sum(cancel is None for _, _, cancel in calls)

    asyncio.run(main())
