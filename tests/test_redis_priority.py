"""Priorities across processes: RedisRateLimiter against a real redis-server.

Outcomes are orders and counts of admissions, never wall-clock times.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from sendkit_async._priority import Priority
from sendkit_async.redis_limiter import RedisRateLimiter
from tests import test_redis_limiter as shared
from tests.helpers import GUARD, FakeClock, VirtualClock, wait_until
from tests.redis_fixtures import free_port
from tests.test_redis_limiter import SERVER_T0, Factory, new_key

make, redis = shared.make, shared.redis  # the fixtures

FORE, BACK, TURNS = 6, 7, 8  # indices of the lanes' keys in budget_keys()


async def server_time(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds) + float(micros) / 1e6


async def test_acquire_alternates_while_both_lanes_wait(make: Factory, redis: Redis) -> None:
    a = make(api_key=new_key(), rate=1000, burst=1000)  # tokens never run out here
    # An interactive caller of another process waits (announced, as ACQUIRE does).
    now = await server_time(redis)
    await redis.zadd(a._keys[FORE], {"other": now + 60})

    async def ask(priority: Priority, waiter: str) -> str:
        kind, _, _ = await a._acquire_once("", priority, waiter)
        return kind

    kinds = [
        await ask("background", "b1"),  # not its turn: an interactive caller waits
        await ask("interactive", "i1"),  # token; background is now owed one
        await ask("background", "b1"),  # its turn
        await ask("background", "b2"),  # not its turn again
        await ask("interactive", "i2"),
        await ask("background", "b2"),
    ]
    assert kinds == ["wait", "token", "token", "wait", "token", "token"]
    assert await redis.zrange(a._keys[BACK], 0, -1) == []  # admitted: no longer announced
    assert await redis.zrange(a._keys[FORE], 0, -1) == ["other"]
    # The other process crashed: its announcement expires and holds nobody back.
    await redis.zadd(a._keys[FORE], {"other": now - 1})
    assert await ask("background", "b3") == "token"
    assert await redis.zcard(a._keys[FORE]) == 0
    # A caller taking no part in priorities (an older client) is served as before.
    assert (await a._acquire_once(""))[0] == "token"


async def test_a_waiting_background_caller_is_announced_with_an_expiry(
    make: Factory,
    redis: Redis,
) -> None:
    a = make(api_key=new_key(), rate=1000, burst=1000)
    now = await server_time(redis)
    await redis.zadd(a._keys[FORE], {"other": now + 60})
    kind, wait, server_now = await a._acquire_once("", "background", "b1")
    assert kind == "wait" and 0 < wait <= 1 / 1000 + 1e-9  # asks again after one token
    (member, expires), *_ = await redis.zrange(a._keys[BACK], 0, -1, withscores=True)
    assert member == "b1"
    assert server_now < expires <= server_now + wait + 1.0 + 1e-3
    assert 0 < await redis.pttl(a._keys[BACK]) <= 3000


async def test_interactive_calls_of_one_process_overtake_background_of_another(
    make: Factory,
) -> None:
    # Virtual time for both processes and Redis: tokens come at 20/s of it, never of ours.
    clock = VirtualClock(start=SERVER_T0)
    key = new_key()
    worker = make(api_key=key, rate=20, burst=1, max_concurrency=12, sleep=clock.sleep)
    web = make(api_key=key, rate=20, burst=1, max_concurrency=4, sleep=clock.sleep)
    worker._server_clock = web._server_clock = clock.time
    order: list[str] = []
    stop = asyncio.Event()

    async def background() -> None:
        while not stop.is_set():
            async with worker.slot(priority="background"):
                order.append("b")

    async def interactive() -> None:
        async with web.slot(priority="interactive"):
            order.append("i")

    workers = [asyncio.create_task(background()) for _ in range(12)]
    try:
        await wait_until(lambda: len(order) >= 5)  # the worker saturates the budget
        start = len(order)
        await asyncio.wait_for(asyncio.gather(*(interactive() for _ in range(4))), GUARD)
        during = order[start:]
        after = len(order) + 3
        await wait_until(lambda: len(order) >= after)  # background goes on after
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), GUARD)
    assert during.count("i") == 4
    # Twelve background callers were queued: in FIFO (or by luck) the four interactive
    # calls would come after many of them. With priorities, background gets its half
    # (plus the few tokens reserved before the interactive calls were announced).
    queued_behind = during.count("b")
    assert 1 <= queued_behind <= 4 + 4, during
    assert order[start + len(during) :].count("b") >= 3


async def test_priority_survives_redis_being_down() -> None:
    port = free_port()  # nothing listens there
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{port}/0", api_key=new_key(), base_url="http://api.test", rate=50
    )
    entered: list[Any] = []
    try:
        async with limiter.slot(priority="background"):
            entered.append(limiter.shared)
        async with limiter.slot(priority="interactive"):
            entered.append(limiter.shared)
    finally:
        await limiter.aclose()
    assert entered == [False, False]  # served by the per-process fallback, both priorities


async def test_a_cancelled_waiter_leaves_its_lane_at_once(make: Factory, redis: Redis) -> None:
    a = make(api_key=new_key(), rate=0.5, burst=1)  # one token, the next in 2 s...
    a._server_clock = FakeClock(start=SERVER_T0).time  # ...of a Redis time that stands still
    async with a.slot(priority="background"):
        pass  # the burst

    async def queued() -> None:
        async with a.slot(priority="background"):
            raise AssertionError("admitted without a token")  # pragma: no cover

    task = asyncio.create_task(queued())

    async def announced() -> None:
        while await redis.zcard(a._keys[BACK]) == 0:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(announced(), GUARD)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    while a._flusher is not None and not a._flusher.done():
        await a._flusher
    assert await redis.zcard(a._keys[BACK]) == 0  # gone now, not when its expiry comes
    assert a.snapshot().in_flight == 0


class Asking:
    """Wraps the ACQUIRE script: the most calls in flight at once per lane, and every
    call's (lane, waiter, reply kind) in the order the replies came."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.script = inner, inner.script
        self.now: dict[str, int] = {"i": 0, "b": 0}
        self.most: dict[str, int] = {"i": 0, "b": 0}
        self.calls: list[tuple[str, str, str]] = []

    async def __call__(self, *, keys: list[str], args: list[str], client: Redis) -> Any:
        lane, waiter = args[8], args[9]  # ARGV[9]: 'i' or 'b'; ARGV[10]: the admission
        self.now[lane] += 1
        self.most[lane] = max(self.most[lane], self.now[lane])
        try:
            reply = await self.inner(keys=keys, args=args, client=client)
        finally:
            self.now[lane] -= 1
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        self.calls.append((lane, waiter, kind))
        return reply

    def turns(self, lane: str) -> list[str]:
        """The waiters of ``lane`` in the order they asked; each asked until its token
        before the next asked at all (no two interleave)."""
        order: list[str] = []
        for call_lane, waiter, _ in self.calls:
            if call_lane != lane:
                continue
            if not order or order[-1] != waiter:
                assert waiter not in order, f"{waiter} asked again after another's turn"
                order.append(waiter)
        last = {w: k for lane_, w, k in self.calls if lane_ == lane}
        assert all(kind == "token" for kind in last.values()), last
        return order


