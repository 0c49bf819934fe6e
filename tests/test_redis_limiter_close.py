"""RedisRateLimiter.aclose() with Redis calls in flight: it waits for them (bounded by
``CLOSE_WAIT``, then cancels them), the admissions end with ClientClosedError, and no
socket is left open (warnings are errors)."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator

import pytest

from sendkit_async import ClientClosedError, RateLimiter
from sendkit_async._redis import _lifecycle
from sendkit_async.redis_limiter import RedisRateLimiter
from tests.helpers import wait_until

BASE = "http://api.test"


def new_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


async def admitted(limiter: RedisRateLimiter) -> str:
    async with limiter.slot():
        return "admitted"


async def test_aclose_waits_for_acquisitions_in_flight(redis_url: str) -> None:
    limiter = RedisRateLimiter.from_url(redis_url, api_key=new_key(), base_url=BASE, rate=1000)
    assert await admitted(limiter) == "admitted"  # the first call goes alone (probe)
    waiting = [asyncio.create_task(admitted(limiter)) for _ in range(5)]
    # All five are admitting: one asks Redis (not answered yet), four wait their turn.
    await wait_until(lambda: limiter.snapshot().in_flight == 5 and len(limiter._calls) == 1)
    await limiter.aclose()
    assert not limiter._calls  # every round trip ended before the pool was closed
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(r) for r in results] == [ClientClosedError] * 5
    with pytest.raises(ClientClosedError):
        await admitted(limiter)
    del waiting, results
    gc.collect()  # an unclosed socket would warn here


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on loopback that reads and never answers (a hung Redis)."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_aclose_cancels_calls_redis_never_answers(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lifecycle, "CLOSE_WAIT", 0.01)  # the bound, shortened for the test
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{silent_server}/0",
        api_key=new_key(),
        base_url=BASE,
        rate=1000,
        socket_timeout=3600,  # only aclose() can end these calls
    )
    limiter._local._probing = False  # let all go at once (no first call alone)
    waiting = [asyncio.create_task(admitted(limiter)) for _ in range(3)]
    await wait_until(lambda: limiter.snapshot().in_flight == 3 and len(limiter._calls) == 1)
    await limiter.aclose()
    assert not limiter._calls
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(r) for r in results] == [ClientClosedError] * 3
    del waiting, results
    gc.collect()


async def test_default_concurrency_is_the_clients(redis_url: str) -> None:
    async with RedisRateLimiter.from_url(redis_url, api_key=new_key(), base_url=BASE) as limiter:
        assert limiter.snapshot().max_concurrency == 100
        assert RateLimiter().snapshot().max_concurrency == 100  # AsyncSendKit's, the same
