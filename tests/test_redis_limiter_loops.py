"""RedisRateLimiter used from one event loop after another: the blocking client's
private loop (which ends at ``close()``), then another client's, then ``asyncio.run``.

Its Redis connections and asyncio primitives belong to the loop that made them; the
limiter must outlive that loop without leaking a socket or failing a later call.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import Iterator

import pytest

from sendkit_async import AsyncSendKit, ClientClosedError, SendKit
from sendkit_async.redis_limiter import RedisRateLimiter
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import KEY
from tests.sync_helpers import served


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with served(lambda: run_simulator(SimulatorConfig(campaigns=5, seed=3))) as (simulator, _):
        yield simulator


def limiter_for(redis_url: str, sim: Simulator) -> RedisRateLimiter:
    prefix = f"sendkit:test:{secrets.token_hex(4)}"
    return RedisRateLimiter.from_url(redis_url, api_key=KEY, base_url=sim.base_url, prefix=prefix)


def test_one_limiter_serves_one_blocking_client_after_another(
    sim: Simulator, redis_url: str
) -> None:
    limiter = limiter_for(redis_url, sim)
    cid = sim.campaign_ids[0]
    try:
        with SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as first:
            answer = first.analytics.campaign(cid)
            assert first.stats.requests == 1
        with SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as second:
            assert second.analytics.campaign(cid) == answer
            assert second.stats.requests == 1
        assert limiter.shared  # both were admitted by Redis, not by the fallback
    finally:
        asyncio.run(limiter.aclose())
    gc.collect()  # a socket left on a dead loop would warn here (warnings are errors)


def test_closing_the_limiter_after_a_blocking_client(sim: Simulator, redis_url: str) -> None:
    limiter = limiter_for(redis_url, sim)
    with SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as client:
        client.analytics.campaign(sim.campaign_ids[1])
    asyncio.run(limiter.aclose())  # on a loop of its own: "Event loop is closed" before
    gc.collect()


def test_one_limiter_in_two_successive_asyncio_runs(sim: Simulator, redis_url: str) -> None:
    limiter = limiter_for(redis_url, sim)
    cid = sim.campaign_ids[2]

    async def call() -> int:
        async with AsyncSendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as c:
            await c.analytics.campaign(cid)
            return c.stats.requests

    try:
        assert asyncio.run(call()) == 1
        assert asyncio.run(call()) == 1
        assert limiter.shared
    finally:
        asyncio.run(limiter.aclose())
    gc.collect()


def test_two_running_clients_on_one_limiter_is_a_clear_error(
    sim: Simulator, redis_url: str
) -> None:
    limiter = limiter_for(redis_url, sim)
    cid = sim.campaign_ids[3]
    try:
        with SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as first:
            first.analytics.campaign(cid)  # its loop runs on and holds a Redis connection
            second = SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter)
            with second, pytest.raises(ClientClosedError, match="another running event loop"):
                second.analytics.campaign(cid)
            first.analytics.campaign(cid)  # the first is unharmed
        with SendKit(api_key=KEY, base_url=sim.base_url, rate_limiter=limiter) as third:
            third.analytics.campaign(cid)  # the first closed (and released): usable again
    finally:
        asyncio.run(limiter.aclose())
    gc.collect()
