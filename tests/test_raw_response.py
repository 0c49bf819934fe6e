"""``client.with_raw_response``: the answer's status, headers, request id and wire JSON
beside the model, from the one request the plain call makes.

The annotated assignments are the type tests: mypy --strict runs over this file.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sendkit_async import (
    APIResponse,
    AsyncSendKit,
    CampaignAnalytics,
    CampaignPage,
    ClientClosedError,
    DailyStats,
    InternalServerError,
    Mailbox,
    MemoryCache,
    NotFoundError,
    Overview,
    RateLimitHints,
    RetryPolicy,
    from_wire,
)
from sendkit_async._transport import MASK
from sendkit_async.resources.analytics import Analytics
from sendkit_async.resources.campaigns import Campaigns
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import KEY, Script, VirtualClock, fixture, json_reply, wait_until

CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"
BODY = fixture("analytics_campaign_current.json")
HEADERS = {
    "X-Request-Id": "req_7f3a",
    "X-RateLimit-Limit": "120",
    "X-RateLimit-Remaining": "117",
    "X-RateLimit-Reset": "30",
    "X-Custom": "kept",
}


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


def make(server: Script, **kw: Any) -> AsyncSendKit:
    kw.setdefault("sleep", no_wait)
    return AsyncSendKit(api_key=KEY, base_url=server.base_url, **kw)


async def test_status_headers_request_id_and_json_are_what_the_server_sent(
    server: Script,
) -> None:
    wire = json.dumps(BODY, indent=1).encode()  # exact bytes, not aiohttp's re-encoding
    server.add(lambda _: web.Response(body=wire, headers=HEADERS, content_type="application/json"))
    async with make(server) as client:
        resp: APIResponse[CampaignAnalytics] = await client.with_raw_response.analytics.campaign(
            CAMPAIGN
        )
    assert server.count() == 1  # one request, counted at the server
    assert resp.status_code == 200
    assert resp.content == wire
    assert resp.text == wire.decode()
    assert resp.json() == BODY
    assert resp.json() is not resp.json()  # a fresh object: mutating one changes nothing
    assert resp.request_id == "req_7f3a"
    for name, value in HEADERS.items():
        assert resp.headers[name] == value
        assert resp.headers[name.lower()] == value  # case-insensitive
        assert resp.headers[name.upper()] == value
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers.getall("x-custom") == ["kept"]
    with pytest.raises(TypeError):
        resp.headers["X-Custom"] = "changed"  # type: ignore[index]  # read-only
    assert resp.rate_limit == RateLimitHints(limit=120, remaining=117, reset_after=30.0)
    assert resp.method == "GET"
    assert resp.url == f"{server.base_url}/v1/analytics/campaigns/{CAMPAIGN}"
    assert resp.attempts == 1
    model: CampaignAnalytics = resp.parse()
    assert model == from_wire(BODY["data"], CampaignAnalytics)
    assert repr(resp) == (
        f"<APIResponse [200] GET {resp.url} request_id='req_7f3a' -> CampaignAnalytics>"
    )


async def test_the_raw_call_passes_arguments_and_options_through(server: Script) -> None:
    server.add(lambda _: json_reply(BODY))
    async with make(server) as client:
        resp = await client.with_raw_response.analytics.campaign(
            CAMPAIGN, from_="2025-06-01", to="2025-06-30", retry=RetryPolicy(max_retries=0)
        )
    assert server.raw_paths == [f"/v1/analytics/campaigns/{CAMPAIGN}?from=2025-06-01&to=2025-06-30"]
    assert resp.url == server.base_url + server.raw_paths[0]
    assert resp.request_id is None  # the server sent none
    assert resp.rate_limit == RateLimitHints()  # nor any rate-limit header


async def test_after_retries_the_answer_is_the_final_one_and_attempts_counts_them(
    server: Script,
) -> None:
    busy = {"error": "Service Unavailable", "message": "busy", "code": 503}
    server.add(
        lambda _: json_reply(busy, 503, {"X-Request-Id": "req_first"}),
        lambda _: json_reply(busy, 503, {"X-Request-Id": "req_second"}),
        lambda _: json_reply(BODY, 200, {"X-Request-Id": "req_third"}),
    )
    async with make(server) as client:
        resp = await client.with_raw_response.analytics.campaign(CAMPAIGN)
        assert client.stats.requests == 3  # the client's own counters still see every attempt
    assert server.count() == 3
    assert resp.attempts == 3
    assert resp.status_code == 200
    assert resp.request_id == "req_third"


async def test_elapsed_is_the_call_time_on_the_clients_clock(server: Script) -> None:
    clock = VirtualClock(start=100.0)

    def slow(_: web.Request) -> web.Response:
        clock.now += 2.5  # the answer "takes" 2.5 s of the client's clock
        return json_reply(BODY)

    server.add(slow)
    async with make(server, clock=clock.time, sleep=clock.sleep) as client:
        resp = await client.with_raw_response.analytics.campaign(CAMPAIGN)
    assert resp.elapsed == 2.5


async def test_errors_are_the_plain_calls_own(server: Script) -> None:
    missing = {"error": "Not Found", "message": "The requested resource was not found", "code": 404}
    headers = {"X-Request-Id": "req_404"}
    server.add(
        lambda _: json_reply(missing, 404, headers), lambda _: json_reply(missing, 404, headers)
    )
    async with make(server) as client:
        with pytest.raises(NotFoundError) as raw_error:
            await client.with_raw_response.analytics.campaign(CAMPAIGN)
        with pytest.raises(NotFoundError) as plain_error:
            await client.analytics.campaign(CAMPAIGN)
    raw, plain = raw_error.value, plain_error.value
    assert (raw.status, raw.request_id, raw.body, raw.attempts, str(raw)) == (
        plain.status,
        plain.request_id,
        plain.body,
        plain.attempts,
        str(plain),
    )
    assert raw.headers == plain.headers
    # An error's headers are a read-only dict in the server's spelling (aiohttp's server
    # writes X-Request-ID), not case-insensitive: its request_id attribute is the lookup.
    assert {k.lower(): v for k, v in raw.headers.items()}["x-request-id"] == "req_404"
    assert raw.code == 404 and json.loads(raw.body) == missing
    assert server.count() == 2


async def test_a_final_5xx_raises_after_retries_like_the_plain_call(server: Script) -> None:
    server.default = lambda _: json_reply({"error": "Bad Gateway"}, 502)
    async with make(server, retry=RetryPolicy(max_retries=1)) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.with_raw_response.analytics.overview()
    assert caught.value.attempts == 2
    assert server.count() == 2


async def test_the_key_never_shows_in_a_raw_response(server: Script) -> None:
    echoed = json.loads(json.dumps(BODY))
    echoed["data"]["campaign"]["name"] = f"echo {KEY}"

    def echo(request: web.Request) -> web.Response:
        key = request.headers["X-Api-Key"]
        return json_reply(echoed, 200, {"X-Echo": f"key={key}", "X-Request-Id": key})

    server.add(echo)
    async with make(server) as client:
        resp = await client.with_raw_response.analytics.campaign(CAMPAIGN)
    shown = [
        resp.text,
        resp.content.decode(),
        json.dumps(resp.json()),
        json.dumps(dict(resp.headers)),
        repr(resp),
        str(resp.request_id),
        resp.url,
        repr(resp.parse()),
    ]
    assert not [text for text in shown if KEY in text]
    assert resp.headers["X-Echo"] == f"key={MASK}"
    assert resp.parse().campaign.name == f"echo {MASK}"  # the model is parsed from the masked body


async def test_concurrent_raw_calls_each_get_their_own_answer(server: Script) -> None:
    def by_id(request: web.Request) -> web.Response:
        campaign_id = request.path.rsplit("/", 1)[1]
        body = json.loads(json.dumps(BODY))
        body["data"]["campaign"]["id"] = campaign_id
        return json_reply(body, 200, {"X-Request-Id": "req_" + campaign_id})

    server.default = by_id
    ids = [f"{n:024x}" for n in range(30)]
    async with make(server) as client:
        raw = client.with_raw_response
        responses = await asyncio.gather(*(raw.analytics.campaign(i) for i in ids))
    assert [r.request_id for r in responses] == ["req_" + i for i in ids]
    assert [r.parse().campaign.id for r in responses] == ids
    assert [r.attempts for r in responses] == [1] * 30
    assert server.count() == 30


async def test_plain_calls_are_untouched_by_the_raw_view(server: Script) -> None:
    server.default = lambda _: json_reply(BODY)
    async with make(server) as client:
        await client.with_raw_response.analytics.campaign(CAMPAIGN)
        assert "_caller" not in vars(client)  # the recording copy was a throwaway
        assert (
            await client.analytics.campaign(CAMPAIGN)
            == (await client.with_raw_response.analytics.campaign(CAMPAIGN)).parse()
        )
        assert client.stats.requests == 3


async def test_a_raw_call_sends_its_own_request_past_the_cache_and_coalescing(
    server: Script,
) -> None:
    server.default = lambda _: json_reply(BODY, 200, HEADERS)
    async with make(server, cache=MemoryCache(maxsize=8, ttl=60)) as client:
        plain = await client.analytics.campaign(CAMPAIGN)  # fills the cache
        assert await client.analytics.campaign(CAMPAIGN) == plain  # a hit
        assert server.count() == 1
        together = await asyncio.gather(
            *(client.with_raw_response.analytics.campaign(CAMPAIGN) for _ in range(3))
        )
        assert [r.status_code for r in together] == [200, 200, 200]
        assert [r.request_id for r in together] == ["req_7f3a"] * 3
        assert all(r.parse() == plain for r in together)
        assert server.count() == 4  # one request each, none shared, none from the cache
        assert (client.stats.cache_hits, client.stats.coalesced) == (1, 0)


async def test_a_with_options_view_keeps_its_options_in_the_raw_view(server: Script) -> None:
    server.default = lambda _: json_reply({"error": "Bad Gateway"}, 502)
    async with make(server) as client:
        once = client.with_options(max_retries=0)
        with pytest.raises(InternalServerError):
            await once.with_raw_response.analytics.mailboxes()
    assert server.count() == 1


# -- every resource method, through the raw view, against the simulator ------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=60, seed=11)) as s:
        yield s


RESOURCES: dict[str, type[Any]] = {"analytics": Analytics, "campaigns": Campaigns}
ITEM_ITERATORS = {("campaigns", "iter"), ("campaigns", "iter_ids")}
"""Deliberately without a raw form: they yield campaigns, a response belongs to a page."""


def public_methods() -> set[tuple[str, str]]:
    """Every public coroutine or async-generator method of every resource class."""
    return {
        (area, name)
        for area, cls in RESOURCES.items()
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    }


def test_every_public_resource_method_is_wrapped() -> None:
    client = AsyncSendKit(api_key=KEY)
    raw = client.with_raw_response
    methods = public_methods()
    assert methods >= ITEM_ITERATORS
    for area, name in methods - ITEM_ITERATORS:
        wrapped = getattr(getattr(raw, area), name)
        assert wrapped.__wrapped__ == getattr(getattr(client, area), name), (area, name)
        plain = getattr(RESOURCES[area], name)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(plain)
    for area, name in ITEM_ITERATORS:
        assert not hasattr(getattr(raw, area), name)
    # Nothing on the raw view that the resources lack.
    for area in RESOURCES:
        extra = set(type(getattr(raw, area)).__slots__) - {n for a, n in methods if a == area}
        assert not extra


async def test_every_resource_method_answers_through_the_raw_view(sim: Simulator) -> None:
    cid = sim.campaign_ids[4]
    calls: dict[tuple[str, str], Callable[[Any], Any]] = {
        ("analytics", "campaign"): lambda r: r.campaign(cid),
        ("analytics", "overview"): lambda r: r.overview(),
        ("analytics", "daily"): lambda r: r.daily(subsequence="main"),
        ("analytics", "campaign_daily"): lambda r: r.campaign_daily(cid, from_="2025-06-01"),
        ("analytics", "mailboxes"): lambda r: r.mailboxes(),
        ("campaigns", "list"): lambda r: r.list(limit=7),
        ("campaigns", "pages"): lambda r: r.pages(page_size=25),
    }
    assert set(calls) == public_methods() - ITEM_ITERATORS  # a new endpoint must be added here
    async with AsyncSendKit(api_key="sk_raw_test", base_url=sim.base_url) as client:
        for (area, name), call in calls.items():
            raw_area = getattr(client.with_raw_response, area)
            plain_area = getattr(client, area)
            before = sim.stats.requests_total
            if name == "pages":
                responses = [r async for r in call(raw_area)]
                plain = [p async for p in call(plain_area)]
            else:
                responses = [await call(raw_area)]
                plain = [await call(plain_area)]
            sent = sim.stats.requests_total - before
            assert sent == 2 * len(responses), (area, name)  # one request per answer, not two
            assert [r.parse() for r in responses] == plain, (area, name)
            for resp in responses:
                assert isinstance(resp, APIResponse)
                assert resp.status_code == 200 and resp.attempts == 1
                assert resp.json()["success"] is True
                assert resp.headers["Content-Type"].startswith("application/json")


async def test_pages_yields_one_response_per_page_request(sim: Simulator) -> None:
    async with AsyncSendKit(api_key="sk_raw_test", base_url=sim.base_url) as client:
        before = sim.stats.requests_total
        pages: list[APIResponse[CampaignPage]] = [
            resp async for resp in client.with_raw_response.campaigns.pages(page_size=25)
        ]
        assert sim.stats.requests_total - before == 3
        assert [len(p.parse().items) for p in pages] == [25, 25, 10]
        assert [p.json()["pagination"]["hasMore"] for p in pages] == [True, True, False]
        assert "cursor=" not in pages[0].url
        assert f"cursor={pages[0].parse().pagination.next_cursor}" in pages[1].url
        ids = [c.id for p in pages for c in p.parse().items]
        assert ids == [c.id async for c in client.campaigns.iter(page_size=25)]

        before = sim.stats.requests_total
        async for first in client.with_raw_response.campaigns.pages(page_size=25):
            assert first.parse().pagination.has_more
            break  # leaving early sends nothing more, and closes the listing
        assert sim.stats.requests_total - before == 1


async def test_the_types_of_the_raw_view(sim: Simulator) -> None:
    """Each raw method's result type is APIResponse of the plain method's (mypy checks)."""
    cid = sim.campaign_ids[0]
    async with AsyncSendKit(api_key="sk_raw_test", base_url=sim.base_url) as client:
        raw = client.with_raw_response
        analytics: CampaignAnalytics = (await raw.analytics.campaign(cid)).parse()
        overview: Overview = (await raw.analytics.overview()).parse()
        daily: list[DailyStats] = (await raw.analytics.daily()).parse()
        per_campaign: list[DailyStats] = (await raw.analytics.campaign_daily(cid)).parse()
        boxes: list[Mailbox] = (await raw.analytics.mailboxes()).parse()
        page: CampaignPage = (await raw.campaigns.list(limit=3)).parse()
        hints: RateLimitHints = (await raw.campaigns.list(limit=3)).rate_limit
        headers = (await raw.analytics.overview()).headers
        first: str | None = headers.get("content-type")
    assert analytics.campaign.id == cid
    assert overview.total_sent is not None
    assert daily and per_campaign and boxes and len(page.items) == 3
    assert hints == RateLimitHints()  # the simulator sends none without a rate limit
    assert first is not None and first.startswith("application/json")


async def test_rate_limit_hints_of_the_simulators_headers() -> None:
    config = SimulatorConfig(campaigns=5, seed=3, rate_limit=50.0, burst=10)
    async with (
        run_simulator(config) as sim,
        AsyncSendKit(api_key="sk_raw_test", base_url=sim.base_url) as client,
    ):
        resp = await client.with_raw_response.analytics.overview()
    assert resp.rate_limit.limit == int(resp.headers["X-RateLimit-Limit"]) == 10
    assert resp.rate_limit.remaining == int(resp.headers["X-RateLimit-Remaining"])


async def test_a_cancelled_raw_call_leaves_the_client_as_a_cancelled_plain_call_does(
    server: Script,
) -> None:
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return json_reply(BODY)

    server.add(held)
    server.default = lambda _: json_reply(BODY)
    async with make(server) as client:
        task = asyncio.ensure_future(client.with_raw_response.analytics.campaign(CAMPAIGN))
        await wait_until(lambda: server.in_flight == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert client.rate_limit.in_flight == 0  # its slot was given back
        resp = await client.with_raw_response.analytics.campaign(CAMPAIGN)
        assert resp.attempts == 1 and resp.parse().campaign.id == BODY["data"]["campaign"]["id"]


async def test_a_closed_client_refuses_raw_calls_as_plain_ones(server: Script) -> None:
    client = make(server)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.with_raw_response.analytics.overview()
    with pytest.raises(ClientClosedError):
        _ = [p async for p in client.with_raw_response.campaigns.pages()]
    assert server.count() == 0


TYPE_CHECKS = """
from sendkit_async import APIResponse, AsyncSendKit, CampaignAnalytics, DailyStats


