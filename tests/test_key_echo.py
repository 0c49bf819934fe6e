"""A server that echoes the API key in an error: our errors show it masked, never whole."""

from __future__ import annotations

import pickle

import pytest
from aiohttp import web

from sendkit_async import (
    APIStatusError,
    AsyncSendKit,
    AuthenticationError,
    InternalServerError,
    RateLimitError,
)
from sendkit_async._transport import MASK
from tests.helpers import KEY, PLATFORM_KEY, Script, json_reply

CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"


def echo(status: int, key: str) -> web.Response:
    body = {"error": f"Key {key} refused", "message": f"Invalid API key: {key}", "code": status}
    headers = {"X-Debug-Key": f"got {key}", "Retry-After": "0"}
    return json_reply(body, status, headers)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, AuthenticationError), (429, RateLimitError), (500, InternalServerError)],
)
@pytest.mark.parametrize("key", [KEY, PLATFORM_KEY])
async def test_an_echoed_key_is_masked_in_every_part_of_the_error(
    server: Script, status: int, cls: type[APIStatusError], key: str
) -> None:
    server.add(lambda _: echo(status, key))
    async with AsyncSendKit(api_key=key, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(cls) as info:
            await client.analytics.campaign(CAMPAIGN)
    exc = info.value
    shown = [str(exc), repr(exc), exc.message, exc.body, exc.error or "", *exc.headers.values()]
    assert all(key not in text for text in shown)
    assert f"Invalid API key: {MASK}" in str(exc)
    assert f"Invalid API key: {MASK}" in exc.body
    assert exc.headers["X-Debug-Key"] == f"got {MASK}"
    assert key.encode() not in pickle.dumps(exc)  # stored nowhere in the error


async def test_a_success_body_is_left_alone(server: Script) -> None:
    body = {
        "success": True,
        "data": {"campaign": {"id": CAMPAIGN, "name": f"named {KEY}", "status": "active"}},
    }
    server.add(lambda _: json_reply(body))
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
        result = await client.analytics.campaign(CAMPAIGN)
    assert result.campaign.name == f"named {KEY}"
