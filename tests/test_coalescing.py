"""Single flight: identical concurrent single GETs share one request, its result or its error.

The test server holds every answer until the test releases it, so "concurrent" is
decided by the test, never by timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sendkit_async import (
    AsyncSendKit,
    CachedResponse,
    CampaignAnalytics,
    ClientClosedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimiter,
    ResponseCache,
    _flight,
)
from tests.helpers import KEY, Script, fixture, json_reply, wait_until

CID = "664a1b2c3d4e5f6a7b8c9d02"
PATH = f"/v1/analytics/campaigns/{CID}"
BODY = fixture("analytics_campaign_current.json")
FORBIDDEN = {"error": "Forbidden", "message": "You don't have permission", "code": 403}


class Held:
    """A handler that answers ``body`` with ``status`` once the test calls ``release()``."""

    def __init__(self, body: Any = BODY, status: int = 200) -> None:
        self.body = body
        self.status = status
        self.gate = asyncio.Event()
        self.arrived = 0

    async def __call__(self, _: web.Request) -> web.Response:
        self.arrived += 1
        await self.gate.wait()
        return json_reply(self.body, self.status)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
async def client(server: Script) -> AsyncIterator[AsyncSendKit]:
    async with make_client(server, max_retries=0) as c:
        yield c


def make_client(server: Script, **options: Any) -> AsyncSendKit:
    # adaptive=False: the limiter's slow start would send a first request alone, and
    # these tests decide what is in flight together.
    limiter = RateLimiter(max_concurrency=16, adaptive=False)
    return AsyncSendKit(api_key=KEY, base_url=server.base_url, rate_limiter=limiter, **options)


def spawn(n: int, call: Callable[[], Any]) -> list[asyncio.Task[Any]]:
    return [asyncio.ensure_future(call()) for _ in range(n)]


async def test_fifty_identical_calls_send_one_request_and_share_its_result(
    server: Script, client: AsyncSendKit
) -> None:
    held = server.default = Held()
    tasks = spawn(50, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 49)
    held.release()
    results = await asyncio.gather(*tasks)
    assert server.count(PATH) == 1
    assert all(r is results[0] for r in results)
    assert isinstance(results[0], CampaignAnalytics)
    assert results[0].campaign.id == BODY["data"]["campaign"]["id"]
    assert client.stats.requests == 1
    assert len(client._core.flights) == 0  # landed and forgotten


async def test_a_later_call_after_the_flight_landed_sends_again(
    server: Script, client: AsyncSendKit
) -> None:
    server.default = lambda _: json_reply(BODY)
    await client.analytics.campaign(CID)
    await client.analytics.campaign(CID)
    assert server.count(PATH) == 2
    assert client.stats.coalesced == 0


async def test_every_waiter_gets_the_same_error_in_its_own_copy(
    server: Script, client: AsyncSendKit
) -> None:
    held = server.default = Held(FORBIDDEN, 403)
    tasks = spawn(5, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 4)
    held.release()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert server.count(PATH) == 1
    assert all(type(e) is PermissionDeniedError for e in outcomes)
    errors = [e for e in outcomes if isinstance(e, PermissionDeniedError)]
    assert {(e.status, e.message, e.error, e.code, e.attempts) for e in errors} == {
        (403, "You don't have permission", "Forbidden", 403, 1)
    }
    assert len({id(e) for e in errors}) == 5  # one instance each: tracebacks stay apart


async def test_one_cancelled_waiter_leaves_the_request_to_the_others(
    server: Script, client: AsyncSendKit
) -> None:
    held = server.default = Held()
    first, second, third = spawn(3, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    held.release()
    a, b = await asyncio.gather(second, third)
    assert a is b
    assert a.campaign.id == BODY["data"]["campaign"]["id"]
    assert server.count(PATH) == 1


async def test_the_last_waiters_cancellation_cancels_the_request(
    server: Script, client: AsyncSendKit
) -> None:
    held = server.default = Held()
    tasks = spawn(2, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 1)
    (flight,) = client._core.flights._flights.values()
    shared = flight.task
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    # Once the last caller's cancellation is through, the request is gone (as for a
    # call of its own): cancelled, its slot given back.
    assert shared.cancelled()
    assert len(client._core.flights) == 0
    assert client.rate_limit.in_flight == 0
    # A new call starts a request of its own, not one into the cancelled flight.
    held.release()
    result = await client.analytics.campaign(CID)
    assert result.campaign.id == BODY["data"]["campaign"]["id"]
    assert held.arrived == 2


async def test_coalescing_off_per_client_and_per_view(server: Script) -> None:
    held = server.default = Held()
    async with make_client(server, coalesce=False) as client:
        tasks = spawn(3, lambda: client.analytics.campaign(CID))
        await wait_until(lambda: held.arrived == 3)
        on = client.with_options(coalesce=True)
        more = spawn(2, lambda: on.analytics.campaign(CID))
        await wait_until(lambda: held.arrived == 4 and client.stats.coalesced == 1)
        off = on.with_options(coalesce=False)
        last = spawn(2, lambda: off.analytics.campaign(CID))
        await wait_until(lambda: held.arrived == 6)
        held.release()
        await asyncio.gather(*tasks, *more, *last)
    assert server.count(PATH) == 6
    assert client.stats.coalesced == 1


async def test_other_paths_params_or_options_do_not_share(
    server: Script, client: AsyncSendKit
) -> None:
    held = server.default = Held()
    tasks = [
        asyncio.ensure_future(client.analytics.campaign(CID)),
        asyncio.ensure_future(client.analytics.campaign(CID, from_="2026-01-01")),
        asyncio.ensure_future(client.analytics.campaign("664a1b2c3d4e5f6a7b8c9d03")),
        asyncio.ensure_future(client.analytics.campaign(CID, timeout=5.0)),
        asyncio.ensure_future(client.analytics.campaign(CID)),  # shares the first
    ]
    await wait_until(lambda: held.arrived == 4 and client.stats.coalesced == 1)
    held.release()
    await asyncio.gather(*tasks)
    assert len(server.requests) == 4


async def test_aclose_ends_shared_requests_with_client_closed(server: Script) -> None:
    held = server.default = Held()
    client = make_client(server)
    tasks = spawn(3, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 2)
    await client.aclose()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(o) for o in outcomes] == [ClientClosedError] * 3
    assert len(client._core.flights) == 0
    held.release()


async def test_aclose_ends_shared_requests_on_a_borrowed_session(server: Script) -> None:
    held = server.default = Held()
    async with aiohttp.ClientSession() as session:
        client = make_client(server, session=session)
        tasks = spawn(2, lambda: client.analytics.campaign(CID))
        await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 1)
        (flight,) = client._core.flights._flights.values()
        await client.aclose()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(o) for o in outcomes] == [ClientClosedError] * 2
        assert flight.task.cancelled()  # the borrowed pool's request did not go on
        assert not session.closed
        held.release()


async def test_not_found_is_shared_too(server: Script, client: AsyncSendKit) -> None:
    missing = {"error": "Not Found", "message": "nope", "code": 404}
    held = server.default = Held(missing, 404)
    tasks = spawn(3, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: held.arrived == 1 and client.stats.coalesced == 2)
    held.release()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(o) for o in outcomes] == [NotFoundError] * 3
    assert server.count(PATH) == 1


async def test_bulk_runs_do_not_coalesce(server: Script, client: AsyncSendKit) -> None:
    held = server.default = Held()
    seen = []

    async def run() -> None:
        async for result in client.iter_campaigns([CID, CID, CID], concurrency=3):
            seen.append(result.ok)

    task = asyncio.ensure_future(run())
    await wait_until(lambda: held.arrived == 3)  # ids are not de-duplicated by iter_campaigns
    held.release()
    await task
    assert seen == [True, True, True]
    assert client.stats.coalesced == 0


class HangingStore(ResponseCache):
    """A cache whose ``set`` never returns (a Redis client built without timeouts)."""

    def __init__(self) -> None:
        super().__init__(ttl=30)
        self.sets = 0

    async def get(self, key: str) -> tuple[CachedResponse, float] | None:
        return None

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> None:
        self.sets += 1
        await asyncio.Event().wait()


async def test_aclose_leaves_no_shared_request_running(
    server: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer came, but the shared request hangs storing it: closing the client
    # must still end its callers (ClientClosedError) and leave no task behind.
    monkeypatch.setattr(_flight, "SETTLE_WAIT", 0.0)  # the bound, not a timing
    server.default = lambda _: json_reply(BODY)
    store = HangingStore()
    client = make_client(server, cache=store)
    tasks = spawn(2, lambda: client.analytics.campaign(CID))
    await wait_until(lambda: store.sets == 1)
    (flight,) = client._core.flights._flights.values()
    await client.aclose()
    assert flight.task.done()
    await wait_until(lambda: all(t.done() for t in tasks))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(o) for o in outcomes] == [ClientClosedError] * 2
    assert len(client._core.flights) == 0