async def use(client: AsyncSendKit) -> None:
    resp = await client.with_raw_response.analytics.campaign("664a1b2c3d4e5f6a7b8c9d02")
    fine: APIResponse[CampaignAnalytics] = resp
    rows: list[DailyStats] = (await client.with_raw_response.analytics.daily()).parse()
    wrong_type: APIResponse[DailyStats] = resp  # E
    wrong_model: int = resp.parse()  # E
    await client.with_raw_response.analytics.campaign(42)  # E
    await client.with_raw_response.analytics.overview(bogus=1)  # E
    await client.with_raw_response.campaigns.list(limit="5")  # E
    async for page in client.with_raw_response.campaigns.pages(page_size=2):
        wrong_page: str = page.parse()  # E
    status: str = resp.status_code  # E
"""


@pytest.mark.timeout(300)  # one mypy run with a cold cache
def test_mypy_sees_the_raw_views_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw view is typed, not Any: mypy rejects exactly the lines marked ``# E``."""
    import mypy.api

    file = tmp_path / "uses_raw.py"
    file.write_text(TYPE_CHECKS)
    monkeypatch.setenv("MYPYPATH", str(Path(__file__).resolve().parent.parent))
    options = ["--strict", "--python-version", "3.10", "--config-file", ""]
    out, err, status = mypy.api.run([*options, "--cache-dir", str(tmp_path / "c"), str(file)])
    assert status == 1, err + out
    flagged = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    marked = {n for n, line in enumerate(TYPE_CHECKS.splitlines(), 1) if line.endswith("# E")}
    assert flagged == marked, out


async def test_raw_calls_leave_no_garbage_cycles(server: Script) -> None:
    """Each raw call's throwaway client copy is freed at once, as a plain call's objects are
    (a cycle per call would make the garbage collector pause ever more often)."""
    page = fixture("campaigns_page.json")
    page["pagination"]["hasMore"] = False
    server.default = lambda request: json_reply(page if "campaigns?" in request.path_qs else BODY)
    async with make(server) as client:
        raw = client.with_raw_response
        await raw.analytics.campaign(CAMPAIGN)  # first use: caches, pools, lazy imports
        _ = [p async for p in raw.campaigns.pages()]
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await raw.analytics.campaign(CAMPAIGN)
                _ = [p async for p in raw.campaigns.pages()]
            assert gc.collect() == 0
        finally:
            gc.enable()
    assert server.count() == 42
