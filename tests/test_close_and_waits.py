"""Nothing escapes, nothing hangs: close wakes every call, and waits are bounded.

Against loopback servers, with an injected clock and sleep: :class:`Asleep` never
returns by itself, so a call that ends did not sleep its wait out, and nothing
here really waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

import pytest
from aiohttp import web

from sendkit_async import AsyncSendKit, ClientClosedError, RateLimitError, RetryPolicy
from tests.helpers import KEY, FakeClock, Script, fixture

OK = fixture("analytics_campaign_seed.json")


def ok() -> web.Response:
    return web.json_response(OK)


def throttled(**headers: str) -> web.Response:
    body = {"error": "Too Many Requests", "message": "slow down", "code": 429}
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return web.json_response(body, status=429, headers=hdrs)


class Asleep:
    """A sleep that records its length and returns only when cancelled."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.Event().wait()


async def until(condition: Callable[[], bool], rounds: int = 1000) -> None:
    """Let the loop run (no timers: ``sleep(0)`` rounds) until ``condition`` holds."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def ended(tasks: Iterable[asyncio.Task[Any]], rounds: int = 200) -> list[Exception]:
    """Each task's exception, after a few loop rounds; fails if one is still running."""
    tasks = list(tasks)
    for _ in range(rounds):
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0)
    running = [t for t in tasks if not t.done()]
    for t in running:
        t.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    assert not running, f"{len(running)} of {len(tasks)} calls still running"
    errors = [t.exception() for t in tasks]
    assert all(isinstance(e, Exception) for e in errors), errors
    return [e for e in errors if isinstance(e, Exception)]


def start(calls: Iterable[Coroutine[Any, Any, Any]]) -> list[asyncio.Task[Any]]:
    return [asyncio.ensure_future(c) for c in calls]


# -- 1. close wakes everyone --------------------------------------------------------------


async def test_close_ends_requests_in_flight_once_without_retrying(server: Script) -> None:
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return ok()

    server.default = held
    sleep = Asleep()
    client = AsyncSendKit(
        api_key=KEY, base_url=server.base_url, clock=FakeClock().time, sleep=sleep, rate_limit=100
    )
    try:
        calls = start(client.analytics.campaign(f"c{i}") for i in range(3))
        await until(lambda: server.in_flight == 3)
        await client.aclose()
        errors = await ended(calls)
    finally:
        release.set()
    assert [type(e) for e in errors] == [ClientClosedError] * 3
    assert all(
        isinstance(e, ClientClosedError) and e.attempts == 1 for e in errors
    )  # sent once, never again
    assert server.count() == 3  # nothing retried
    assert client.stats.retries == 0
    assert sleep.waits == []


async def test_close_wakes_retry_sleeps_and_calls_queued_at_the_gate(server: Script) -> None:
    server.add(lambda _: throttled(Retry_After="30"))
    server.default = lambda _: ok()
    sleep = Asleep()
    clock = FakeClock()
    client = AsyncSendKit(api_key=KEY, base_url=server.base_url, clock=clock.time, sleep=sleep)
    first = start([client.analytics.campaign("first")])
    await until(lambda: sleep.waits == [30.0])  # its retry sleeps out Retry-After
    queued = start(client.analytics.campaign(f"c{i}") for i in range(5))
    await until(lambda: len(sleep.waits) == 6)  # the five wait at the closed gate
    assert client.rate_limit.cooldown_remaining == 30.0
    await client.aclose()
    errors = await ended(first + queued)
    assert [type(e) for e in errors] == [ClientClosedError] * 6
    assert server.count() == 1


async def test_close_wakes_calls_held_by_the_overload_guard(server: Script) -> None:
    server.default = lambda _: web.json_response({"code": 503}, status=503)
    sleep = Asleep()
    clock = FakeClock()
    client = AsyncSendKit(
        api_key=KEY, base_url=server.base_url, clock=clock.time, sleep=sleep, rate_limit=100
    )
    calls = start(client.analytics.campaign(f"c{i}") for i in range(8))
    await until(lambda: client._core.guard.open and len(sleep.waits) >= 8)
    await client.aclose()
    errors = await ended(calls)
    assert {type(e) for e in errors} == {ClientClosedError}


# -- 3. a wait that would exceed max_wait raises at once ----------------------------------


