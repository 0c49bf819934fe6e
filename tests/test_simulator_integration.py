"""The SDK against the simulator: every endpoint parses with the STRICT converter.

The strict converter rejects unknown keys, so a drift between the simulator's
bodies and our models (or the documented shapes) fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sendkit_async import (
    AsyncSendKit,
    CampaignAnalytics,
    CampaignSummary,
    DailyStats,
    Mailbox,
    NotFoundError,
    Overview,
    Pagination,
)
from sendkit_async._converter import structure
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator

KEY = "sk_integration"


@pytest.fixture(params=["current", "original"])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=60, seed=11, shape=request.param)) as s:
        yield s


async def raw(sim: Simulator, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.base_url + path, headers={"X-Api-Key": KEY}) as response,
    ):
        assert response.status == 200
        return json.loads(await response.read())


async def test_every_endpoint_parses_strictly(sim: Simulator) -> None:
    cid = sim.campaign_ids[0]
    structure(
        (await raw(sim, f"/v1/analytics/campaigns/{cid}"))["data"], CampaignAnalytics, strict=True
    )
    structure((await raw(sim, "/v1/analytics/overview"))["data"], Overview, strict=True)
    structure((await raw(sim, "/v1/analytics/daily"))["data"], tuple[DailyStats, ...], strict=True)
    structure(
        (await raw(sim, f"/v1/analytics/daily/campaigns/{cid}"))["data"],
        tuple[DailyStats, ...],
        strict=True,
    )
    structure((await raw(sim, "/v1/analytics/mailboxes"))["data"], tuple[Mailbox, ...], strict=True)
    page = await raw(sim, "/v1/campaigns?limit=5")
    structure(page["data"], tuple[CampaignSummary, ...], strict=True)
    structure(page["pagination"], Pagination, strict=True)


async def test_client_reads_the_whole_simulated_workspace(sim: Simulator) -> None:
    async with AsyncSendKit(api_key=KEY, base_url=sim.base_url) as client:
        listed = [c async for c in client.campaigns.iter(page_size=7)]
        overview = await client.analytics.overview()
        results = await client.gather_campaigns([c.id for c in listed])
        daily = await client.analytics.daily()
        boxes = await client.analytics.mailboxes()
        with pytest.raises(NotFoundError):
            await client.analytics.campaign_daily("ffffffffffffffffffffffff")
    assert [c.id for c in listed] == sim.campaign_ids
    assert overview.total_campaigns == 60
    assert overview.total_sent == sum(r.sent for r in results)
    assert sum(r.total_replied or 0 for r in results) == overview.total_replied
    assert len(daily) == 30
    assert daily == sorted(daily, key=lambda row: row.date)
    assert boxes
    assert all(b.bounce_rate is not None and 0 <= b.bounce_rate <= 1 for b in boxes)
    for r in results:
        assert r.sent == sum(s.sent or 0 for s in r.step_stats) + sum(
            (sub.stats.sent or 0) if sub.stats else 0 for sub in r.subsequences
        )
        assert sum(r.status_breakdown.values()) == (
            r.stats.total_leads or sum(r.status_breakdown.values())
        )