async def test_one_waiter_per_lane_asks_redis_at_a_time(make: Factory) -> None:
    # Sixteen callers of one process wait for tokens at 10/s (virtual time): only the
    # first waiter of each lane polls Redis; the others wait in this process, in order.
    clock = VirtualClock(start=SERVER_T0)
    a = make(api_key=new_key(), rate=10, burst=1, horizon=0, sleep=clock.sleep)
    a._server_clock = clock.time
    asking = a._acquire = Asking(a._acquire)  # type: ignore[assignment]
    order: list[tuple[Priority, int]] = []

    async def one(priority: Priority, n: int) -> None:
        async with a.slot(priority=priority):
            order.append((priority, n))

    calls = [one("interactive", n) for n in range(12)] + [one("background", n) for n in range(4)]
    await asyncio.wait_for(asyncio.gather(*calls), GUARD)
    assert len(order) == 16
    assert asking.most == {"i": 1, "b": 1}
    # Each waiter asked until it had its token before the next of its lane asked at all.
    assert (len(asking.turns("i")), len(asking.turns("b"))) == (12, 4)


async def test_a_waiter_cancelled_in_the_process_queue_holds_nobody_back(make: Factory) -> None:
    clock = VirtualClock(start=SERVER_T0)
    a = make(api_key=new_key(), rate=10, burst=1, horizon=0, sleep=clock.sleep)
    a._server_clock = clock.time
    asking = a._acquire = Asking(a._acquire)  # type: ignore[assignment]
    order: list[int] = []

    async def one(n: int) -> None:
        async with a.slot():
            order.append(n)

    async with a.slot():
        pass  # the burst: the next callers wait for tokens
    tasks = [asyncio.create_task(one(n)) for n in range(4)]
    await wait_until(lambda: a.snapshot().in_flight == 4 and asking.now["i"] + len(order) > 0)
    tasks[2].cancel()  # queued behind the first: it never asked Redis
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GUARD)
    assert tasks[2].cancelled()
    assert sorted(order) == [0, 1, 3]
    assert not a._turns["interactive"].locked()
    assert a.snapshot().in_flight == 0
    assert asking.most == {"i": 1, "b": 0}
    assert len(asking.turns("i")) == 4  # the burst's and three: the cancelled one never asked
