"""The Redis server clock tests inject (``_server_clock``): every script that reads time
uses it, so tests move Redis time instead of sleeping. Production never sets it."""

from __future__ import annotations

import math
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from sendkit_async._redis import _scripts as scripts
from sendkit_async._redis._calls import _parse_counts, _parse_seconds
from tests.helpers import FakeClock
from tests.redis_fixtures import hgetall
from tests.test_redis_limiter import SERVER_T0, Factory, make, new_key, redis, settle

__all__ = ["make", "redis"]  # fixtures


async def nap(_: float) -> None:
    """The limiter's sleep: returns at once (the tests move the clock themselves)."""


async def test_every_script_that_reads_time_takes_the_injected_clock(
    make: Factory, redis: Redis
) -> None:
    clock = FakeClock(start=SERVER_T0)  # about 1.7e9 s before Redis's own clock
    a = make(api_key=new_key(), sleep=nap)
    a._server_clock = clock.time
    # ACQUIRE
    _, _, server_now = await a._acquire_once("")
    assert server_now == SERVER_T0
    # OBSERVE: counts the accepted answer in the 100 ms bucket of that time and closes
    # the gate from it.
    a.observe(200)
    a.cooldown(30.0)
    await settle(a)
    assert await hgetall(redis, a._keys[5]) == {str(math.floor(SERVER_T0 * 10)): "1"}
    reopen = float(await redis.get(a._keys[1]) or "nan")
    assert SERVER_T0 + 29 < reopen <= SERVER_T0 + 30
    # CHECK: the gate's time left follows the clock alone.
    left = await a._run(a._check, a._keys[1:2], [], _parse_seconds)
    assert left == round(reopen - SERVER_T0, 6)
    clock.now += 20
    assert await a._run(a._check, a._keys[1:2], [], _parse_seconds) == round(left - 20, 6)
    clock.now = reopen
    assert await a._run(a._check, a._keys[1:2], [], _parse_seconds) == 0
    # EPOCH (and COUNTS, which a leader behind a long gate reads again): a new budget.
    b = make(api_key=new_key(), sleep=nap)
    b._server_clock = clock.time
    await b._claim_epoch(1.0)
    assert float(await redis.get(b._keys[1]) or "nan") == reopen + 1.0
    epoch = float((await hgetall(redis, b._keys[4]))["epoch"])
    assert reopen + 1.0 < epoch <= reopen + 1.05
    server_now, _ = await b._run(b._counts, b._keys[5:6], ["10"], _parse_counts)
    assert server_now == reopen
    # The scripts that do not read time take no clock argument (LEAVE's are all ids).
    assert scripts.CLOCKED.isdisjoint({scripts.LEAVE, scripts.SCHEDULE})


class Recording:
    """Wraps a registered script: records the ARGV of every call."""

    def __init__(self, inner: AsyncScript) -> None:
        self.inner, self.script = inner, inner.script
        self.sent: list[list[str]] = []

    async def __call__(self, *, keys: list[str], args: list[str], client: Redis) -> Any:
        self.sent.append(args)
        return await self.inner(keys=keys, args=args, client=client)


async def test_without_the_clock_no_argument_is_added(make: Factory) -> None:
    a = make(api_key=new_key())
    acquire = a._acquire = Recording(a._acquire)  # type: ignore[assignment]
    await a._acquire_once("")
    assert len(acquire.sent[0]) == 11  # ACQUIRE's own ARGV: Redis reads its own TIME
    a._server_clock = FakeClock(start=SERVER_T0).time
    _, _, server_now = await a._acquire_once("")
    assert acquire.sent[1][:11] == acquire.sent[0]
    assert acquire.sent[1][11:] == [repr(SERVER_T0)]
    assert server_now == SERVER_T0
