"""The client against a real loopback server: config, headers, ids, redirects, bodies."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import pytest
from aiohttp import web

import sendkit_async
from sendkit_async import (
    AsyncSendKit,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    RedirectError,
    ResponseValidationError,
    SendKitWarning,
)
from tests.helpers import GUARD, KEY, PLATFORM_KEY, Script, fixture, reply

CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"


def client_for(server: Script, **kwargs: object) -> AsyncSendKit:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("max_retries", 0)
    return AsyncSendKit(base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------- configuration


def test_no_key_names_both_ways() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncSendKit()
    assert "api_key=" in str(info.value)
    assert "SENDKIT_API_KEY" in str(info.value)


def test_key_and_workspace_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDKIT_API_KEY", PLATFORM_KEY)
    monkeypatch.setenv("SENDKIT_WORKSPACE_ID", "ws_9")
    client = AsyncSendKit()
    assert client.workspace_id == "ws_9"
    assert client.base_url == "https://api.sendkit.ai"


def test_workspace_id_with_workspace_key_is_ignored_with_warning() -> None:
    with pytest.warns(SendKitWarning, match="ignored"):
        client = AsyncSendKit(api_key=KEY, workspace_id="ws_1")
    assert client.workspace_id is None


@pytest.mark.parametrize(
    "url", ["http://api.sendkit.ai", "http://10.0.0.5:8080", "ftp://127.0.0.1", "not a url"]
)
def test_insecure_or_odd_base_urls_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncSendKit(api_key=KEY, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:9", "https://x.test/"]
)
def test_loopback_http_and_https_allowed(url: str) -> None:
    assert AsyncSendKit(api_key=KEY, base_url=url).base_url == url.rstrip("/")


def test_insecure_http_opt_in() -> None:
    client = AsyncSendKit(api_key=KEY, base_url="http://sendkit.internal", allow_insecure_http=True)
    assert client.base_url == "http://sendkit.internal"


def test_bad_timeout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        AsyncSendKit(api_key=KEY, timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout total"):
        sendkit_async.Timeout(total=-1)


def test_version_is_exposed() -> None:
    assert sendkit_async.__version__.count(".") == 2


# ----------------------------------------------------------------- requests


async def test_campaign_sends_headers_and_parses(server: Script) -> None:
    server.add(reply(fixture("analytics_campaign_current.json")))
    async with client_for(server) as client:
        result = await client.analytics.campaign(CAMPAIGN)
    assert result.campaign.name == "Webinar Attendee Nurture"
    assert result.total_positive_replied == 8
    request = server.requests[0]
    assert request.method == "GET"
    assert server.raw_paths == [f"/v1/analytics/campaigns/{CAMPAIGN}"]
    assert request.headers["X-Api-Key"] == KEY
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["User-Agent"].startswith(f"sendkit-async/{sendkit_async.__version__} ")
    assert "X-Workspace-Id" not in request.headers


async def test_platform_key_sends_workspace(server: Script) -> None:
    server.add(reply(fixture("analytics_campaign_seed.json")))
    async with client_for(server, api_key=PLATFORM_KEY, workspace_id="ws_42") as client:
        await client.analytics.campaign(CAMPAIGN)
    assert server.requests[0].headers["X-Workspace-Id"] == "ws_42"


async def test_dates_go_in_the_query(server: Script) -> None:
    import datetime as dt

    server.add(reply(fixture("analytics_campaign_seed.json")))
    async with client_for(server) as client:
        await client.analytics.campaign(CAMPAIGN, from_=dt.date(2024, 5, 1), to="2024-05-31")
    assert (
        server.raw_paths[0] == f"/v1/analytics/campaigns/{CAMPAIGN}?from=2024-05-01&to=2024-05-31"
    )


@pytest.mark.parametrize("suffix", ["/proxy/sendkit", "/proxy/sendkit/"])
async def test_a_base_url_path_prefixes_every_request(server: Script, suffix: str) -> None:
    server.add(reply(fixture("analytics_campaign_seed.json")))
    server.add(reply(fixture("analytics_campaign_seed.json")))
    base = server.base_url + suffix
    async with AsyncSendKit(api_key=KEY, base_url=base) as client:
        await client.analytics.campaign("a/b")
        await client.analytics.campaign("..", from_="2024-05-01")
    assert server.raw_paths == [
        "/proxy/sendkit/v1/analytics/campaigns/a%2Fb",
        "/proxy/sendkit/v1/analytics/campaigns/%2E%2E?from=2024-05-01",
    ]


@pytest.mark.parametrize(
    ("campaign_id", "raw_path"),
    [
        ("a/b", "/v1/analytics/campaigns/a%2Fb"),
        ("../x", "/v1/analytics/campaigns/..%2Fx"),
        ("..", "/v1/analytics/campaigns/%2E%2E"),
        ("x?y=1", "/v1/analytics/campaigns/x%3Fy%3D1"),
        ("%2e%2e", "/v1/analytics/campaigns/%252e%252e"),
        ("a b#c", "/v1/analytics/campaigns/a%20b%23c"),
    ],
)
async def test_ids_stay_in_one_segment(server: Script, campaign_id: str, raw_path: str) -> None:
    server.add(reply(fixture("analytics_campaign_seed.json")))
    async with client_for(server) as client:
        await client.analytics.campaign(campaign_id)
    assert server.raw_paths == [raw_path]
    assert server.requests[0].match_info["tail"] == f"v1/analytics/campaigns/{campaign_id}"


@pytest.mark.parametrize("bad", ["", "  ", "\n"])
async def test_blank_ids_rejected_before_sending(server: Script, bad: str) -> None:
    async with client_for(server) as client:
        with pytest.raises(InvalidRequestError):
            await client.analytics.campaign(bad)
    assert server.raw_paths == []


async def test_404_envelope(server: Script) -> None:
    server.add(reply(fixture("error_404.json"), 404, X_Request_Id="req_77"))
    async with client_for(server) as client:
        with pytest.raises(NotFoundError) as info:
            await client.analytics.campaign("000000000000000000000000")
    assert info.value.message == "The requested resource was not found"
    assert info.value.request_id == "req_77"
    assert info.value.attempts == 1


async def test_html_502_body(server: Script) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    server.add(reply(html, 502, Content_Type="text/html"))
    async with client_for(server) as client:
        with pytest.raises(InternalServerError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.status == 502
    assert "502 Bad Gateway" in info.value.message


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b'{"success": true}', b'{"data": {"campaign": 5}}']
)
async def test_bad_2xx_bodies(server: Script, body: bytes) -> None:
    server.add(reply(body, 200))
    async with client_for(server) as client:
        with pytest.raises(ResponseValidationError):
            await client.analytics.campaign(CAMPAIGN)


async def test_redirect_not_followed_key_not_forwarded(server: Script) -> None:
    target = f"{server.base_url}/elsewhere"
    server.add(reply(b"", 302, Location=target))
    async with client_for(server) as client:
        with pytest.raises(RedirectError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.location == target
    assert target in str(info.value)
    assert server.raw_paths == [f"/v1/analytics/campaigns/{CAMPAIGN}"]


async def test_slow_body_hits_total_timeout(server: Script) -> None:
    # The body never ends (a byte now and then, so no read timeout could fire): only
    # the total timeout can end the call, however fast or slow this machine is.
    done = asyncio.Event()

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while not done.is_set():
                await response.write(b" ")
                await asyncio.sleep(0.05)
        return response

    server.add(drip)
    try:
        async with client_for(server, timeout=0.3) as client:
            with pytest.raises(sendkit_async.APITimeoutError):
                await asyncio.wait_for(client.analytics.campaign(CAMPAIGN), GUARD)
    finally:
        done.set()


async def test_per_call_timeout_override(server: Script) -> None:
    # The first answer never comes: only the call's own 0.1 s can end it (the client's
    # hour would outlast GUARD), and the override does not stick to the client.
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(fixture("analytics_campaign_seed.json"))

    server.add(held, reply(fixture("analytics_campaign_seed.json")))
    try:
        async with client_for(server, timeout=3600) as client:
            with pytest.raises(sendkit_async.APITimeoutError):
                await asyncio.wait_for(client.analytics.campaign(CAMPAIGN, timeout=0.1), GUARD)
            assert server.count() == 1  # it was sent, and timed out waiting for the answer
            result = await client.analytics.campaign(CAMPAIGN)
            assert client.timeout.total == 3600
    finally:
        release.set()
    assert result.campaign.name == "Q1 Outreach"


async def test_connection_refused_is_api_connection_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncSendKit(api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0) as c:
        with pytest.raises(sendkit_async.APIConnectionError) as info:
            await c.analytics.campaign(CAMPAIGN)
    assert f"127.0.0.1:{port}" in str(info.value)


# ----------------------------------------------------------------- lifecycle


async def test_closed_client_is_a_clear_error(server: Script) -> None:
    client = client_for(server)
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await client.analytics.campaign(CAMPAIGN)
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert "closed" in repr(client)


async def test_borrowed_session_is_not_closed(server: Script) -> None:
    server.add(reply(fixture("analytics_campaign_seed.json")))
    async with aiohttp.ClientSession() as session:
        async with client_for(server, session=session) as client:
            await client.analytics.campaign(CAMPAIGN)
        assert not session.closed
        assert client.closed


async def test_session_created_lazily_and_closed(server: Script) -> None:
    client = client_for(server)
    assert client._core.transport._session is None
    server.add(reply(fixture("analytics_campaign_seed.json")))
    await client.analytics.campaign(CAMPAIGN)
    session = client._core.transport._session
    assert session is not None and not session.closed
    await client.aclose()
    assert session.closed


async def test_cancelled_call_leaves_nothing_open(server: Script) -> None:
    started = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    server.add(hang)
    client = client_for(server)
    task = asyncio.create_task(client.analytics.campaign(CAMPAIGN))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    assert client._core.transport._session is None
    assert client.rate_limit.in_flight == 0


async def test_with_options_shares_pool_and_budget(server: Script) -> None:
    server.add(reply(fixture("analytics_campaign_seed.json")))
    async with client_for(server) as client:
        fast = client.with_options(timeout=1.5, max_retries=3)
        assert fast.timeout.total == 1.5 and fast.retry.max_retries == 3
        assert client.timeout.total == 30.0 and client.retry.max_retries == 0
        await fast.analytics.campaign(CAMPAIGN)
        assert client.stats.requests == 1
        assert fast._core is client._core
    assert fast.closed


# ----------------------------------------------------------------- secrecy


async def test_key_never_in_errors_reprs_or_logs(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk_live_SUPERSECRET_do_not_leak"
    server.add(
        reply({"error": "Unauthorized", "message": "bad key", "code": 401}, 401),
        reply(b"oops", 503),
        reply(b"oops", 503),
    )
    client = AsyncSendKit(api_key=secret, base_url=server.base_url, max_retries=1)
    caught: list[BaseException] = []
    async with client:
        for _ in range(2):
            try:
                await client.with_options(
                    retry=sendkit_async.RetryPolicy(max_retries=1, backoff_base=0.01)
                ).analytics.campaign(CAMPAIGN)
            except sendkit_async.SendKitError as exc:
                caught.append(exc)
    assert isinstance(caught[0], AuthenticationError)
    assert isinstance(caught[1], InternalServerError) and caught[1].attempts == 2
    texts = [repr(client), str(client), caplog.text]
    for err in caught:
        texts += [str(err), repr(err), repr(err.__dict__), str(err.__cause__), str(err.__context__)]
    assert "retrying GET" in caplog.text
    for text in texts:
        assert secret not in text
