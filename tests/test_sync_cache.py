"""The blocking client with a cache: a RedisCache's connections belong to the client's
private event loop, which ends at ``close()``; the cache must outlive it."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import Iterator

import pytest

from sendkit_async import MemoryCache, SendKit
from sendkit_async.redis_cache import RedisCache
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import KEY
from tests.sync_helpers import served


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with served(lambda: run_simulator(SimulatorConfig(campaigns=5, seed=3))) as (simulator, _):
        yield simulator


def test_a_redis_cache_serves_one_blocking_client_after_another(
    sim: Simulator, redis_url: str
) -> None:
    cache = RedisCache.from_url(redis_url, prefix=f"sendkit:test:{secrets.token_hex(4)}:")
    cid = sim.campaign_ids[0]
    try:
        with SendKit(api_key=KEY, base_url=sim.base_url, cache=cache) as first:
            answer = first.analytics.campaign(cid)
            assert first.stats.requests == 1
        # The first client's loop has ended: its Redis connections must have gone with it
        # (else this client's read fails, a miss, and they leak as unclosed sockets).
        with SendKit(api_key=KEY, base_url=sim.base_url, cache=cache) as second:
            assert second.analytics.campaign(cid) == answer
            stats = second.stats
        assert (stats.cache_hits, stats.requests) == (1, 0)
    finally:
        asyncio.run(cache.aclose())
    gc.collect()  # a socket left on a dead loop would warn here (warnings are errors)


def test_a_view_over_another_cache_releases_it_too(sim: Simulator, redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url, prefix=f"sendkit:test:{secrets.token_hex(4)}:")
    cid = sim.campaign_ids[1]
    try:
        with SendKit(api_key=KEY, base_url=sim.base_url, cache=MemoryCache()) as client:
            client.with_options(cache=cache).analytics.campaign(cid)
        with SendKit(api_key=KEY, base_url=sim.base_url, cache=cache) as again:
            again.analytics.campaign(cid)
            assert (again.stats.cache_hits, again.stats.requests) == (1, 0)
    finally:
        asyncio.run(cache.aclose())
    gc.collect()
