"""Retries against a real loopback server, with retry waits recorded instead of slept."""

from __future__ import annotations

import asyncio
import datetime as dt
from email.utils import format_datetime

import pytest
from aiohttp import web

from sendkit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncSendKit,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimiter,
    RateLimitError,
    RetryPolicy,
    UnprocessableEntityError,
)
from sendkit_async._retry import IDEMPOTENT_METHODS
from tests.helpers import GUARD, KEY, FakeClock, Script, fixture, reply

CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"
OK = fixture("analytics_campaign_seed.json")
BUSY = {"error": "Too Many Requests", "message": "Rate limit exceeded", "code": 429}


class RecordedSleep:
    """Stands in for asyncio.sleep in the retry loop: records, then yields once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def make(server: Script, sleeps: RecordedSleep | None = None, **kw: object) -> AsyncSendKit:
    """A client whose retry waits are recorded and whose rate limiter runs on a fake clock."""
    kw.setdefault("retry", RetryPolicy(max_retries=3, backoff_base=0.2, backoff_max=2.0))
    clock = FakeClock()
    cap = kw.pop("max_concurrency", 16)
    kw["rate_limiter"] = RateLimiter(max_concurrency=cap, clock=clock.time, sleep=clock.sleep)  # type: ignore[arg-type]
    client = AsyncSendKit(api_key=KEY, base_url=server.base_url, **kw)  # type: ignore[arg-type]
    if sleeps is not None:
        client._core.sleep = sleeps
    return client


async def test_transient_5xx_then_success(server: Script) -> None:
    sleeps = RecordedSleep()
    server.add(reply(b"", 503), reply(b"<html>bad gateway</html>", 502), reply(OK))
    async with make(server, sleeps) as client:
        result = await client.analytics.campaign(CAMPAIGN)
        stats = client.stats
    assert result.campaign.name == "Q1 Outreach"
    assert server.count() == 3
    assert stats.retries == 2
    assert stats.by_status == {503: 1, 502: 1, 200: 1}
    # full jitter: each wait within [0, base * 2**n] and the cap
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 0.2
    assert 0 <= sleeps.waits[1] <= 0.4


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_retryable_statuses(server: Script, status: int) -> None:
    server.add(reply(b"", status), reply(OK))
    async with make(server, RecordedSleep()) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert server.count() == 2


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
    ],
)
async def test_final_4xx_sent_exactly_once(
    server: Script, status: int, cls: type[APIStatusError]
) -> None:
    sleeps = RecordedSleep()
    server.add(reply({"error": "x", "message": "final", "code": status}, status), reply(OK))
    async with make(server, sleeps) as client:
        with pytest.raises(APIStatusError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert type(info.value) is cls
    assert info.value.attempts == 1
    assert server.count() == 1
    assert sleeps.waits == []


async def test_retry_after_delta_seconds(server: Script) -> None:
    sleeps = RecordedSleep()
    server.add(reply(BUSY, 429, Retry_After="2"), reply(OK))
    async with make(server, sleeps) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert sleeps.waits == [2.0]


async def test_retry_after_ms(server: Script) -> None:
    sleeps = RecordedSleep()
    server.add(reply(BUSY, 429, retry_after_ms="1500"), reply(OK))
    async with make(server, sleeps) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert sleeps.waits == [1.5]


async def test_retry_after_http_date(server: Script) -> None:
    sleeps = RecordedSleep()
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    server.add(reply(BUSY, 429, Retry_After=format_datetime(when, usegmt=True)), reply(OK))
    async with make(server, sleeps) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert len(sleeps.waits) == 1
    assert 3.0 <= sleeps.waits[0] <= 5.0  # HTTP-dates have one-second resolution


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"},
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "3"},
    ],
)
async def test_reset_header_on_429(server: Script, headers: dict[str, str]) -> None:
    sleeps = RecordedSleep()
    server.add(lambda _: web.json_response(BUSY, status=429, headers=headers), reply(OK))
    async with make(server, sleeps) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert sleeps.waits == [3.0]


@pytest.mark.parametrize("garbage", ["-3", "later", "NaN"])
async def test_garbage_retry_after_falls_back_to_backoff(server: Script, garbage: str) -> None:
    sleeps = RecordedSleep()
    server.add(reply(BUSY, 429, Retry_After=garbage), reply(OK))
    async with make(server, sleeps) as client:
        await client.analytics.campaign(CAMPAIGN)
    assert len(sleeps.waits) == 1
    assert 0 <= sleeps.waits[0] <= 0.2


async def test_long_retry_after_raises_at_once(server: Script) -> None:
    sleeps = RecordedSleep()
    server.add(reply(BUSY, 429, Retry_After="3600"), reply(OK))
    async with make(server, sleeps) as client:
        with pytest.raises(RateLimitError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.retry_after == 3600.0
    assert info.value.attempts == 1
    assert server.count() == 1
    assert sleeps.waits == []


async def test_retries_exhausted_carries_attempts(server: Script) -> None:
    server.default = reply(b"", 503)
    async with make(server, RecordedSleep()) as client:
        with pytest.raises(InternalServerError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.attempts == 4
    assert server.count() == 4
    assert "(after 4 attempts)" in str(info.value)


async def test_max_retries_zero_disables(server: Script) -> None:
    server.default = reply(b"", 503)
    async with make(server, RecordedSleep(), max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client.analytics.campaign(CAMPAIGN)
    assert server.count() == 1


async def test_per_call_retry_override(server: Script) -> None:
    server.default = reply(b"", 503)
    async with make(server, RecordedSleep()) as client:
        with pytest.raises(InternalServerError) as info:
            await client.analytics.campaign(CAMPAIGN, retry=RetryPolicy(max_retries=1))
    assert info.value.attempts == 2


async def test_connection_reset_is_retried(server: Script) -> None:
    def reset(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    # aiohttp itself resends an idempotent request once after a disconnect,
    # so two resets in a row are what reaches our retry loop as one failure.
    server.add(reset, reset, reply(OK))
    async with make(server, RecordedSleep()) as client:
        result = await client.analytics.campaign(CAMPAIGN)
        assert client.stats.connection_errors == 1
        assert client.stats.retries == 1
    assert result.stats.sent == 1200
    assert server.count() == 3


async def test_non_idempotent_methods_are_never_retried(server: Script) -> None:
    assert "POST" not in IDEMPOTENT_METHODS
    server.default = reply(b"", 503)
    async with make(server, RecordedSleep()) as client:
        with pytest.raises(InternalServerError):
            await client._request("POST", "/v1/anything")
    assert server.count() == 1


async def test_deadline_bounds_timeouts_and_retries(server: Script) -> None:
    # The deadline runs on the client's clock: every attempt costs 0.2 fake seconds (the
    # server moves the clock, then never answers, so the attempt's timeout ends it) and
    # every retry wait its length. Real time decides nothing here.
    clock, release = FakeClock(), asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        clock.now += 0.2
        await release.wait()
        return web.json_response(OK)

    server.default = slow
    policy = RetryPolicy(
        max_retries=50, fault_backoff_base=0.01, fault_backoff_max=0.01, deadline=0.5
    )
    try:
        async with make(
            server, retry=policy, timeout=0.2, clock=clock.time, sleep=clock.sleep
        ) as client:
            with pytest.raises(APITimeoutError) as info:
                await asyncio.wait_for(client.analytics.campaign(CAMPAIGN), GUARD)
    finally:
        release.set()
    # 0.5 s of deadline: attempts at 0, ~0.21 and ~0.42 (the last with only what is
    # left as its timeout), then nothing is left: three attempts, never fifty-one.
    assert info.value.attempts == 3
    assert server.count() == 3
    assert len(clock.sleeps) == 2 and all(0.005 <= s <= 0.01 for s in clock.sleeps)


async def test_cancellation_during_retry_wait_is_not_retried(server: Script) -> None:
    waiting = asyncio.Event()

    async def block(_: float) -> None:
        waiting.set()
        await asyncio.sleep(30)

    server.default = reply(b"", 503)
    client = make(server)
    client._core.sleep = block
    task = asyncio.create_task(client.analytics.campaign(CAMPAIGN))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    assert server.count() == 1
    assert client.rate_limit.in_flight == 0


async def test_concurrent_calls_do_not_share_retry_state(server: Script) -> None:
    # each id fails once, then succeeds: every call must count its own attempts
    seen: set[str] = set()

    def first_fails(request: web.Request) -> web.Response:
        if request.path in seen:
            return web.json_response(OK)
        seen.add(request.path)
        return web.Response(status=503)

    server.default = first_fails
    ids = [f"{i:024x}" for i in range(20)]
    async with make(server, RecordedSleep(), max_concurrency=4) as client:
        results = await asyncio.gather(*(client.analytics.campaign(i) for i in ids))
        assert client.stats.retries == 20
    assert len(results) == 20
    assert server.count() == 40


async def test_refused_connection_retried_then_raised() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = RecordedSleep()
    client = AsyncSendKit(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_retries=2)
    )
    client._core.sleep = sleeps
    async with client:
        with pytest.raises(APIConnectionError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.attempts == 3
    assert len(sleeps.waits) == 2
