"""Fault injection over HTTP: 5xx answers, resets, latency, slow bodies, reproducibility."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from sendkit_async.simulator import SimulatorConfig, run_simulator
from tests.helpers import wait_until
from tests.simulator.sim_helpers import HeldSleeps, fetch


async def test_faults_statuses_bodies_and_retry_after(session: aiohttp.ClientSession) -> None:
    cfg = SimulatorConfig(campaigns=3, seed=1, fault_rate=1.0, fault_retry_after=True)
    async with run_simulator(cfg) as sim:
        seen: dict[tuple[int, str], int] = {}
        for _ in range(120):
            async with session.get(f"{sim.base_url}/v1/analytics/overview") as resp:
                kind = resp.content_type
                text = await resp.text()
                assert resp.status in (500, 502, 503)
                if kind == "text/html":
                    assert text.startswith("<html><body><h1>")
                    assert str(resp.status) in text
                else:
                    body = await resp.json()
                    assert body["code"] == resp.status
                    assert set(body) == {"error", "message", "code"}
                retry_after = resp.headers.get("Retry-After")
                assert retry_after == ("1" if resp.status == 503 else None)
                seen[(resp.status, kind)] = seen.get((resp.status, kind), 0) + 1
        assert len(seen) == 6  # every status, in both body kinds
        assert sim.stats.requests_total == 120
        assert sum(sim.stats.by_status.values()) == 120
        sim.update(fault_rate=0.0)
        assert (await fetch(session, f"{sim.base_url}/v1/analytics/overview"))[0] == 200


async def test_html_502_body_exact(session: aiohttp.ClientSession) -> None:
    cfg = SimulatorConfig(campaigns=1, fault_rate=1.0)
    async with run_simulator(cfg) as sim:
        for _ in range(60):
            async with session.get(f"{sim.base_url}/v1/campaigns") as resp:
                if resp.status == 502 and resp.content_type == "text/html":
                    assert await resp.text() == "<html><body><h1>502 Bad Gateway</h1></body></html>"
                    return
                await resp.read()
        pytest.fail("no HTML 502 in 60 faults")


async def test_fault_draws_are_reproducible(session: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        cfg = SimulatorConfig(campaigns=2, seed=seed, fault_rate=0.3)
        async with run_simulator(cfg) as sim:
            out = []
            for _ in range(40):
                async with session.get(f"{sim.base_url}/v1/analytics/mailboxes") as resp:
                    await resp.read()
                    out.append(resp.status)
            return out

    first = await statuses(8)
    assert first == await statuses(8)
    assert 200 in first
    assert any(s >= 500 for s in first)
    assert first != await statuses(9)


async def test_reset_gives_client_connection_error_without_log_noise(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_simulator(SimulatorConfig(campaigns=2, reset_rate=1.0)) as sim:
        for _ in range(3):
            with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
                await fetch(session, f"{sim.base_url}/v1/analytics/overview")
        assert sim.stats.resets >= 3  # aiohttp retries a GET once on a dropped keep-alive
        assert sim.stats.by_status == {}
        assert sim.stats.timeline == []
        sim.update(reset_rate=0.0)
        assert (await fetch(session, f"{sim.base_url}/v1/analytics/overview"))[0] == 200
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []


async def test_latency_overlaps_requests(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldSleeps(monkeypatch)  # each latency lasts until released, not 150 ms
    async with run_simulator(SimulatorConfig(campaigns=2, latency_ms=150, jitter_ms=20)) as sim:
        url = f"{sim.base_url}/v1/analytics/overview"
        calls = asyncio.gather(*(fetch(session, url) for _ in range(8)))
        # All eight wait out their latency at once: it does not serialise requests.
        try:
            await wait_until(lambda: sim.stats.in_flight == 8)
            assert sim.stats.max_concurrency == 8
        finally:
            held.release()
            results = await calls
        assert [r[0] for r in results] == [200] * 8
        assert sim.stats.max_concurrency == 8
        assert sim.stats.in_flight == 0
    latencies = [d for d in held.delays if d > 0]  # not the aggregation's sleep(0) steps
    assert len(latencies) == 8
    assert all(0.15 <= d <= 0.17 for d in latencies)  # latency plus up to 20 ms jitter
    assert len(set(latencies)) > 1  # the jitter is drawn per request


async def test_slow_body_is_complete(session: aiohttp.ClientSession) -> None:
    cfg = SimulatorConfig(campaigns=30, slow_body_ms=80, rate_limit=100.0)
    async with run_simulator(cfg) as sim:
        cid = sim.campaign_ids[4]
        url = f"{sim.base_url}/v1/analytics/campaigns/{cid}"
        chunks = []
        async with session.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["X-RateLimit-Limit"] == "100"
            async for chunk in resp.content.iter_any():
                chunks.append(chunk)
        body = b"".join(chunks)
        assert int(resp.headers["Content-Length"]) == len(body)
        sim.update(slow_body_ms=0)
        async with session.get(url) as fast:
            assert await fast.read() == body
