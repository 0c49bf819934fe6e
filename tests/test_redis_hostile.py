"""A Redis that answers nonsense, and a shared gate closed for a day: neither escapes nor hangs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from sendkit_async import RateLimitError
from sendkit_async.redis_limiter import RedisRateLimiter, SharedBudgetUnavailableError
from tests.test_redis_limiter import Factory, make, new_key, redis

__all__ = ["make", "redis"]  # fixtures shared with test_redis_limiter


@contextlib.asynccontextmanager
async def integer_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that answers every RESP command with ``:1``."""
    writers: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                if line.startswith(b"*"):  # one command: answer an integer where any fits
                    writer.write(b":1\r\n")
                    await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def nap(_: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("on_error", ["fallback", "raise"])
async def test_a_redis_answering_integers_is_a_redis_failure(
    on_error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "sendkit_async")
    async with integer_server() as port:
        client = Redis(host="127.0.0.1", port=port, socket_timeout=1.0, protocol=2)
        limiter = RedisRateLimiter(
            client, api_key=new_key(), base_url="http://api.test", sleep=nap,
            on_redis_error=on_error,  # type: ignore[arg-type]
        )  # fmt: skip
        try:
            if on_error == "raise":
                with pytest.raises(SharedBudgetUnavailableError):
                    async with limiter.slot():
                        pass
            else:
                async with limiter.slot():  # the per-process fallback admits it
                    limiter.observe(200)
                limiter.observe(429)
            assert not limiter.shared
            assert limiter.snapshot().in_flight == 0
            assert "failed" in caplog.text
        finally:
            await limiter.aclose()
            await client.aclose()


async def test_a_shared_gate_closed_for_a_day_fails_at_once(make: Factory) -> None:
    key = new_key()
    a = make(api_key=key)
    a.cooldown(86_400.0)  # as a 429 with its reset a day ahead closes it
    await asyncio.sleep(0)
    while a._flusher is not None and not a._flusher.done():
        await asyncio.sleep(0)
    later = make(api_key=key, sleep=nap)  # a process started later knows nothing yet
    with pytest.raises(RateLimitError) as info:
        async with later.slot():
            pass
    assert info.value.retry_after is not None and info.value.retry_after > 86_000
    assert later.snapshot().in_flight == 0
