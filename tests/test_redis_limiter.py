"""RedisRateLimiter against a real redis-server: one budget for many limiters and processes.

Times are read from Redis (the scripts' server clock), never asserted on the wall clock;
a test that needs Redis time to pass sets ``_server_clock`` and moves it (no sleeping).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from sendkit_async import AsyncSendKit, ClientClosedError, RateBudget, SendKitError
from sendkit_async.redis_limiter import RedisRateLimiter, SharedBudgetUnavailableError
from sendkit_async.simulator import SimulatorConfig, run_simulator
from tests.helpers import FakeClock, VirtualClock
from tests.redis_fixtures import RedisServer, hgetall, require_redis_server

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://api.test"
SERVER_T0 = 1_000_000.0  # an injected Redis server time: far from the real one, exact

Factory = Callable[..., RedisRateLimiter]


def new_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Factory]:
    """Build limiters, each on its own connection pool (as separate processes would be)."""
    made: list[RedisRateLimiter] = []

    def factory(url: str | None = None, **options: Any) -> RedisRateLimiter:
        options.setdefault("base_url", BASE)
        limiter = RedisRateLimiter.from_url(url or redis_url, **options)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.aclose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def settle(*limiters: RedisRateLimiter) -> None:
    """Wait until every observation was pushed to Redis."""
    for limiter in limiters:
        if limiter._flusher is not None:
            await limiter._flusher


def conforms(times: list[float], rate: float, burst: int) -> bool:
    """True if send times never exceed a token bucket: any k in a row need (k - burst) / rate."""
    times = sorted(times)
    return all(
        (j - i + 1) <= burst + rate * (times[j] - times[i]) + 1e-3  # µs rounding
        for i in range(len(times))
        for j in range(i, len(times))
    )


async def test_is_a_rate_budget(make: Factory) -> None:
    assert isinstance(make(api_key=new_key()), RateBudget)


async def test_instances_share_one_bucket(make: Factory) -> None:
    key = new_key()
    limiters = [make(api_key=key, rate=5, burst=3, horizon=60) for _ in range(3)]
    replies = await asyncio.gather(*(lim._acquire_once("") for lim in limiters * 4))
    assert {kind for kind, _, _ in replies} == {"token"}
    assert sum(1 for _, wait, _ in replies if wait == 0) == 3  # the burst, across all three
    scheduled = [now + wait for _, wait, now in replies]
    assert conforms(scheduled, rate=5, burst=3)
    assert not conforms(scheduled, rate=5, burst=2)  # they really did use the whole burst


async def test_no_token_means_wait_then_retry(make: Factory) -> None:
    # Redis's clock moves only when the test moves it; binary fractions keep it exact.
    clock = FakeClock(start=SERVER_T0)
    key = new_key()
    a = make(api_key=key, rate=0.01, burst=2, horizon=0)
    a._server_clock = clock.time
    # The burst, then one token reserved ahead (one interval away), then none.
    replies = [await a._acquire_once("") for _ in range(4)]
    assert [(kind, wait) for kind, wait, _ in replies] == [
        ("token", 0.0), ("token", 0.0), ("token", 100.0), ("wait", 100.0)
    ]  # fmt: skip
    # At 16 per second: once told to wait, waiting that long finds a token (and not sooner).
    key = new_key()
    a, b = make(api_key=key, rate=16, burst=2, horizon=0), make(api_key=key, rate=16, burst=2)
    a._server_clock = b._server_clock = clock.time
    replies = [await a._acquire_once("") for _ in range(4)]
    assert [kind for kind, _, _ in replies] == ["token", "token", "token", "wait"]
    told, start = replies[-1][1], clock.now
    assert told == 1 / 16
    clock.now = start + told - 0.001
    kind, _, _ = await b._acquire_once("")
    assert kind == "wait"
    clock.now = start + told
    kind, wait, _ = await b._acquire_once("")
    assert kind == "token"
    assert wait <= 1 / 16


async def test_slots_of_many_instances_stay_under_the_rate(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(start=SERVER_T0)  # the limiters' sleeps and Redis time: no waiting
    key = new_key()
    options: dict[str, Any] = {"rate": 40, "burst": 4, "max_concurrency": 4}
    limiters = [make(api_key=key, sleep=clock.sleep, **options) for _ in range(3)]
    for lim in limiters:
        lim._server_clock = clock.time
    # The times Redis granted each slot its token (server time plus the reserved wait):
    # a time read after admission would also carry this machine's scheduling delays.
    granted: list[float] = []
    entered = 0

    def recording(lim: RedisRateLimiter) -> Callable[..., Any]:
        acquire = lim._acquire_once

        async def acquire_once(token: str, *lane: Any) -> tuple[str, float, float]:
            kind, wait, now = await acquire(token, *lane)
            assert kind in ("token", "wait")  # "wait": nothing reserved, ask again later
            if kind == "token":
                granted.append(now + wait)
            return kind, wait, now

        return acquire_once

    for lim in limiters:
        monkeypatch.setattr(lim, "_acquire_once", recording(lim))

    async def one(lim: RedisRateLimiter) -> None:
        nonlocal entered
        async with lim.slot():
            entered += 1

    await asyncio.gather(*(one(lim) for lim in limiters for _ in range(6)))
    assert entered == len(granted) == 18
    assert conforms(granted, rate=40, burst=4)
    assert not conforms(granted, rate=40, burst=3)  # the burst was used, then the rate


async def test_cooldown_from_one_blocks_the_others(make: Factory) -> None:
    clock = FakeClock(start=SERVER_T0)  # Redis time moves only when c sleeps
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    a._server_clock = b._server_clock = clock.time
    a.observe(429, retry_after=60)
    await settle(a)
    kind, wait, _ = await b._acquire_once("")
    assert kind == "cooldown"
    assert 59 < wait <= 60
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    c = make(api_key=key, sleep=sleep)
    c._server_clock = clock.time
    async with c.slot():
        assert waits and wait <= waits[0] <= wait + 0.05  # it waited for a's gate (+ jitter)
    assert len(waits) == 1
    assert c.snapshot().throttle_events == 1


async def test_cooldown_is_only_ever_pushed_later(make: Factory, redis: Redis) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    a.cooldown(60.0)
    await settle(a)
    first = await redis.get(a._keys[1])
    b.cooldown(0.1)
    b.observe(503, retry_after=0.2)
    await settle(b)
    assert await redis.get(a._keys[1]) == first
    assert b.snapshot().cooldown_remaining > 30  # a's, not its own 0.1 or 0.2 s


async def test_learned_limits_are_shared(make: Factory) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    a.observe(200, limit=10, remaining=9, reset_after=0.1, window=2.0)
    await settle(a)
    assert a.snapshot().rate == pytest.approx(5.0)
    assert a.snapshot().limit == 10
    kind, _, _ = await b._acquire_once("")
    assert kind == "token"
    assert b.snapshot().rate == pytest.approx(5.0)
    assert b.snapshot().burst == pytest.approx(10.0)


async def test_user_rate_is_a_ceiling_over_learned(make: Factory) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key, rate=2, burst=1)
    a.observe(200, limit=100, window=1.0)
    await settle(a)
    await b._acquire_once("")
    assert (b.snapshot().rate, b.snapshot().burst) == (2.0, 1.0)


async def test_probe_goes_first_while_no_rate_is_known(make: Factory) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    assert (await a._acquire_once("p1"))[0] == "probe"
    kind, wait, _ = await b._acquire_once("p2")
    assert kind == "wait"
    assert 0 < wait <= 0.05
    a.observe(200)  # no rate-limit headers: nobody needs to probe any more...
    a._release_probe("p1")
    await settle(a)
    # ...and `a` published its slow start: `b` follows it (one slow start per budget)
    # instead of sending unpaced.
    assert (await b._acquire_once("p2"))[:2] == ("wait", 0.0)
    assert b._learner.ctl.aimd.started == pytest.approx(
        a._learner.ctl.aimd.started + a._learner.offset - b._learner.offset, abs=1e-3
    )
    assert (await b._acquire_once("p2"))[0] == "token"


async def test_keys_are_independent_and_never_stored(make: Factory, redis: Redis) -> None:
    k1, k2 = new_key(), new_key()
    a, b = make(api_key=k1, rate=0.01, burst=1, horizon=0), make(api_key=k2, rate=1, burst=1)
    assert a.budget != b.budget
    assert (await a._acquire_once(""))[:2] == ("token", 0.0)
    assert (await b._acquire_once(""))[:2] == ("token", 0.0)
    assert [(await a._acquire_once(""))[0] for _ in range(2)] == ["token", "wait"]
    a.observe(429, limit=1, remaining=0, reset_after=1.0, retry_after=0.1)
    await settle(a)
    seen = []
    async for name in redis.scan_iter(count=1000):
        kind = await redis.type(name)
        value: Any = None
        if kind == "hash":
            value = await hgetall(redis, name)
        elif kind == "string":
            value = await redis.get(name)
        seen.append(f"{name} {value}")
    dump = "\n".join(seen)
    assert a.budget in dump
    assert k1 not in dump
    assert k2 not in dump
    assert k1 not in repr(a)
    assert k1 not in "\n".join(str(arg) for arg in a._keys)


async def test_unreachable_redis_falls_back_and_warns_once(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    lim = make(url, api_key=new_key(), retry_after=0)
    with caplog.at_level(logging.WARNING, logger="sendkit_async"):
        for _ in range(5):
            async with lim.slot():
                lim.observe(200)
        await settle(lim)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "per-process limiter" in warnings[0].getMessage()
    assert not lim.shared
    assert "redis down" in repr(lim)


async def test_unreachable_redis_can_raise_instead(make: Factory) -> None:
    key = new_key()
    lim = make(f"redis://127.0.0.1:{closed_port()}/0", api_key=key, on_redis_error="raise")
    for _ in range(2):
        with pytest.raises(SharedBudgetUnavailableError) as info:
            await asyncio.wait_for(lim.slot().__aenter__(), 5)
        assert isinstance(info.value, SendKitError)
        assert key not in str(info.value)
    assert lim.snapshot().in_flight == 0  # the local slot was given back


async def test_redis_restart_is_survived(make: Factory, caplog: pytest.LogCaptureFixture) -> None:
    require_redis_server()
    server = RedisServer()
    server.start()
    try:
        lim = make(server.url, api_key=new_key(), rate=100, retry_after=0)
        async with lim.slot():
            pass
        assert lim.shared
        server.stop()
        with caplog.at_level(logging.INFO, logger="sendkit_async"):
            async with lim.slot():  # served by the fallback
                pass
            assert not lim.shared
            server.start()  # same port, empty: the scripts must be loaded again
            async with lim.slot():
                pass
        assert lim.shared
        levels = [r.levelno for r in caplog.records if r.name == "sendkit_async"]
        assert levels == [logging.WARNING, logging.INFO]  # down once, back once
        assert "answers again" in caplog.records[-1].getMessage()
    finally:
        server.stop()


async def test_close_and_context_manager(redis_url: str) -> None:
    lim = RedisRateLimiter.from_url(redis_url, api_key=new_key(), base_url=BASE)
    async with lim, lim.slot():
        lim.observe(200, limit=5, remaining=4, reset_after=1.0)
    with pytest.raises(ClientClosedError):
        async with lim.slot():
            pass
    await lim.aclose()  # idempotent


async def test_borrowed_client_is_not_closed(redis: Redis) -> None:
    async with RedisRateLimiter(redis, api_key=new_key(), base_url=BASE) as lim, lim.slot():
        pass
    assert await redis.ping()


def test_options_are_checked() -> None:
    client = Redis()
    with pytest.raises(ValueError, match="rate"):
        RedisRateLimiter(client, api_key="k", rate=0)
    with pytest.raises(ValueError, match="on_redis_error"):
        RedisRateLimiter(client, api_key="k", on_redis_error="ignore")  # type: ignore[arg-type]


def test_importing_the_package_does_not_import_redis() -> None:
    code = "import sys, sendkit_async; print('redis' in sys.modules)"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


WORKER = """
import asyncio, json, sys
from sendkit_async.redis_limiter import RedisRateLimiter

