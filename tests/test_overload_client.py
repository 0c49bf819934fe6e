"""Throttles and faults inside the client, against loopback servers, on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from sendkit_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncSendKit,
    ClientClosedError,
    RetryPolicy,
    SendKitError,
)
from tests.helpers import KEY, FakeClock, Script, fixture

OK = fixture("analytics_campaign_seed.json")


def ok() -> web.Response:
    return web.json_response(OK)


def fail(status: int, **headers: str) -> web.Response:
    body = {"error": "x", "message": "y", "code": status}
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return web.json_response(body, status=status, headers=hdrs)


def on_fake_time(base_url: str, clock: FakeClock, **options: Any) -> AsyncSendKit:
    """A client of ``base_url`` whose retry waits, deadlines and limiter run on ``clock``."""
    return AsyncSendKit(
        api_key=KEY, base_url=base_url, clock=clock.time, sleep=clock.sleep, **options
    )


class HeldSleep:
    """A sleep that records its length and returns only once released."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.release.wait()
        self.clock.now += seconds


async def test_a_503_with_retry_after_delays_only_its_own_request(server: Script) -> None:
    clock = FakeClock()
    sleep = HeldSleep(clock)
    seen: list[str] = []

    def handler(request: web.Request) -> web.Response:
        cid = request.match_info.get("tail", request.path).rsplit("/", 1)[-1]
        seen.append(cid)
        if cid == "bad" and seen.count("bad") == 1:
            return fail(503, Retry_After="5")
        return ok()

    server.default = handler
    async with on_fake_time(server.base_url, clock) as client:
        client._core.sleep = sleep  # retry waits only: the limiter keeps the fake clock
        first = await client.analytics.campaign("first")  # the limiter's probe, done
        bad = asyncio.ensure_future(client.analytics.campaign("bad"))
        while not sleep.waits:  # the 503 was answered and its retry is asleep
            await asyncio.sleep(0)
        others = await asyncio.gather(*(client.analytics.campaign(f"c{i}") for i in range(8)))
        assert not bad.done()
        assert client.rate_limit.cooldown_remaining == 0.0  # no shared gate was closed
        sleep.release.set()
        late = await bad
    assert first.campaign.name == late.campaign.name == "Q1 Outreach"
    assert len(others) == 8
    assert sleep.waits == [5.0]  # max(its own fast backoff, Retry-After)
    assert seen[-1] == "bad"
    assert seen.count("bad") == 2


async def test_isolated_faults_retry_after_tens_of_milliseconds(server: Script) -> None:
    clock = FakeClock()
    server.add(lambda _: fail(500), lambda _: fail(502), lambda _: fail(503, Retry_After="0"))
    server.default = lambda _: ok()
    async with on_fake_time(server.base_url, clock) as client:
        await client.analytics.campaign("one")
    waits = [w for w in clock.sleeps]
    assert len(waits) == 3
    assert 0.0125 <= waits[0] <= 0.025  # equal jitter over the 25 ms base
    assert 0.025 <= waits[1] <= 0.05
    assert 0.05 <= waits[2] <= 0.1  # Retry-After: 0 is no tight loop


class Outage:
    """Answers 200, then 503 to the next ``failures`` requests; records (time, id, status)."""

    def __init__(self, clock: FakeClock, healthy: int, failures: int) -> None:
        self.clock = clock
        self.outage = range(healthy, healthy + failures)
        self.log: list[tuple[float, str, int]] = []

    def __call__(self, request: web.Request) -> web.Response:
        cid = request.path.rsplit("/", 1)[-1]
        status = 503 if len(self.log) in self.outage else 200
        self.log.append((self.clock.now, cid, status))
        return fail(503) if status == 503 else ok()


async def test_an_outage_loses_nothing_and_leaves_untried_ids_untouched(server: Script) -> None:
    clock = FakeClock()
    outage = Outage(clock, healthy=20, failures=60)
    server.default = outage
    ids = [f"id{i:03d}" for i in range(100)]
    policy = RetryPolicy(max_retries=2, deadline=600.0)
    async with on_fake_time(server.base_url, clock, retry=policy, max_concurrency=4) as client:
        results = await client.gather_campaigns(ids, concurrency=4)
        stats = client.stats
    assert [r.campaign.name for r in results] == ["Q1 Outreach"] * 100  # nothing lost
    failed = [(t, cid) for t, cid, status in outage.log if status == 503]
    assert len(failed) == 60
    # Only the ids in flight when the outage began were ever tried during it; every
    # other id was held back and first sent after recovery.
    tried_during = {cid for _, cid in failed}
    assert len(tried_during) <= 4
    before = {cid for _, cid, _ in outage.log[:20]}
    assert not tried_during & before
    # (How far apart the probes go is the circuit's business: tests/test_overload.py.)
    assert stats.requests == 160


