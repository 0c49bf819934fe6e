"""RedisCache against a real redis-server: shared by clients, aged on an injected clock,
and a Redis failure is a miss plus one warning, never a failed call."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from sendkit_async import AsyncSendKit, CachedResponse, ConfigurationError, NotFoundError
from sendkit_async.redis_cache import RedisCache
from tests.helpers import KEY, FakeClock, Script, fixture, json_reply
from tests.redis_fixtures import RedisServer, require_redis_server

CID = "664a1b2c3d4e5f6a7b8c9d02"
PATH = f"/v1/analytics/campaigns/{CID}"
BODY = fixture("analytics_campaign_current.json")
ROOT = Path(__file__).resolve().parent.parent


def prefix() -> str:
    return f"sendkit:test:{secrets.token_hex(4)}:"  # each test its own keys


async def test_two_processes_worth_of_clients_share_entries(server: Script, redis_url: str) -> None:
    server.default = lambda _: json_reply(BODY)
    clock = FakeClock(start=1_700_000_000.0)
    shared = prefix()
    one = RedisCache.from_url(redis_url, prefix=shared, clock=clock.time)
    two = RedisCache.from_url(redis_url, prefix=shared, clock=clock.time)
    async with one, two:
        async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=one) as a:
            first = await a.analytics.campaign(CID)
        async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=two) as b:
            clock.now += 12
            again = await b.analytics.campaign(CID, max_age=20)
            assert again == first
            assert server.count(PATH) == 1
            assert b.stats.cache_hits == 1
            await b.analytics.campaign(CID, max_age=10)  # 12 s old: fetched again
            assert server.count(PATH) == 2
            # Redis keeps it for 30 real seconds; by the processes' clock it has expired.
            clock.now += 30
            await b.analytics.campaign(CID)
            assert server.count(PATH) == 3
            assert b.stats.cache_hits == 1  # a miss, not a stale answer


async def test_entries_are_wire_json_with_a_redis_expiry(server: Script, redis_url: str) -> None:
    server.default = lambda _: json_reply(BODY, headers={"X-Request-Id": "req-1"})
    shared = prefix()
    async with RedisCache.from_url(redis_url, prefix=shared, ttl=30) as cache:
        async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache) as client:
            await client.analytics.campaign(CID)
        async with Redis.from_url(redis_url) as redis:
            (key,) = await redis.keys(shared + "*")
            value = await redis.get(key)
            ttl_ms = await redis.pttl(key)
    assert KEY.encode() not in key
    assert key.decode().endswith(f":GET:{PATH}")
    head, _, body = value.partition(b"\n")
    assert b'"s":200' in head
    assert b'"x-request-id":"req-1"' in head
    assert json.loads(body) == BODY
    assert 0 < ttl_ms <= 30_000


async def test_a_404_is_remembered_in_redis_too(server: Script, redis_url: str) -> None:
    missing = {"error": "Not Found", "message": "gone", "code": 404}
    server.default = lambda _: json_reply(missing, 404)
    cache = RedisCache.from_url(redis_url, prefix=prefix(), negative_ttl=5)
    async with cache, AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache) as client:
        for _ in range(3):
            with pytest.raises(NotFoundError, match="gone"):
                await client.analytics.campaign(CID)
    assert server.count(PATH) == 1


async def test_redis_down_is_a_miss_and_one_warning(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    require_redis_server()
    server.default = lambda _: json_reply(BODY)
    caplog.set_level(logging.INFO, "sendkit_async")
    redis = RedisServer()
    redis.start()
    clock = FakeClock(start=1_700_000_000.0)
    try:
        cache = RedisCache.from_url(redis.url, prefix=prefix(), retry_after=5, clock=clock.time)
        async with cache, AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache) as c:
            await c.analytics.campaign(CID)
            await c.analytics.campaign(CID)
            assert server.count(PATH) == 1
            redis.stop()
            for _ in range(3):  # every call still answered, from the API
                result = await c.analytics.campaign(CID)
                assert result.campaign.id == BODY["data"]["campaign"]["id"]
            assert server.count(PATH) == 4
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1
            assert "Redis failed" in warnings[0].getMessage()
            redis.start()  # an empty Redis on the same port
            clock.now += 5  # the rest is over: Redis is asked again
            await c.analytics.campaign(CID)
            await c.analytics.campaign(CID)
            assert server.count(PATH) == 5
            assert "response cache: Redis answers again" in [r.getMessage() for r in caplog.records]
    finally:
        redis.stop()


async def test_a_garbled_entry_is_a_miss(redis_url: str) -> None:
    shared = prefix()
    async with RedisCache.from_url(redis_url, prefix=shared) as cache:
        async with Redis.from_url(redis_url) as redis:
            await redis.set(shared + "k", b"{not json\n{}", px=10_000)
        assert await cache.get("k") is None
        entry = CachedResponse(200, b'{"a": 1}', {"content-type": "x"}, age=2, fresh_for=10)
        await cache.set("k", entry, 30)
        hit = await cache.get("k")
    assert hit is not None
    assert hit[0] == entry
    assert hit[1] >= 2.0


def test_importing_the_package_does_not_import_redis() -> None:
    code = "import sys, sendkit_async, sendkit_async.cache; print('redis' in sys.modules)"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


async def test_bad_settings_are_a_configuration_error() -> None:
    redis = Redis()  # never connects: nothing is sent
    try:
        with pytest.raises(ConfigurationError, match="retry_after"):
            RedisCache(redis, retry_after=-1)
        with pytest.raises(ConfigurationError, match="ttl"):
            RedisCache(redis, ttl=-1)
    finally:
        await redis.aclose()