async def main(url, key, n, server_now):
    async with RedisRateLimiter.from_url(url, api_key=key, base_url="http://api.test",
                                         rate=4, burst=2, horizon=60) as lim:
        lim._server_clock = lambda: server_now  # Redis time stands still for all of them
        replies = await asyncio.gather(*(lim._acquire_once("") for _ in range(n)))
    print(json.dumps([[kind, now + wait] for kind, wait, now in replies]))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


def test_processes_share_one_budget(redis_url: str) -> None:
    key = new_key()
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WORKER, redis_url, key, "5", repr(SERVER_T0)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    scheduled: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        for kind, at in json.loads(out):
            assert kind == "token"
            scheduled.append(at)
    assert len(scheduled) == 15
    assert conforms(scheduled, rate=4, burst=2)
    # At one server time, the three processes' 15 reservations are exactly the burst
    # and then one token every 1/4 s: none given twice, none skipped.
    assert sorted(scheduled) == [SERVER_T0] * 2 + [SERVER_T0 + k / 4 for k in range(1, 14)]


async def test_two_clients_share_the_simulators_limit(make: Factory) -> None:
    rate, burst, n = 40.0, 4, 30
    config = SimulatorConfig(
        campaigns=2 * n, rate_limit=rate, burst=burst, rate_limit_headers="none"
    )
    clock = VirtualClock(start=SERVER_T0)  # the server's, Redis's and the clients' time
    async with run_simulator(config) as sim:
        sim.clock = clock.time
        key = config.api_keys[0] if config.api_keys else "sk_test_sim"
        ids = sim.campaign_ids
        options: dict[str, Any] = {"base_url": sim.base_url, "rate": rate, "burst": burst}
        limiters = [make(api_key=key, sleep=clock.sleep, **options) for _ in range(2)]
        for lim in limiters:
            lim._server_clock = clock.time
        clients = [
            AsyncSendKit(key, base_url=sim.base_url, rate_limiter=lim, clock=clock.time,
                         sleep=clock.sleep)
            for lim in limiters
        ]  # fmt: skip
        try:
            results = await asyncio.gather(
                clients[0].gather_campaigns(ids[:n]), clients[1].gather_campaigns(ids[n:])
            )
        finally:
            for client in clients:
                await client.aclose()
        assert sum(len(r) for r in results) == 2 * n
        total = sum(sim.stats.by_status.values())
        assert sim.stats.by_status.get(429, 0) <= 0.05 * total


def closed_port() -> int:
    from tests.redis_fixtures import free_port

    return free_port()  # nothing listens there once the probe socket is closed
