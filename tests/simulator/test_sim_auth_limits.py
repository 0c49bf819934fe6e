"""Authentication and per-key rate limiting over HTTP (fake limiter clock, no sleeping)."""

from __future__ import annotations

import aiohttp
import pytest

from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.simulator.sim_helpers import fetch

FORBIDDEN = {
    "error": "Forbidden",
    "message": "You don't have permission to access this resource",
    "code": 403,
}
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "retry-after-ms",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)


async def test_auth_rules(bare: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=3)) as sim:
        url = f"{sim.base_url}/v1/analytics/overview"
        ok_headers = [
            {"X-Api-Key": "sk_live_abc-DEF_123"},
            {"Authorization": "Bearer sk_live_abc"},
            {"Authorization": "bearer sk_live_abc"},
            {"X-Api-Key": "sk_user_abc", "X-Workspace-Id": "ws_1"},
            {"Authorization": "Bearer sk_user_abc", "X-Workspace-Id": "ws_1"},
        ]
        for headers in ok_headers:
            assert (await fetch(bare, url, headers=headers))[0] == 200, headers
        bad_headers = [
            {},
            {"X-Api-Key": ""},
            {"X-Api-Key": "pk_live_abc"},
            {"X-Api-Key": "sk_"},
            {"X-Api-Key": "sk_has space"},
            {"Authorization": "Basic c2tfbGl2ZQ=="},
            {"Authorization": "Bearer"},
            {"X-Api-Key": "sk_user_"},
        ]
        for headers in bad_headers:
            status, body, _ = await fetch(bare, url, headers=headers)
            assert status == 401, headers
            assert body["error"] == "Unauthorized"
            assert body["code"] == 401
            assert "sk_" not in body["message"]  # the key is never echoed
        status, body, _ = await fetch(bare, url, headers={"X-Api-Key": "sk_user_abc"})
        assert status == 403
        assert body == FORBIDDEN


async def test_restricted_keys(bare: aiohttp.ClientSession) -> None:
    cfg = SimulatorConfig(campaigns=3, api_keys=("sk_good", "sk_user_team"))
    async with run_simulator(cfg) as sim:
        url = f"{sim.base_url}/v1/campaigns"
        assert (await fetch(bare, url, headers={"X-Api-Key": "sk_good"}))[0] == 200
        assert (await fetch(bare, url, headers={"Authorization": "Bearer sk_good"}))[0] == 200
        assert (await fetch(bare, url, headers={"X-Api-Key": "sk_other"}))[0] == 401
        assert (await fetch(bare, url, headers={"X-Api-Key": "sk_user_team"}))[0] == 403
        team = {"X-Api-Key": "sk_user_team", "X-Workspace-Id": "w1"}
        assert (await fetch(bare, url, headers=team))[0] == 200
        assert set(sim.stats.by_key).isdisjoint({"sk_good", "sk_other", "sk_user_team"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(mode: str, rate: float = 2.0, burst: int = 2) -> tuple[SimulatorConfig, FakeClock]:
    return SimulatorConfig(campaigns=3, rate_limit=rate, burst=burst, rate_limit_headers=mode), (
        FakeClock()
    )


async def hit(session: aiohttp.ClientSession, sim: Simulator) -> tuple[int, dict[str, str]]:
    status, body, headers = await fetch(session, f"{sim.base_url}/v1/analytics/overview")
    if status == 429:
        assert body == {"error": "Too Many Requests", "message": "Rate limit exceeded", "code": 429}
    return status, {k: headers[k] for k in RATE_HEADERS if k in headers}


async def test_x_ratelimit_headers(session: aiohttp.ClientSession) -> None:
    cfg, clock = limited("x-ratelimit")
    async with run_simulator(cfg) as sim:
        sim.clock = clock
        assert await hit(session, sim) == (
            200,
            {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "0.5"},
        )
        assert await hit(session, sim) == (
            200,
            {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
        )
        clock.now += 0.2
        assert await hit(session, sim) == (
            429,
            {
                "X-RateLimit-Limit": "2",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "0.8",
                "Retry-After": "1",
                "retry-after-ms": "300",
            },
        )
        clock.now += 0.3  # exactly one token back: the 429 cost nothing
        status, headers = await hit(session, sim)
        assert status == 200
        assert headers["X-RateLimit-Remaining"] == "0"
        assert sim.stats.by_status == {200: 3, 429: 1}


async def test_ietf_headers(session: aiohttp.ClientSession) -> None:
    cfg, clock = limited("ietf", rate=0.5, burst=3)
    async with run_simulator(cfg) as sim:
        sim.clock = clock
        assert await hit(session, sim) == (
            200,
            {
                "RateLimit-Limit": "3",
                "RateLimit-Remaining": "2",
                "RateLimit-Reset": "2",
                "RateLimit-Policy": "3;w=6",
            },
        )
        await hit(session, sim)
        await hit(session, sim)
        status, headers = await hit(session, sim)
        assert status == 429
        assert headers == {
            "RateLimit-Limit": "3",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "6",
            "RateLimit-Policy": "3;w=6",
            "Retry-After": "2",
        }
        clock.now += 2.0
        assert (await hit(session, sim))[0] == 200


@pytest.mark.parametrize("mode", ["retry-after-only", "none"])
async def test_sparse_header_modes(session: aiohttp.ClientSession, mode: str) -> None:
    cfg, clock = limited(mode, rate=0.25, burst=1)
    async with run_simulator(cfg) as sim:
        sim.clock = clock
        assert await hit(session, sim) == (200, {})
        expected = {"Retry-After": "4"} if mode == "retry-after-only" else {}
        assert await hit(session, sim) == (429, expected)
        clock.now += 4
        assert await hit(session, sim) == (200, {})


async def test_limits_are_per_key_and_updatable(bare: aiohttp.ClientSession) -> None:
    cfg, clock = limited("x-ratelimit", rate=1, burst=1)
    async with run_simulator(cfg) as sim:
        sim.clock = clock
        url = f"{sim.base_url}/v1/campaigns"
        a, b = {"X-Api-Key": "sk_a"}, {"X-Api-Key": "sk_b"}
        assert (await fetch(bare, url, headers=a))[0] == 200
        assert (await fetch(bare, url, headers=a))[0] == 429
        assert (await fetch(bare, url, headers=b))[0] == 200
        sim.update(rate_limit=None)
        for _ in range(5):
            status, _, headers = await fetch(bare, url, headers=a)
            assert status == 200
            assert "X-RateLimit-Limit" not in headers
        sim.update(rate_limit=1.0, burst=3)
        assert (await fetch(bare, url, headers=a))[2]["X-RateLimit-Limit"] == "3"
        with pytest.raises(ValueError, match="seed"):
            sim.update(seed=3)
        with pytest.raises(ValueError, match="burst"):
            sim.update(burst=0)
        # Admin routes are never limited nor counted.
        before = sim.stats.requests_total
        for _ in range(5):
            async with bare.get(f"{sim.base_url}/_simulator/stats") as resp:
                assert resp.status == 200
        assert sim.stats.requests_total == before
