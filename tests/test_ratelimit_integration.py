"""The shared rate-limit budget inside the client, against loopback servers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from sendkit_async import AsyncSendKit, RateLimiter, RetryPolicy
from sendkit_async.simulator import SimulatorConfig, run_simulator
from tests.helpers import KEY, FakeClock, Script, VirtualClock, fixture, wait_until

OK = fixture("analytics_campaign_seed.json")


async def test_one_429_pauses_every_request_not_yet_sent(server: Script) -> None:
    clock = FakeClock()
    arrivals: list[tuple[float, int]] = []

    def handler(_: web.Request) -> web.Response:
        status = 429 if not arrivals else 200
        arrivals.append((clock.now, status))
        if status == 429:
            return web.json_response(
                {"error": "x", "message": "y", "code": 429},
                status=429,
                headers={"Retry-After": "5"},
            )
        return web.json_response(OK)

    server.default = handler
    limiter = RateLimiter(max_concurrency=1, clock=clock.time, sleep=clock.sleep)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, rate_limiter=limiter) as client:
        client._core.sleep = no_wait  # the retry itself does not wait: the gate must hold it
        results = await asyncio.gather(*(client.analytics.campaign(f"c{i}") for i in range(6)))
    assert len(results) == 6
    t429 = arrivals[0][0]
    assert arrivals[0][1] == 429
    assert len(arrivals) == 7
    assert all(t >= t429 + 5 for t, _ in arrivals[1:])
    snap = limiter.snapshot()
    assert snap.rate_limited_responses == 1
    assert snap.throttled_seconds >= 5.0  # held at the gate for the whole Retry-After


async def test_no_hints_in_the_first_answer_the_rest_are_paced(server: Script) -> None:
    clock = FakeClock()
    arrivals: list[float] = []

    def handler(_: web.Request) -> web.Response:
        arrivals.append(clock.now)
        return web.json_response(OK)  # no rate-limit headers at all

    server.default = handler
    limiter = RateLimiter(max_concurrency=16, clock=clock.time, sleep=clock.sleep)
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, rate_limiter=limiter) as client:
        await asyncio.gather(*(client.analytics.campaign(f"c{i}") for i in range(40)))
    assert len(arrivals) == 40
    # Paced from the first answer on: never the other 39 (or a wave of 16) at one instant.
    assert max(arrivals.count(t) for t in arrivals) <= 4
    assert arrivals[-1] - arrivals[0] >= 0.02
    assert "slow start" in repr(limiter)


async def test_cancel_while_held_by_cooldown_leaves_nothing(server: Script) -> None:
    server.default = lambda _: web.json_response(OK)
    clock = FakeClock()
    waits: list[float] = []

    async def asleep(seconds: float) -> None:  # returns only when cancelled
        waits.append(seconds)
        await asyncio.Event().wait()

    async with AsyncSendKit(
        api_key=KEY, base_url=server.base_url, clock=clock.time, sleep=asleep
    ) as client:
        client._core.limiter.cooldown(30)
        task = asyncio.create_task(client.analytics.campaign("c1"))
        await wait_until(lambda: bool(waits))  # the call waits at the closed gate
        [wait] = waits
        assert 30.0 <= wait <= 31.0  # the gate's end, plus up to a second of spread
        assert client.rate_limit.cooldown_remaining == 30.0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.rate_limit.in_flight == 0
    assert server.count() == 0


# The simulator's bucket and the client read one virtual clock: the share of 429s comes
# from the client's pacing alone, never from how fast this machine runs the loop.


@pytest.mark.parametrize("mode", ["x-ratelimit", "ietf"])
async def test_headers_keep_429s_rare(mode: str) -> None:
    config = SimulatorConfig(campaigns=150, rate_limit=60, burst=10, rate_limit_headers=mode)
    clock = VirtualClock()
    async with run_simulator(config) as sim:
        sim.clock = clock.time
        async with AsyncSendKit(
            api_key=KEY,
            base_url=sim.base_url,
            max_concurrency=16,
            clock=clock.time,
            sleep=clock.sleep,
        ) as c:
            results = await c.gather_campaigns(sim.campaign_ids, concurrency=32)
            snap = c.rate_limit
        rejected = sim.stats.by_status.get(429, 0)
    assert len(results) == 150
    assert snap.limit == 10
    assert snap.rate is not None and snap.rate <= 60 * 1.2
    # without the budget, 32 callers against a burst of 10 would be rejected by the dozen
    assert rejected <= 8
    # nor too timid: the burst, then 140 at 60 per second take 2.33 virtual seconds
    assert clock.now <= 1.1 * (150 - 10) / 60


async def test_bare_429s_converge(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sendkit_async")
    config = SimulatorConfig(campaigns=150, rate_limit=60, burst=5, rate_limit_headers="none")
    clock = VirtualClock()
    async with run_simulator(config) as sim:
        sim.clock = clock.time
        async with AsyncSendKit(
            api_key=KEY,
            base_url=sim.base_url,
            retry=RetryPolicy(max_retries=8),
            clock=clock.time,
            sleep=clock.sleep,
        ) as client:
            results = await client.gather_campaigns(sim.campaign_ids, concurrency=32)
            report = client.last_bulk_report
        rejected = sim.stats.by_status.get(429, 0)
        sent = sim.stats.requests_total
    assert len(results) == 150
    assert report is not None
    assert report.rate_limited == rejected
    # No blind first wave: a paced slow start, one short episode, then the rate adapts.
    assert rejected <= 0.10 * sent
    assert clock.now <= 2 * (150 - 5) / 60  # 2.4 virtual seconds at the server's own rate
    assert "retrying GET" in caplog.text
    assert "rate limited (429) on GET" in caplog.text
    assert "throttled" in caplog.text
    assert KEY not in caplog.text
