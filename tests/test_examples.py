"""The example web apps (examples/), each served by its real server on 127.0.0.1 and hit
over HTTP: aiohttp's AppRunner/TCPSite, and uvicorn in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fastapi import Request

from examples import aiohttp_app, fastapi_app
from sendkit_async import AsyncSendKit
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import KEY, Script, fixture, json_reply, reply, uvicorn_server, wait_until

FRAMEWORKS = ("aiohttp", "fastapi")
MISSING = "ffffffffffffffffffffffff"


class Served:
    """An example app being served: its URL, and what the test saw of its handlers."""

    def __init__(self) -> None:
        self.url = ""
        self.entered: list[str] = []  # paths whose handler started
        self.cancelled: list[str] = []  # paths whose SendKit call was cancelled


@asynccontextmanager
async def serve_aiohttp(options: dict[str, Any]) -> AsyncIterator[Served]:
    served = Served()
    app = aiohttp_app.make_app(**options)

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        served.entered.append(request.path)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            served.cancelled.append(request.path)
            raise

    app.middlewares.append(record)  # inside the example's error middleware
    # handler_cancellation: as the example's __main__ runs it (off by default since 3.9).
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        served.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield served
    finally:
        await runner.cleanup()


class _Collect(logging.Handler):
    def __init__(self, served: Served) -> None:
        super().__init__(logging.INFO)
        self.served = served

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("client went away: cancelled GET "):
            self.served.cancelled.append(record.getMessage().rsplit(" ", 1)[1])


@asynccontextmanager
async def serve_fastapi(options: dict[str, Any]) -> AsyncIterator[Served]:
    served = Served()
    app = fastapi_app.create_app(**options)

    def recording_client(request: Request) -> AsyncSendKit:
        served.entered.append(request.url.path)
        return fastapi_app.get_sendkit(request)

    app.dependency_overrides[fastapi_app.get_sendkit] = recording_client
    logger = logging.getLogger("examples.fastapi_app")
    handler, level = _Collect(served), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with uvicorn_server(app) as url:
            served.url = url
            yield served
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def serve(framework: str, **options: Any) -> contextlib.AbstractAsyncContextManager[Served]:
    """Serve the example app of ``framework``; ``options`` go to its AsyncSendKit."""
    return serve_aiohttp(options) if framework == "aiohttp" else serve_fastapi(options)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=30, seed=11)) as s:
        yield s


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], Any]:
    async with http.get(url) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, dict(resp.headers), body


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_the_app_serves_campaigns_and_maps_404(framework: str, sim: Simulator) -> None:
    campaign_id = sim.campaign_ids[4]
    async with AsyncSendKit(api_key=KEY, base_url=sim.base_url) as direct:
        expected = await direct.analytics.campaign(campaign_id)
        overview = await direct.analytics.overview()
    async with (
        serve(framework, api_key=KEY, base_url=sim.base_url) as app,
        aiohttp.ClientSession() as http,
    ):
        status, _, body = await get(http, f"{app.url}/campaigns/{campaign_id}")
        assert status == 200
        assert body == {
            "id": campaign_id,
            "name": expected.campaign.name,
            "sent": expected.sent,
            "reply_rate": expected.reply_rate,
        }
        assert expected.sent > 0
        status, _, body = await get(http, f"{app.url}/campaigns/{MISSING}")
        assert (status, body) == (404, {"detail": "campaign not found"})
        status, _, body = await get(http, f"{app.url}/overview")
        assert status == 200
        assert body == {"total_sent": overview.total_sent, "campaigns": overview.total_campaigns}
    assert sim.stats.by_status == {200: 4, 404: 1}  # 2 by the direct client, 3 by the app


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_long_upstream_rate_limit_is_a_503_with_retry_after(
    framework: str, server: Script
) -> None:
    # Retry-After 7 s is past the examples' max_wait of 2 s: answered at once, not slept.
    server.add(reply({"error": "Too Many Requests", "code": 429}, 429, Retry_After="7"))
    async with (
        serve(framework, api_key=KEY, base_url=server.base_url) as app,
        aiohttp.ClientSession() as http,
    ):
        status, headers, body = await get(http, f"{app.url}/campaigns/{MISSING}")
    assert (status, body) == (503, {"detail": "analytics busy"})
    assert headers["Retry-After"] == "7"
    assert server.count() == 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_an_upstream_that_keeps_failing_is_a_502_after_the_retries(
    framework: str, server: Script
) -> None:
    server.default = reply({"error": "Internal Server Error", "code": 500}, 500)
    async with (
        serve(framework, api_key=KEY, base_url=server.base_url) as app,
        aiohttp.ClientSession() as http,
    ):
        status, headers, body = await get(http, f"{app.url}/campaigns/{MISSING}")
    assert (status, body) == (502, {"detail": "analytics unavailable"})
    assert "Retry-After" not in headers
    assert server.count() == 1 + fastapi_app.WEB_RETRY.max_retries


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_browser_that_goes_away_takes_its_queued_call_out_of_the_queue(
    framework: str, server: Script
) -> None:
    first, gone, later = "aa" * 12, "bb" * 12, "cc" * 12
    body = fixture("analytics_campaign_current.json")
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await release.wait()
        return json_reply(body)

    server.add(held)
    server.default = reply(body)
    # One slot: while the first call holds it upstream, every other call queues for it.
    async with (
        serve(framework, api_key=KEY, base_url=server.base_url, max_concurrency=1) as app,
        aiohttp.ClientSession() as http,
    ):
        holder = asyncio.create_task(get(http, f"{app.url}/campaigns/{first}"))
        await wait_until(lambda: server.count() == 1)
        browser = asyncio.create_task(get(http, f"{app.url}/campaigns/{gone}"))
        await wait_until(lambda: f"/campaigns/{gone}" in app.entered)
        browser.cancel()  # the browser gives up: aiohttp closes its connection
        with pytest.raises(asyncio.CancelledError):
            await browser
        await wait_until(lambda: f"/campaigns/{gone}" in app.cancelled)
        release.set()
        assert (await holder)[0] == 200
        # The freed slot goes to the next call, not to the cancelled one's place.
        status, _, answer = await get(http, f"{app.url}/campaigns/{later}")
        assert status == 200
        assert answer["name"] == "Webinar Attendee Nurture"
    paths = [p.rsplit("/", 1)[1] for p in server.raw_paths]
    assert paths == [first, later]  # the abandoned call was never sent
