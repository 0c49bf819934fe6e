"""Every exception aiohttp or the OS can raise during a call maps to our tree."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket

import aiohttp
import aiohttp.client_exceptions
import pytest
from aiohttp import web
from yarl import URL

from sendkit_async import AsyncSendKit, RetryPolicy, Timeout, errors
from sendkit_async._transport import Transport, map_exceptions
from tests.helpers import reply, scripted_server

SECRET = "sk_live_in_headers_of_aiohttp_error"


def aiohttp_client_exceptions() -> list[type[BaseException]]:
    found = []
    for name in aiohttp.client_exceptions.__all__:
        obj = getattr(aiohttp.client_exceptions, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            found.append(obj)
    return found


def test_the_list_is_not_empty() -> None:
    names = {cls.__name__ for cls in aiohttp_client_exceptions()}
    assert {"ClientConnectorError", "ServerDisconnectedError", "ClientPayloadError"} <= names
    assert len(names) > 20


@pytest.mark.parametrize("cls", aiohttp_client_exceptions(), ids=lambda c: c.__name__)
def test_every_aiohttp_client_exception_is_mapped(cls: type[BaseException]) -> None:
    exc = cls.__new__(cls)  # constructors differ; mapping must not depend on them
    with pytest.raises(errors.SendKitError) as info, map_exceptions("GET", "https://h/x"):
        raise exc
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (asyncio.TimeoutError(), errors.APITimeoutError),
        (TimeoutError(), errors.APITimeoutError),
        (aiohttp.ServerTimeoutError(), errors.APITimeoutError),
        (ConnectionResetError(104, "Connection reset by peer"), errors.APIConnectionError),
        (OSError(101, "Network is unreachable"), errors.APIConnectionError),
        (aiohttp.ServerDisconnectedError(), errors.APIConnectionError),
        (aiohttp.ClientPayloadError("bad chunk"), errors.APIConnectionError),
        (aiohttp.InvalidURL("::"), errors.ConfigurationError),
    ],
)
def test_specific_mappings(exc: BaseException, expected: type[errors.SendKitError]) -> None:
    with pytest.raises(expected), map_exceptions("GET", "https://h/x"):
        raise exc


def test_os_error_detail_kept() -> None:
    with pytest.raises(errors.APIConnectionError) as info, map_exceptions("GET", "https://h/x"):
        raise ConnectionResetError(104, "Connection reset by peer")
    assert str(info.value) == (
        "connection error during GET https://h/x (ConnectionResetError: Connection reset by peer)"
    )


def test_aiohttp_text_with_headers_never_copied() -> None:
    info_obj = aiohttp.RequestInfo(
        url=__import__("yarl").URL("https://h/x"),
        method="GET",
        headers=__import__("multidict").CIMultiDictProxy(
            __import__("multidict").CIMultiDict({"X-Api-Key": SECRET})
        ),
    )
    original = aiohttp.ClientResponseError(info_obj, (), status=500, message="boom")
    assert SECRET in repr(original)  # the reason we never reuse aiohttp's text
    with pytest.raises(errors.SendKitError) as info, map_exceptions("GET", "https://h/x"):
        raise original
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_cancellation_is_not_mapped() -> None:
    with pytest.raises(asyncio.CancelledError), map_exceptions("GET", "https://h/x"):
        raise asyncio.CancelledError


async def test_connect_timeout_bounds_opening_a_connection() -> None:
    """A listener whose accept queue is full drops SYNs: only `connect` ends the wait."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (never accepted)
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        async with AsyncSendKit(
            api_key="sk_test_key",
            base_url=f"http://127.0.0.1:{port}",
            timeout=Timeout(total=None, connect=0.2),
            retry=RetryPolicy(max_retries=0),
        ) as client:
            # The guard only stops a hang; without `connect` nothing else would end it.
            with pytest.raises(errors.APITimeoutError):
                await asyncio.wait_for(client.analytics.overview(), timeout=20)
    finally:
        for sock in [*fillers, listener]:
            sock.close()


async def _cut_short(request: web.Request) -> web.StreamResponse:
    """Headers promise 1,000 bytes; a few come, then the connection drops."""
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b'{"success": true, ')
    assert request.transport is not None
    request.transport.close()
    return response


async def test_a_body_cut_short_fails_and_gives_the_pool_slot_back() -> None:
    async with scripted_server() as server:
        server.add(_cut_short, reply({"success": True, "data": {}}))
        transport = Transport(connection_limit=1)
        try:
            with pytest.raises(errors.APIConnectionError):
                await transport.request("GET", URL(server.base_url + "/a"), timeout=10)
            # One connection in all: a leaked one would make this wait until it timed out.
            raw = await transport.request("GET", URL(server.base_url + "/b"), timeout=10)
            assert (raw.status, raw.body) == (200, b'{"success": true, "data": {}}')
        finally:
            await transport.aclose()


async def test_cancelled_mid_body_the_pool_slot_comes_back() -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"{")
        started.set()
        await finish.wait()
        return response

    async with scripted_server() as server:
        server.add(stalls, reply({"success": True, "data": {}}))
        transport = Transport(connection_limit=1)
        try:
            task = asyncio.create_task(
                transport.request("GET", URL(server.base_url + "/a"), timeout=10)
            )
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            raw = await transport.request("GET", URL(server.base_url + "/b"), timeout=10)
            assert raw.status == 200
        finally:
            finish.set()
            await transport.aclose()
