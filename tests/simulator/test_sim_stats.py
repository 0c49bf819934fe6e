"""Request statistics: counters, key hashing, route patterns, admin endpoints."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest

from sendkit_async.simulator import Simulator, SimulatorConfig, SimulatorStats, run_simulator
from tests.helpers import wait_until
from tests.simulator.sim_helpers import KEY, HeldSleeps, fetch


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


async def test_max_concurrency_and_reset_method(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSleeps(monkeypatch)  # the latency lasts until released: all five overlap
    async with run_simulator(SimulatorConfig(campaigns=5, latency_ms=100)) as sim:
        url = f"{sim.base_url}/v1/analytics/mailboxes"
        calls = asyncio.gather(*(fetch(session, url) for _ in range(5)))
        try:
            await wait_until(lambda: sim.stats.in_flight == 5)
            assert sim.stats.max_concurrency == 5
        finally:
            held.release()
            await calls
        assert held.delays == [0.1] * 5
        assert sim.stats.in_flight == 0
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


async def test_run_simulator_cleans_up_on_error_and_cancel(bare: aiohttp.ClientSession) -> None:
    seen: list[tuple[Simulator, str]] = []

    async def fail() -> None:
        async with run_simulator(SimulatorConfig(campaigns=2)) as sim:
            seen.append((sim, sim.base_url))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    sim, url = seen[0]
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(aiohttp.ClientConnectionError):
        await bare.get(url)
    with pytest.raises(RuntimeError, match="not being served"):
        _ = sim.base_url

    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def serve_forever() -> None:
        async with run_simulator(SimulatorConfig(campaigns=2)) as sim:
            started.set_result(sim.base_url)
            await asyncio.Event().wait()

    task = asyncio.create_task(serve_forever())
    url = await asyncio.wait_for(started, 5)
    async with bare.get(f"{url}/_simulator/stats") as resp:
        assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        await bare.get(url)


async def test_big_workspace_keeps_serving_while_aggregating(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with run_simulator(SimulatorConfig(campaigns=3000)) as sim:
        order: list[str] = []

        async def get(path: str) -> None:
            async with session.get(sim.base_url + path) as resp:
                assert resp.status == 200
                await resp.read()
            order.append(path)

        held = HeldSleeps(monkeypatch)  # the aggregation's steps wait until released
        slow = asyncio.create_task(get("/v1/analytics/daily"))
        try:
            await wait_until(lambda: bool(held.delays))  # it yielded to the loop mid-way
            await get("/v1/analytics/mailboxes")
            assert sim.stats.in_flight == 1  # answered while the aggregation was under way
        finally:
            held.release()
            await slow
        assert order == ["/v1/analytics/mailboxes", "/v1/analytics/daily"]
        assert len(held.delays) > 1 and set(held.delays) == {0}  # steps, not a wait
