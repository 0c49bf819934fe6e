"""Single request/response cases with aioresponses (no server at all)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aioresponses import aioresponses

from sendkit_async import AsyncSendKit, ConflictError, PermissionDeniedError, RateLimitError
from tests.helpers import KEY, ShimClientResponse, fixture

BASE = "https://api.sendkit.ai"
CAMPAIGN = "664a1b2c3d4e5f6a7b8c9d02"
URL = f"{BASE}/v1/analytics/campaigns/{CAMPAIGN}"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def make_client() -> AsyncSendKit:
    return AsyncSendKit(api_key=KEY, max_retries=0)


async def test_seed_body(mocked: aioresponses) -> None:
    mocked.get(
        URL, payload=fixture("analytics_campaign_seed.json"), response_class=ShimClientResponse
    )
    async with make_client() as client:
        result = await client.analytics.campaign(CAMPAIGN)
    assert result.stats.total_leads == 500
    assert result.step_stats[2].sent == 300


async def test_403_envelope(mocked: aioresponses) -> None:
    mocked.get(
        URL, status=403, payload=fixture("error_403.json"), response_class=ShimClientResponse
    )
    async with make_client() as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.error == "Forbidden"
    assert info.value.code == 403


async def test_409_envelope(mocked: aioresponses) -> None:
    body = {"error": "Conflict", "message": "Campaign is being updated", "code": 409}
    mocked.get(URL, status=409, payload=body, response_class=ShimClientResponse)
    async with make_client() as client:
        with pytest.raises(ConflictError, match="Campaign is being updated"):
            await client.analytics.campaign(CAMPAIGN)


async def test_429_retry_after_without_retrying(mocked: aioresponses) -> None:
    mocked.get(
        URL,
        status=429,
        headers={"Retry-After": "12"},
        payload={"error": "Too Many Requests", "message": "slow down", "code": 429},
        response_class=ShimClientResponse,
    )
    async with make_client() as client:
        with pytest.raises(RateLimitError) as info:
            await client.analytics.campaign(CAMPAIGN)
    assert info.value.retry_after == 12.0
    assert client.stats.rate_limited == 1