async def test_an_api_never_reached_fails_fast_instead_of_waiting() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connections refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = FakeClock()
    async with on_fake_time(
        f"http://127.0.0.1:{port}", clock, retry=RetryPolicy(max_retries=4, deadline=600.0)
    ) as client:
        results = await client.gather_campaigns(
            [f"id{i}" for i in range(50)], concurrency=4, return_exceptions=True
        )
        sent = client.stats.requests
    assert len(results) == 50
    assert all(isinstance(r, APIConnectionError) for r in results)
    unsent = [r for r in results if "every attempt to reach the API has failed" in str(r)]
    assert len(unsent) >= 40
    assert sent <= 4 * 5  # the ids in flight used their retries; nobody else was sent
    assert clock.now - 1000.0 < 5.0  # nobody waited for a deadline of 600 s


async def test_a_single_call_fails_as_before_when_faults_persist(server: Script) -> None:
    clock = FakeClock()
    server.default = lambda _: fail(503)
    async with on_fake_time(server.base_url, clock, retry=RetryPolicy(max_retries=3)) as client:
        with pytest.raises(Exception, match="503") as info:
            await client.analytics.campaign("x")
    assert getattr(info.value, "attempts", None) == 4
    assert server.count() == 4


async def test_retry_after_zero_429s_probe_sparingly_and_lose_nothing(server: Script) -> None:
    clock = FakeClock()
    log: list[tuple[float, int]] = []

    def handler(_: web.Request) -> web.Response:
        status = 429 if len(log) < 40 else 200
        log.append((clock.now, status))
        return fail(429, Retry_After="0") if status == 429 else ok()

    server.default = handler
    async with on_fake_time(
        server.base_url, clock, retry=RetryPolicy(max_retries=2, deadline=600.0)
    ) as client:
        results = await client.gather_campaigns([f"id{i}" for i in range(20)], concurrency=4)
    assert len(results) == 20
    rejected = [t for t, status in log if status == 429]
    span = rejected[-1] - rejected[0]
    # The gate's floor doubles per episode of nothing but 429s, up to a second.
    assert len(rejected) / span <= 20


async def test_close_ends_a_wait_for_the_open_circuit(server: Script) -> None:
    clock = FakeClock()
    server.add(lambda _: ok())
    server.default = lambda _: fail(503)
    async with on_fake_time(
        server.base_url, clock, retry=RetryPolicy(max_retries=10, deadline=600.0)
    ) as client:
        await client.analytics.campaign("w")  # the server did answer once
        for _ in range(5):  # five faults in a row open the circuit
            with pytest.raises(Exception, match="503"):
                await client.with_options(max_retries=0).analytics.campaign("x")
        assert client._core.guard.open
        clock.sleep = asyncio.Event().wait  # type: ignore[assignment,method-assign]
        waiter = asyncio.ensure_future(client.analytics.campaign("y"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiter.done()
    with pytest.raises(ClientClosedError):
        await waiter


async def test_a_wait_for_the_open_circuit_ends_with_the_calls_deadline(server: Script) -> None:
    clock = FakeClock()
    server.add(lambda _: ok())
    server.default = lambda _: fail(503)  # down for good after one answer
    async with on_fake_time(
        server.base_url, clock, retry=RetryPolicy(max_retries=4, deadline=5.0), max_concurrency=4
    ) as client:
        await client.analytics.campaign("w")
        results = await client.gather_campaigns(
            [f"id{i}" for i in range(20)], concurrency=4, return_exceptions=True
        )
    assert len(results) == 20
    assert all(isinstance(r, SendKitError) for r in results)
    timed_out = [r for r in results if isinstance(r, APITimeoutError)]
    # Ids held at the open circuit gave up there, at their deadline, not at their turn
    # to probe (which, one probe per 0.5 s among many waiters, could come much later).
    assert any("while the API was failing" in str(r) for r in timed_out)
    assert server.count() < 20 * 5  # ...without being sent into the outage each time


async def test_answers_teach_the_limiter_by_when_their_requests_were_sent(
    server: Script,
) -> None:
    # The backend answers 50 ms after the request came; a gateway's 429 would come at
    # once. Each answer is dated by its request's send time, also when its slot was
    # entered in a task of its own (the pipeline races every queueing wait against
    # close), as the first request's always is: it goes alone, through the queue.
    clock = FakeClock()
    sent: list[float] = []

    def handler(request: web.Request) -> web.Response:
        sent.append(clock.now)
        clock.now += 0.05
        return ok()

    server.default = handler
    async with on_fake_time(server.base_url, clock) as client:
        for i in range(3):
            await client.analytics.campaign(f"c{i}")
        learned = list(client._core.limiter._ctl.aimd._oks)  # type: ignore[attr-defined]
    assert learned == sent
