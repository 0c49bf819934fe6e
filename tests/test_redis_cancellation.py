"""Cancellation at every await of ``RedisRateLimiter.slot()``, and a Redis that never answers.

Admission parks the victim at one await (the local slot, the ACQUIRE script, the sleep
for a reserved token or a closed gate, the CHECK script, the fallback limiter); the
test cancels it (or expires its ``asyncio.timeout``) before, with, or a few loop
iterations after what it waits for arrives. Scripts are parked after Redis ran them:
the worst case, their effect (a granted probe) is real but the reply is not read yet.
Sleeps are injected; nothing waits on the wall clock except for Redis itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from sendkit_async.redis_limiter import RedisRateLimiter, SharedBudgetUnavailableError
from tests.test_cancellation import deadline

BASE = "http://api.test"
GUARD = 10.0  # seconds: only ever reached if something hangs


class Sleeper:
    """An injected sleep: parks until :meth:`wake`, or returns at once when ``auto``."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.parked: list[asyncio.Future[None]] = []
        self.auto = False

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.auto:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.parked.append(fut)
        await fut

    def wake(self) -> None:
        for fut in self.parked:
            if not fut.done():
                fut.set_result(None)
        self.parked.clear()


class Parking:
    """Wraps a limiter's script calls: one script's reply is held back until released."""

    def __init__(self, limiter: RedisRateLimiter, script: str) -> None:
        self.target = {"acquire": limiter._acquire, "check": limiter._check}.get(script)
        self.real = limiter._run
        self.gate: asyncio.Future[None] | None = None
        self.parked = 0

    async def run(
        self,
        script: Any,
        keys: Sequence[str],
        args: Sequence[str],
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        result = await self.real(script, keys, args, parse)
        if script is self.target and self.gate is not None:
            self.parked += 1
            await self.gate
        return result

    def park(self) -> None:
        self.gate = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        if self.gate is not None and not self.gate.done():
            self.gate.set_result(None)
        self.gate = None


async def steps(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def hold(limiter: RedisRateLimiter) -> AbstractAsyncContextManager[None]:
    cm = limiter.slot()
    await asyncio.wait_for(cm.__aenter__(), GUARD)
    return cm


async def leave(cm: AbstractAsyncContextManager[None]) -> None:
    await cm.__aexit__(None, None, None)


async def forever(limiter: RedisRateLimiter) -> None:
    async with limiter.slot():
        await asyncio.get_running_loop().create_future()


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop (and Redis I/O) run until ``condition``; bounded by GUARD."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), GUARD)


async def settle(limiter: RedisRateLimiter) -> None:
    await steps()
    if limiter._flusher is not None:
        await asyncio.wait_for(limiter._flusher, GUARD)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


Trigger = Callable[[], Awaitable[None]]
Setup = Callable[
    [RedisRateLimiter, Sleeper, Parking], Awaitable[tuple[Trigger, Callable[[], bool]]]
]


async def _local_slot(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    holder = await hold(lim)  # max_concurrency=1: the victim waits for the local slot
    return (lambda: leave(holder)), lambda: True


async def _acquire(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    pk.park()

    async def answer() -> None:
        pk.release()

    return answer, lambda: pk.parked > 0


async def _sleep(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    await leave(await hold(lim))  # spends the one token: the victim's is reserved ahead

    async def wake() -> None:
        sl.wake()

    return wake, lambda: bool(sl.parked)


async def _check(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    await leave(await hold(lim))
    sl.auto = True  # the victim sleeps for its token, then asks whether the gate closed
    pk.park()

    async def answer() -> None:
        pk.release()

    return answer, lambda: pk.parked > 0


async def _cooldown(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    lim.cooldown(30.0)  # the victim sleeps at the shared gate, wakes, finds it closed
    await settle(lim)

    async def wake() -> None:
        sl.wake()

    return wake, lambda: bool(sl.parked)


async def _fallback(lim: RedisRateLimiter, sl: Sleeper, pk: Parking) -> Any:
    await leave(await hold(lim))  # the first request went through Redis

    async def outage(**_: Any) -> Any:
        raise RedisConnectionError("Redis went away")

    await settle(lim)
    lim._acquire = lim._observe = outage  # type: ignore[assignment]
    holder = await hold(lim)  # Redis is down: this request probes the fallback alone
    assert not lim.shared
    # The victim then holds a fallback slot while it waits for the probe's answer.
    return (lambda: leave(holder)), lambda: lim._fallback.snapshot().in_flight == 2


# name: (setup, limiter options, parked script)
SCENARIOS: dict[str, tuple[Setup, dict[str, Any], str]] = {
    "local-slot": (_local_slot, {"max_concurrency": 1, "rate": 100.0}, ""),
    "acquire-probe": (_acquire, {}, "acquire"),
    "acquire-token": (_acquire, {"rate": 100.0}, "acquire"),
    "token-sleep": (_sleep, {"rate": 1.0, "burst": 1, "horizon": 5.0}, ""),
    "check": (_check, {"rate": 1.0, "burst": 1, "horizon": 5.0}, "check"),
    "cooldown-sleep": (_cooldown, {"rate": 100.0}, ""),
    "fallback": (_fallback, {"max_concurrency": 3}, ""),
}


@pytest.mark.parametrize("how", ["cancel", "timeout"])
@pytest.mark.parametrize("offset", [-1, 0, 1, 2, 4])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_cancel_at_every_await_of_redis_admission_leaks_nothing(
    redis_url: str, redis: Redis, scenario: str, offset: int, how: str
) -> None:
    setup, options, script = SCENARIOS[scenario]
    sleeper = Sleeper()
    limiter = RedisRateLimiter.from_url(
        redis_url, api_key=f"sk_test_{uuid.uuid4().hex}", base_url=BASE, sleep=sleeper, **options
    )
    try:
        await _cancel_and_check(limiter, sleeper, redis, setup, script, offset, how)
    finally:
        await limiter.aclose()


async def _cancel_and_check(
    limiter: RedisRateLimiter,
    sleeper: Sleeper,
    redis: Redis,
    setup: Setup,
    script: str,
    offset: int,
    how: str,
) -> None:
    parking = Parking(limiter, script)
    limiter._run = parking.run  # type: ignore[method-assign]
    trigger, parked = await setup(limiter, sleeper, parking)
    loop = asyncio.get_running_loop()
    scope: AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if how == "timeout":
        scope, expire = deadline()

    async def victim() -> None:
        async with scope:
            await forever(limiter)

    task = asyncio.create_task(victim())
    await until(lambda: parked() or task.done())
    await steps()
    assert not task.done()

    def stop() -> None:
        if how == "cancel":
            task.cancel()
        else:
            expire()

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
    expected = asyncio.CancelledError if how == "cancel" else asyncio.TimeoutError
    with pytest.raises(expected):
        await asyncio.wait_for(asyncio.shield(task), GUARD)

    # Nothing leaked: no local slot, no probe in Redis, and the next request gets in.
    parking.release()
    sleeper.auto = True
    sleeper.wake()
    await settle(limiter)
    assert limiter.snapshot().in_flight == 0
    if limiter.shared:
        assert await redis.get(limiter._keys[3]) is None  # the probe key
        await redis.delete(*limiter._keys[:2])  # the scenario's own cooldown, its bucket
    await asyncio.wait_for(leave(await hold(limiter)), GUARD)
    assert limiter.snapshot().in_flight == 0


async def test_a_probe_granted_to_a_cancelled_caller_is_released(
    redis_url: str, redis: Redis
) -> None:
    # No rate is known, so ACQUIRE grants the one probe; the caller is cancelled before it
    # reads that answer. Another process must not wait for the probe's two-second TTL.
    key = f"sk_test_{uuid.uuid4().hex}"
    sleeper = Sleeper()
    first = RedisRateLimiter.from_url(redis_url, api_key=key, base_url=BASE, sleep=sleeper)
    other = RedisRateLimiter.from_url(redis_url, api_key=key, base_url=BASE, sleep=sleeper)
    try:
        parking = Parking(first, "acquire")
        first._run = parking.run  # type: ignore[method-assign]
        parking.park()
        task = asyncio.create_task(forever(first))
        await until(lambda: parking.parked == 1)
        assert await redis.get(first._keys[3]) is not None  # granted, answer unread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        parking.release()
        await settle(first)
        assert await redis.get(first._keys[3]) is None
        await asyncio.wait_for(leave(await hold(other)), GUARD)
        assert sleeper.calls == []  # the other process went at once, as the new probe
    finally:
        await first.aclose()
        await other.aclose()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts and reads but never answers; yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await steps()  # connections accepted just now register their writers
        for writer in writers:
            writer.close()
        await server.wait_closed()
        await steps()


def silent_limiter(port: int, **options: Any) -> RedisRateLimiter:
    return RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{port}/0",
        socket_timeout=0.05,
        socket_connect_timeout=0.05,
        api_key=f"sk_test_{uuid.uuid4().hex}",
        base_url=BASE,
        **options,
    )


async def test_a_redis_that_never_answers_falls_back_instead_of_hanging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with silent_server() as port, silent_limiter(port, sleep=Sleeper()) as limiter:
        await asyncio.wait_for(leave(await hold(limiter)), GUARD)  # GUARD: never reached
        assert not limiter.shared
        assert "Timeout" in caplog.text
        assert limiter.snapshot().in_flight == 0


async def test_a_redis_that_never_answers_raises_when_asked_to() -> None:
    async with (
        silent_server() as port,
        silent_limiter(port, on_redis_error="raise", sleep=Sleeper()) as limiter,
    ):
        with pytest.raises(SharedBudgetUnavailableError):
            await asyncio.wait_for(hold(limiter), GUARD)
        assert limiter.snapshot().in_flight == 0


@pytest.mark.parametrize("how", ["cancel", "timeout"])
async def test_cancelled_while_a_redis_that_never_answers_is_asked(how: str) -> None:
    async with silent_server() as port, silent_limiter(port, sleep=Sleeper()) as limiter:
        scope: AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if how == "timeout":
            scope, expire = deadline()

        async def victim() -> None:
            async with scope:
                await forever(limiter)

        task = asyncio.create_task(victim())
        await steps(20)  # connected (or connecting), waiting for an answer
        assert not task.done()
        if how == "cancel":
            task.cancel()
        else:
            expire()
        expected = asyncio.CancelledError if how == "cancel" else asyncio.TimeoutError
        with pytest.raises(expected):
            await asyncio.wait_for(asyncio.shield(task), GUARD)
        assert limiter.snapshot().in_flight == 0
        # The abandoned call to Redis ends by itself, at its socket timeout.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), GUARD)
