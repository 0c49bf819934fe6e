"""The response cache: TTL (on a fake clock), bounds, ``cache=False``, ``max_age``,
Cache-Control/Age, negative 404s, separation by key, and failures read as misses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sendkit_async import (
    AsyncSendKit,
    CachedResponse,
    ConfigurationError,
    InternalServerError,
    InvalidRequestError,
    MemoryCache,
    NotFoundError,
    PermissionDeniedError,
    RateLimiter,
    ResponseCache,
)
from sendkit_async._caching import freshness
from tests.helpers import KEY, FakeClock, Script, fixture, json_reply, reply, wait_until

CID = "664a1b2c3d4e5f6a7b8c9d02"
PATH = f"/v1/analytics/campaigns/{CID}"
BODY = fixture("analytics_campaign_current.json")
MISSING = {"error": "Not Found", "message": "The requested resource was not found", "code": 404}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> MemoryCache:
    return MemoryCache(maxsize=8, ttl=30, negative_ttl=5, clock=clock.time)


@pytest.fixture
async def client(server: Script, cache: MemoryCache) -> AsyncIterator[AsyncSendKit]:
    server.default = lambda _: json_reply(BODY)
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache) as c:
        yield c


# -- MemoryCache alone ---------------------------------------------------------------------


async def test_memory_cache_expires_on_its_clock(clock: FakeClock, cache: MemoryCache) -> None:
    await cache.set("k", CachedResponse(200, b"{}"), 30)
    clock.now += 29.5
    hit = await cache.get("k")
    assert hit is not None
    assert hit[0].body == b"{}"
    assert hit[1] == pytest.approx(29.5)
    clock.now += 0.5
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_memory_cache_is_bounded_least_recently_used_out(clock: FakeClock) -> None:
    cache = MemoryCache(maxsize=3, clock=clock.time)
    for key in "abc":
        await cache.set(key, CachedResponse(200, key.encode()), 30)
    assert await cache.get("a") is not None  # "b" is now the least recently used
    await cache.set("d", CachedResponse(200, b"d"), 30)
    assert len(cache) == 3
    assert await cache.get("b") is None
    assert [await cache.get(k) is not None for k in "acd"] == [True, True, True]


async def test_an_entry_already_older_than_its_ttl_is_not_kept(clock: FakeClock) -> None:
    cache = MemoryCache(clock=clock.time)
    await cache.set("k", CachedResponse(200, b"{}", age=31), 30)
    assert await cache.get("k") is None
    await cache.set("k", CachedResponse(200, b"{}", age=25), 30)
    clock.now += 4
    hit = await cache.get("k")
    assert hit is not None
    assert hit[1] == pytest.approx(29)
    clock.now += 1
    assert await cache.get("k") is None


def test_bad_settings_are_refused() -> None:
    # A ConfigurationError (a SendKitError, and still a ValueError), as for every option.
    with pytest.raises(ConfigurationError, match="maxsize"):
        MemoryCache(maxsize=0)
    with pytest.raises(ConfigurationError, match="ttl"):
        MemoryCache(ttl=-1)
    with pytest.raises(ConfigurationError, match="stale_while_revalidate"):
        MemoryCache(stale_while_revalidate=float("nan"))
    with pytest.raises(ConfigurationError):
        AsyncSendKit(api_key=KEY, cache=object())  # type: ignore[arg-type]


def test_cache_control_parsing() -> None:
    assert freshness({}, 30) == 30
    assert freshness({"Cache-Control": "private, max-age=5"}, 30) == 5
    assert freshness({"cache-control": "max-age=600"}, 30) == 30  # our TTL bounds staleness
    assert freshness({"Cache-Control": "no-store"}, 30) == 0
    assert freshness({"Cache-Control": "max-age=60, no-cache"}, 30) == 0
    assert freshness({"Cache-Control": 'max-age="7"'}, 30) == 7
    assert freshness({"Cache-Control": "max-age=soon"}, 30) == 0


# -- through the client --------------------------------------------------------------------


async def test_a_hit_sends_nothing_until_the_ttl_ends(
    server: Script, client: AsyncSendKit, clock: FakeClock
) -> None:
    first = await client.analytics.campaign(CID)
    clock.now += 29
    again = await client.analytics.campaign(CID)
    assert again == first
    assert server.count(PATH) == 1
    assert client.stats.cache_hits == 1
    assert client.stats.requests == 1  # no attempt: no rate-limit token either
    clock.now += 1
    await client.analytics.campaign(CID)
    assert server.count(PATH) == 2


async def test_cache_false_neither_reads_nor_stores(
    server: Script, client: AsyncSendKit, cache: MemoryCache
) -> None:
    await client.analytics.campaign(CID, cache=False)
    assert len(cache) == 0
    await client.analytics.campaign(CID)
    await client.analytics.campaign(CID, cache=False)
    assert server.count(PATH) == 3
    off = client.with_options(cache=False)
    await off.analytics.campaign(CID)
    await off.analytics.overview()
    assert server.count(PATH) == 4
    assert client.stats.cache_hits == 0


async def test_with_options_can_use_another_cache(server: Script, client: AsyncSendKit) -> None:
    other = MemoryCache()
    view = client.with_options(cache=other)
    await view.analytics.campaign(CID)
    await view.analytics.campaign(CID)
    assert len(other) == 1
    assert server.count(PATH) == 1


async def test_views_with_other_caches_each_fill_their_own(
    server: Script, cache: MemoryCache
) -> None:
    # Two views over two caches never share a request: the shared request would fill
    # only the cache of the view that started it.
    gate = asyncio.Event()

    async def held(_: Any) -> Any:
        await gate.wait()
        return json_reply(BODY)

    server.default = held
    other = MemoryCache()
    limiter = RateLimiter(max_concurrency=4, adaptive=False)  # no slow start: both go at once
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, cache=cache, rate_limiter=limiter
    ) as client:
        view = client.with_options(cache=other)
        first = asyncio.ensure_future(client.analytics.campaign(CID))
        second = asyncio.ensure_future(view.analytics.campaign(CID))
        try:
            await wait_until(lambda: server.count(PATH) == 2 or client.stats.coalesced == 1)
        finally:
            gate.set()
        assert await first == await second
    assert (len(cache), len(other)) == (1, 1)
    assert client.stats.coalesced == 0


async def test_max_age_bounds_the_age_of_a_hit(
    server: Script, client: AsyncSendKit, clock: FakeClock
) -> None:
    await client.analytics.campaign(CID)
    clock.now += 10
    await client.analytics.campaign(CID, max_age=60)
    assert server.count(PATH) == 1
    await client.analytics.campaign(CID, max_age=5)  # too old: fetched and stored again
    assert server.count(PATH) == 2
    await client.analytics.campaign(CID, max_age=5)
    assert server.count(PATH) == 2
    with pytest.raises(InvalidRequestError, match="max_age"):
        await client.analytics.campaign(CID, max_age=-1)


async def test_cache_control_and_age_from_the_server(
    server: Script, client: AsyncSendKit, clock: FakeClock, cache: MemoryCache
) -> None:
    server.add(reply(BODY, Cache_Control="no-store"))
    await client.analytics.campaign(CID)
    assert len(cache) == 0
    server.add(reply(BODY, Cache_Control="max-age=10", Age="6"))
    await client.analytics.campaign(CID)
    clock.now += 3.5  # 9.5 s old
    await client.analytics.campaign(CID)
    assert server.count(PATH) == 2
    clock.now += 0.5  # 10 s old: expired
    await client.analytics.campaign(CID)
    assert server.count(PATH) == 3


async def test_a_404_is_remembered_for_the_negative_ttl_only(
    server: Script, client: AsyncSendKit, clock: FakeClock
) -> None:
    server.default = lambda _: json_reply(MISSING, 404)
    with pytest.raises(NotFoundError) as first:
        await client.analytics.campaign(CID)
    with pytest.raises(NotFoundError) as cached:
        await client.analytics.campaign(CID)
    assert server.count(PATH) == 1
    assert (cached.value.status, cached.value.message, cached.value.attempts) == (
        404,
        first.value.message,
        0,
    )
    assert cached.value.url == first.value.url
    clock.now += 5
    with pytest.raises(NotFoundError):
        await client.analytics.campaign(CID)
    assert server.count(PATH) == 2


async def test_negative_ttl_zero_and_other_errors_are_never_cached(
    server: Script, clock: FakeClock
) -> None:
    cache = MemoryCache(negative_ttl=0, clock=clock.time)
    server.default = lambda _: json_reply(MISSING, 404)
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, cache=cache, max_retries=0
    ) as client:
        for _ in range(2):
            with pytest.raises(NotFoundError):
                await client.analytics.overview()
        server.default = lambda _: json_reply({"error": "boom"}, 500)
        for _ in range(2):
            with pytest.raises(InternalServerError):
                await client.analytics.mailboxes()
        assert len(cache) == 0
    assert len(server.requests) == 4


async def test_keys_and_workspaces_do_not_share_entries(server: Script, cache: MemoryCache) -> None:
    server.default = lambda _: json_reply(BODY)
    other_key = "sk_other_fedcba9876543210"
    platform = "sk_user_0123456789abcdef"
    clients = [
        AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache),
        AsyncSendKit(api_key=other_key, base_url=server.base_url, cache=cache),
        AsyncSendKit(api_key=platform, workspace_id="ws1", base_url=server.base_url, cache=cache),
        AsyncSendKit(api_key=platform, workspace_id="ws2", base_url=server.base_url, cache=cache),
        AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache),  # shares the first's
    ]
    for client in clients:
        async with client:
            await client.analytics.campaign(CID)
    assert server.count(PATH) == 4
    assert len(cache) == 4
    keys = list(cache._entries)
    assert not any(secret in k for k in keys for secret in (KEY, other_key, platform, "ws1"))
    assert all(k.endswith(f":GET:{PATH}") for k in keys)


async def test_the_query_is_part_of_the_key(server: Script, client: AsyncSendKit) -> None:
    await client.analytics.campaign(CID, from_="2026-01-01")
    await client.analytics.campaign(CID, from_="2026-01-02")
    await client.analytics.campaign(CID, from_="2026-01-01")
    assert server.count(PATH) == 2


async def test_the_analytics_endpoints_are_cached_the_listing_is_not(
    server: Script, client: AsyncSendKit
) -> None:
    def answer(request: Any) -> Any:
        if request.path == "/v1/campaigns":
            page = {"limit": 25, "total": 0, "hasMore": False, "nextCursor": None}
            return json_reply({"success": True, "data": [], "pagination": page})
        if request.path == "/v1/analytics/overview":
            return json_reply(fixture("analytics_overview.json"))
        return json_reply({"success": True, "data": []})

    server.default = answer
    for _ in range(2):
        await client.analytics.overview()
        await client.analytics.daily()
        await client.analytics.campaign_daily(CID)
        await client.analytics.mailboxes()
        await client.campaigns.list()
    assert len(server.requests) == 6
    assert server.count("/v1/campaigns") == 2


async def test_a_closed_client_answers_nothing_from_the_cache(client: AsyncSendKit) -> None:
    from sendkit_async import ClientClosedError

    await client.analytics.campaign(CID)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.analytics.campaign(CID)


class Broken(ResponseCache):
    async def get(self, key: str) -> tuple[CachedResponse, float] | None:
        raise RuntimeError("disk on fire")

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> None:
        raise RuntimeError("disk on fire")


async def test_a_failing_cache_is_a_miss_and_a_warning(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    server.default = lambda _: json_reply(BODY)
    caplog.set_level(logging.WARNING, "sendkit_async")
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=Broken()) as client:
        result = await client.analytics.campaign(CID)
    assert result.campaign.id == BODY["data"]["campaign"]["id"]
    messages = [r.getMessage() for r in caplog.records]
    assert "response cache failed to read (RuntimeError): a miss" in messages
    assert "response cache failed to store (RuntimeError): not cached" in messages
    assert all(KEY not in m for m in messages)


async def test_an_unreadable_entry_is_a_miss(
    server: Script, client: AsyncSendKit, cache: MemoryCache
) -> None:
    await client.analytics.campaign(CID)
    (key,) = cache._entries
    await cache.set(key, CachedResponse(200, b"not json"), 30)
    result = await client.analytics.campaign(CID)
    assert result.campaign.id == BODY["data"]["campaign"]["id"]
    assert server.count(PATH) == 2


# -- stale-while-revalidate ----------------------------------------------------------------


async def test_a_stale_answer_is_served_at_once_while_one_request_refreshes_it(
    server: Script, clock: FakeClock
) -> None:
    cache = MemoryCache(ttl=10, stale_while_revalidate=20, clock=clock.time)
    server.default = lambda _: json_reply(BODY)
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, cache=cache) as client:
        first = await client.analytics.campaign(CID)
        clock.now += 15  # stale, inside the grace window
        gate = asyncio.Event()

        async def held(_: Any) -> Any:
            await gate.wait()
            return json_reply(BODY)

        server.default = held
        stale = [await client.analytics.campaign(CID) for _ in range(3)]  # none waits
        assert stale == [first] * 3
        assert client.stats.cache_hits == 3
        await wait_until(lambda: server.in_flight == 1)
        assert len(server.requests) == 2  # one refresh for the three stale hits
        gate.set()
        await wait_until(lambda: len(client._core.flights) == 0)
        clock.now += 9  # the refreshed entry is 9 s old: fresh, no refresh
        await client.analytics.campaign(CID)
        assert len(server.requests) == 2
        clock.now += 30  # past freshness and grace: a miss, fetched in the foreground
        await client.analytics.campaign(CID)
        assert len(server.requests) == 3


async def test_a_failed_refresh_leaves_the_stale_answer_until_the_grace_ends(
    server: Script, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sendkit_async")
    cache = MemoryCache(ttl=10, stale_while_revalidate=20, clock=clock.time)
    server.default = lambda _: json_reply(BODY)
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, cache=cache, max_retries=0
    ) as client:
        first = await client.analytics.campaign(CID)
        server.default = lambda _: json_reply({"error": "Forbidden"}, 403)
        clock.now += 12
        assert await client.analytics.campaign(CID) == first
        await wait_until(lambda: len(client._core.flights) == 0)
        assert "a background refresh failed (PermissionDeniedError)" in caplog.messages
        assert await client.analytics.campaign(CID) == first  # still served, refreshed again
        await wait_until(lambda: len(client._core.flights) == 0)
        clock.now += 20
        with pytest.raises(PermissionDeniedError):
            await client.analytics.campaign(CID)
    assert len(server.requests) == 4
