"""Request statistics: counters, key hashing, route patterns, admin endpoints."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
from sim_helpers import KEY, fetch

from sendkit_async.simulator import SimulatorConfig, SimulatorStats, run_simulator


async def test_counters_and_admin_endpoints(
    session: aiohttp.ClientSession, bare: aiohttp.ClientSession
) -> None:
    async with run_simulator(SimulatorConfig(campaigns=10)) as sim:
        base = sim.base_url
        cid = sim.campaign_ids[0]
        await fetch(session, f"{base}/v1/analytics/campaigns/{cid}")
        await fetch(session, f"{base}/v1/analytics/campaigns/{sim.campaign_ids[1]}")
        await fetch(session, f"{base}/v1/analytics/campaigns/000000000000000000000000")
        await fetch(session, f"{base}/v1/campaigns")
        await fetch(bare, f"{base}/v1/campaigns")
        await fetch(session, f"{base}/missing")
        stats = sim.stats
        assert isinstance(stats, SimulatorStats)
        assert stats.requests_total == 6
        assert stats.by_status == {200: 3, 404: 2, 401: 1}
        key_label = hashlib.sha256(KEY.encode()).hexdigest()[:8]
        assert stats.by_key == {key_label: 5, "anonymous": 1}
        assert stats.by_path == {
            "/v1/analytics/campaigns/{id}": 3,
            "/v1/campaigns": 2,
            "<unmatched>": 1,
        }
        assert stats.in_flight == 0
        assert stats.max_concurrency == 1
        assert [s for _, s in stats.timeline] == [200, 200, 404, 200, 401, 404]
        times = [t for t, _ in stats.timeline]
        assert times == sorted(times)

        async with bare.get(f"{base}/_simulator/stats") as resp:
            snap = await resp.json()
        assert snap["requests_total"] == 6
        assert snap["by_status"] == {"200": 3, "401": 1, "404": 2}
        assert snap["by_key"] == {key_label: 5, "anonymous": 1}
        assert snap["timeline_length"] == 6
        assert KEY not in str(snap)

        async with bare.post(f"{base}/_simulator/reset") as resp:
            assert resp.status == 200
        assert stats.requests_total == 0
        assert stats.by_status == {}
        assert stats.timeline == []
        async with bare.get(f"{base}/_simulator/nothing") as resp:
            assert resp.status == 404
        assert stats.requests_total == 0


async def test_max_concurrency_and_reset_method(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=5, latency_ms=100)) as sim:
        url = f"{sim.base_url}/v1/analytics/mailboxes"
        await asyncio.gather(*(fetch(session, url) for _ in range(5)))
        assert sim.stats.max_concurrency == 5
        assert sim.stats.by_status == {200: 5}
        sim.stats.reset()
        assert sim.stats.max_concurrency == 0
        assert sim.stats.requests_total == 0
        assert sim.stats.by_key == {}
        assert sim.stats.by_path == {}
        assert sim.stats.resets == 0
        await fetch(session, url)
        assert sim.stats.max_concurrency == 1
        assert sim.stats.requests_total == 1