async def test_a_gate_closed_beyond_max_wait_fails_the_next_call_at_once(server: Script) -> None:
    day = 24 * 3600
    server.add(lambda _: throttled(X_RateLimit_Limit="100", X_RateLimit_Reset=str(day)))
    server.default = lambda _: ok()
    sleep = Asleep()
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, clock=FakeClock().time, sleep=sleep
    ) as client:
        first = start([client.analytics.campaign("first")])
        [failed] = await ended(first)
        assert isinstance(failed, RateLimitError) and failed.retry_after == day  # as documented
        policy = RetryPolicy(deadline=2, max_wait=5)
        [error] = await ended(start([client.analytics.campaign("next", timeout=1, retry=policy)]))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and day - 1 <= error.retry_after <= day
    assert "not sent" in str(error) and "max_wait" in str(error)
    assert error.attempts == 0
    assert server.count() == 1  # the second call was never sent
    assert sleep.waits == []  # and never waited


# -- 4. a per-call bound on queueing ------------------------------------------------------


async def test_max_queue_bounds_the_wait_for_a_slot_and_none_leaves_it_unbounded(
    server: Script,
) -> None:
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return ok()

    server.default = held
    clock = FakeClock()
    async with AsyncSendKit(
        api_key=KEY,
        base_url=server.base_url,
        clock=clock.time,
        sleep=clock.sleep,
        rate_limit=100,
        max_concurrency=1,
    ) as client:
        busy = start([client.analytics.campaign("busy")])
        await until(lambda: server.in_flight == 1)
        patient = start([client.analytics.campaign("patient")])  # max_queue=None: waits
        hasty = RetryPolicy(max_queue=2.0)
        [error] = await ended(start([client.analytics.campaign("hasty", retry=hasty)]))
        assert isinstance(error, RateLimitError)
        assert error.retry_after is None  # no gate closed: nobody knows when a slot frees
        assert "max_queue" in str(error)
        assert clock.sleeps == [2.0]  # the queue bound, on the injected clock
        assert not patient[0].done()
        release.set()
        results = await asyncio.gather(*busy, *patient)
    assert [r.campaign.name for r in results] == ["Q1 Outreach"] * 2
    assert server.count() == 2  # the hasty call was never sent


async def test_max_queue_shorter_than_the_gate_fails_at_once_with_retry_after(
    server: Script,
) -> None:
    server.add(lambda _: throttled(Retry_After="30"))
    server.default = lambda _: ok()
    sleep = Asleep()
    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, clock=FakeClock().time, sleep=sleep
    ) as client:
        once = RetryPolicy(max_retries=0)
        [throttle] = await ended(start([client.analytics.campaign("first", retry=once)]))
        assert isinstance(throttle, RateLimitError) and throttle.retry_after == 30.0
        web_handler = RetryPolicy(max_queue=5.0)
        [error] = await ended(start([client.analytics.campaign("web", retry=web_handler)]))
        assert isinstance(error, RateLimitError) and error.retry_after == 30.0
        bulk = start([client.analytics.campaign("bulk")])  # default: waits at the gate
        await until(lambda: len(sleep.waits) == 1)
        assert not bulk[0].done()
    [closed] = await ended(bulk)
    assert isinstance(closed, ClientClosedError)
    assert server.count() == 1


# -- 2. a client used from another event loop ---------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the seed analytics, closing each connection (nothing pooled)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps(OK).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def threaded_server() -> Iterator[str]:
    """A loopback server in a thread of its own, usable from any event loop."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_second_asyncio_run_gets_a_clear_error() -> None:
    with threaded_server() as base_url:
        client = AsyncSendKit(api_key=KEY, base_url=base_url)
        first = asyncio.run(client.analytics.campaign("one"))
        assert first.campaign.name == "Q1 Outreach"
        with pytest.raises(ClientClosedError, match=r"another event loop, which has ended"):
            asyncio.run(client.analytics.campaign("two"))
        with pytest.raises(ClientClosedError, match=r"one client per asyncio\.run\(\)"):
            asyncio.run(client.analytics.campaign("three"))
        asyncio.run(client.aclose())  # closing it from anywhere still works
        assert client.closed


def test_a_client_of_a_loop_still_running_in_another_thread_is_refused_there() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with threaded_server() as base_url:
            client = AsyncSendKit(api_key=KEY, base_url=base_url)
            there = asyncio.run_coroutine_threadsafe(client.analytics.campaign("one"), loop)
            assert there.result(timeout=30).campaign.name == "Q1 Outreach"
            with pytest.raises(ClientClosedError, match=r"another event loop, which is still"):
                asyncio.run(client.analytics.campaign("two"))
            asyncio.run(client.aclose())  # the session is closed in its own loop
            assert client.closed
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
