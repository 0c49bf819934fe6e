"""The simulated endpoints over a real loopback server: envelopes, invariants, paging."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from sendkit_async.simulator import SimulatorConfig, run_simulator
from tests.simulator.sim_helpers import check_analytics, fetch

NOT_FOUND = {"error": "Not Found", "message": "The requested resource was not found", "code": 404}


async def list_all(
    session: aiohttp.ClientSession, base: str, **params: str
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        status, body, _ = await fetch(session, f"{base}/v1/campaigns", params=query)
        assert status == 200
        assert body["success"] is True
        items.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            return items
        cursor = body["pagination"]["nextCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("shape", ["current", "original"])
async def test_all_campaigns_consistent_over_http(
    session: aiohttp.ClientSession, shape: str
) -> None:
    async with run_simulator(SimulatorConfig(campaigns=200, seed=11, shape=shape)) as sim:
        listed = await list_all(session, sim.base_url, limit="100")
        assert [c["_id"] for c in listed] == sim.campaign_ids
        for item in listed:
            status, body, headers = await fetch(
                session, f"{sim.base_url}/v1/analytics/campaigns/{item['_id']}"
            )
            assert status == 200
            assert headers["Content-Type"].startswith("application/json")
            assert set(body) == {"success", "data"}
            assert body["success"] is True
            data = body["data"]
            check_analytics(data, shape, item["stats"]["totalLeads"])
            assert data["campaign"] == {
                "id": item["_id"],
                "name": item["name"],
                "status": item["status"],
            }
            stats = item["stats"]
            assert stats["contacted"] == stats["contactedLeads"]
            assert stats["totalEmailsSent"] == data["stats"]["sent"]
            assert stats["contacted"] == (data["stepStats"][0]["sent"] if data["stepStats"] else 0)


async def test_same_seed_same_bytes_other_seed_differs(session: aiohttp.ClientSession) -> None:
    async def body(seed: int, index: int) -> bytes:
        async with run_simulator(SimulatorConfig(campaigns=20, seed=seed)) as sim:
            url = f"{sim.base_url}/v1/analytics/campaigns/{sim.campaign_ids[index]}"
            async with session.get(url) as resp:
                return await resp.read()

    assert await body(4, 3) == await body(4, 3)
    assert await body(4, 3) != await body(5, 3)


async def test_ranged_analytics_and_bad_dates(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=40)) as sim:
        ws = sim.workspace
        c = next(c for c in ws if c.status == "completed")
        url = f"{sim.base_url}/v1/analytics/campaigns/{c.id}"
        _, whole, _ = await fetch(session, url)
        _, early, _ = await fetch(session, url, params={"to": "2000-01-01"})
        _, late, _ = await fetch(session, url, params={"from": "2000-01-02T00:00:00Z"})
        assert early["data"]["stats"]["sent"] == 0
        assert late["data"] == whole["data"]
        _, half1, _ = await fetch(session, url, params={"to": "2025-01-01"})
        _, half2, _ = await fetch(session, url, params={"from": "2025-01-02T08:30:00+00:00"})
        for part in (half1, half2):
            check_analytics(part["data"], "current", None)
        for key in ("sent", "opened", "replied"):
            assert (
                half1["data"]["stats"][key] + half2["data"]["stats"][key]
                == (whole["data"]["stats"][key])
            )
        for params in (
            {"from": "yesterday"},
            {"to": "2025-13-01"},
            {"from": "2025-05-02", "to": "2025-05-01"},
        ):
            status, err, _ = await fetch(session, url, params=params)
            assert status == 400
            assert err["error"] == "Bad Request"
            assert err["code"] == 400
            assert err["message"]


async def test_not_found_envelopes(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=5)) as sim:
        for path in (
            "/v1/analytics/campaigns/664a1b2c3d4e5f6a7b8c9d02",
            "/v1/analytics/daily/campaigns/nope",
            "/v2/whatever",
            "/",
        ):
            status, body, headers = await fetch(session, sim.base_url + path)
            assert status == 404
            assert body == NOT_FOUND
            assert headers["Content-Type"].startswith("application/json")
        async with session.post(f"{sim.base_url}/v1/campaigns") as resp:
            assert resp.status == 405
            assert await resp.json() == {
                "error": "Method Not Allowed",
                "message": "Method Not Allowed",
                "code": 405,
            }


async def test_overview_matches_campaigns(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=60, seed=2)) as sim:
        status, body, _ = await fetch(session, f"{sim.base_url}/v1/analytics/overview")
        assert status == 200
        data = body["data"]
        details = []
        for cid in sim.campaign_ids:
            details.append(
                (await fetch(session, f"{sim.base_url}/v1/analytics/campaigns/{cid}"))[1]
            )
        assert data["totalSent"] == sum(d["data"]["stats"]["sent"] for d in details)
        assert data["totalReplied"] == sum(d["data"]["totalReplied"] for d in details)
        assert data["totalPositiveReplied"] == sum(
            d["data"]["totalPositiveReplied"] for d in details
        )
        assert data["bySequence"]["main"]["opened"] == sum(
            d["data"]["bySequence"]["main"]["opened"] for d in details
        )
        assert data["totalCampaigns"] == 60
        for rate in data["rates"].values():
            assert re.fullmatch(r"\d+\.\d", rate)
        assert (
            data["totalSent"]
            == data["bySequence"]["main"]["sent"] + (data["bySequence"]["subsequence"]["sent"])
        )


async def test_daily_workspace_and_campaign(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=80, seed=9)) as sim:
        base = sim.base_url
        status, body, _ = await fetch(session, f"{base}/v1/analytics/daily")
        assert status == 200
        rows = body["data"]
        assert len(rows) == 30
        assert rows[-1]["_id"] == "2025-06-30"
        assert rows[0]["_id"] == "2025-06-01"
        assert [r["_id"] for r in rows] == sorted(r["_id"] for r in rows)
        assert set(rows[0]) == {
            "_id",
            "sent",
            "opened",
            "clicked",
            "bounced",
            "replied",
            "positiveReplied",
        }
        _, main, _ = await fetch(
            session, f"{base}/v1/analytics/daily", params={"subsequenceId": "main"}
        )
        assert all(m["sent"] <= r["sent"] for m, r in zip(main["data"], rows, strict=True))
        # The whole timeline sums to the overview.
        _, full, _ = await fetch(
            session, f"{base}/v1/analytics/daily", params={"from": "2020-01-01", "to": "2030-01-01"}
        )
        _, over, _ = await fetch(session, f"{base}/v1/analytics/overview")
        assert len(full["data"]) == 365
        assert sum(r["sent"] for r in full["data"]) == over["data"]["totalSent"]
        # One subsequence, by id; then one campaign.
        owner = next(c for c in sim.workspace if c.subsequences and c.status != "active")
        sub = owner.subsequences[0]
        _, subrows, _ = await fetch(
            session,
            f"{base}/v1/analytics/daily",
            params={"subsequenceId": sub.id, "from": "2024-01-01"},
        )
        assert sum(r["sent"] for r in subrows["data"]) == sub.figures.sent
        _, crows, _ = await fetch(
            session,
            f"{base}/v1/analytics/daily/campaigns/{owner.id}",
            params={"from": "2024-07-01", "to": "2025-06-30"},
        )
        _, detail, _ = await fetch(session, f"{base}/v1/analytics/campaigns/{owner.id}")
        assert sum(r["sent"] for r in crows["data"]) == detail["data"]["stats"]["sent"]
        assert sum(r["replied"] for r in crows["data"]) == detail["data"]["totalReplied"]
        for bad in ("xyz", "664a1b2c3d4e5f6a7b8c9d0", "main2"):
            status, err, _ = await fetch(
                session, f"{base}/v1/analytics/daily", params={"subsequenceId": bad}
            )
            assert status == 400
            assert err["code"] == 400


async def test_mailboxes(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=10)) as sim:
        status, body, _ = await fetch(session, f"{sim.base_url}/v1/analytics/mailboxes")
        assert status == 200
        assert body["success"] is True
        assert body["data"]
        for box in body["data"]:
            assert set(box) == {
                "_id",
                "email",
                "displayName",
                "status",
                "totalSent",
                "totalReceived",
                "bounceRate",
                "sentToday",
                "dailySendLimit",
                "warmup",
            }
            assert "@" in box["email"]
            assert 0 <= box["bounceRate"] < 1
            assert 0 <= box["sentToday"] <= box["dailySendLimit"]
            assert set(box["warmup"]) == {"enabled", "status"}


async def test_pagination_rules(session: aiohttp.ClientSession) -> None:
    async with run_simulator(SimulatorConfig(campaigns=230, seed=1)) as sim:
        base = sim.base_url
        ids = [c["_id"] for c in await list_all(session, base)]
        assert ids == sim.campaign_ids
        assert len(set(ids)) == 230
        _, first, _ = await fetch(session, f"{base}/v1/campaigns")
        assert len(first["data"]) == 25
        assert first["pagination"] == {
            "limit": 25,
            "total": 230,
            "hasMore": True,
            "nextCursor": ids[24],
        }
        _, clamped, _ = await fetch(session, f"{base}/v1/campaigns", params={"limit": "500"})
        assert clamped["pagination"]["limit"] == 100
        assert len(clamped["data"]) == 100
        _, last, _ = await fetch(
            session, f"{base}/v1/campaigns", params={"limit": "100", "cursor": ids[199]}
        )
        assert len(last["data"]) == 30
        assert last["pagination"]["hasMore"] is False
        assert last["pagination"]["nextCursor"] == ids[-1]
        _, empty, _ = await fetch(session, f"{base}/v1/campaigns", params={"cursor": ids[-1]})
        assert empty["data"] == []
        assert empty["pagination"]["hasMore"] is False
        assert empty["pagination"]["nextCursor"] is None

        cores = sim.workspace.cores
        paused = await list_all(session, base, status="paused", limit="7")
        assert [c["_id"] for c in paused] == [
            cid for cid, (_, st) in zip(ids, cores, strict=True) if st == "paused"
        ]
        assert all(c["status"] == "paused" for c in paused)
        _, page, _ = await fetch(session, f"{base}/v1/campaigns", params={"status": "paused"})
        assert page["pagination"]["total"] == len(paused)

        word = cores[0][0].split()[-1]
        found = await list_all(session, base, search=word.upper(), limit="10")
        want = [
            cid for cid, (name, _) in zip(ids, cores, strict=True) if word.lower() in name.lower()
        ]
        assert [c["_id"] for c in found] == want
        assert want

        for params in (
            {"cursor": "ffffffffffffffffffffffff"},
            {"limit": "0"},
            {"limit": "ten"},
            {"status": "running"},
        ):
            status, err, _ = await fetch(session, f"{base}/v1/campaigns", params=params)
            assert status == 400
            assert err["error"] == "Bad Request"
            assert err["code"] == 400
