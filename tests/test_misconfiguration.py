"""Configuration and local mistakes are refused at once, never retried as network failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sendkit_async import AsyncSendKit, errors
from tests.helpers import KEY, PLATFORM_KEY, Script

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://user:{SECRET}@api.sendkit.ai",
        f"https://{SECRET}@api.sendkit.ai",
        f"https://:{SECRET}@api.sendkit.ai/v1",
        f"http://user:{SECRET}@127.0.0.1:9",
    ],
)
def test_credentials_in_base_url_refused_without_quoting_them(base_url: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=KEY, base_url=base_url)
    assert "user name or password" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (f"sk_{SECRET}\x00x", "NUL"),
        (f"sk_{SECRET}\x07x", "control character"),
        (f"sk_{SECRET}\u00e9x", "non-ASCII"),
    ],
)
def test_key_that_is_no_header_value_refused(key: str, problem: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=key, base_url="http://127.0.0.1:9")
    assert problem in str(info.value) and "API key" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("workspace", "problem"),
    [
        (f"ws{SECRET}\r\nX-Evil: 1", "line break"),
        (f"ws{SECRET}\n", "whitespace"),
        (f"ws{SECRET}\x00", "NUL"),
    ],
)
def test_workspace_id_that_is_no_header_value_refused(workspace: str, problem: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSendKit(api_key=PLATFORM_KEY, base_url="http://127.0.0.1:9", workspace_id=workspace)
    assert problem in str(info.value) and "workspace id" in str(info.value)
    assert SECRET not in str(info.value)


async def test_request_aiohttp_refuses_to_build_is_not_retried(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    """A borrowed session's bad default header makes aiohttp raise ValueError locally."""
    caplog.set_level(logging.INFO, logger="sendkit_async")
    async with (
        aiohttp.ClientSession(headers={"X-Trace": "a\r\nb"}) as session,
        AsyncSendKit(api_key=KEY, base_url=server.base_url, session=session) as client,
    ):
        with pytest.raises(errors.InvalidRequestError) as info:
            await client.analytics.overview()
    assert not isinstance(info.value, errors.APIConnectionError)
    assert server.requests == []
    assert "retrying" not in caplog.text
    assert KEY not in str(info.value)


@pytest.fixture
async def many_headers() -> AsyncIterator[tuple[str, list[int]]]:
    """A raw server answering every request with 5,000 headers; counts connections."""
    seen = [0, 0]  # connections, requests

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                seen[1] += 1
                headers = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
                writer.write(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_unparseable_answer_is_not_retried(many_headers: tuple[str, list[int]]) -> None:
    base_url, seen = many_headers
    async with AsyncSendKit(api_key=KEY, base_url=base_url) as client:
        with pytest.raises(errors.ResponseValidationError) as info:
            await client.analytics.overview()
    assert seen == [1, 1]
    assert "malformed HTTP response" in str(info.value)
    assert KEY not in str(info.value)


def test_a_bad_retry_option_is_a_configuration_error() -> None:
    from sendkit_async import AsyncSendKit, ConfigurationError, RetryPolicy

    with pytest.raises(ConfigurationError, match="max_retries must be >= 0, got -1"):
        RetryPolicy(max_retries=-1)
    client = AsyncSendKit(api_key="sk_test", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="max_retries must be >= 0"):
        client.with_options(max_retries=-1)
    with pytest.raises(ConfigurationError, match="deadline must be >= 0"):
        client.with_options(retry=RetryPolicy(deadline=-1.0))
