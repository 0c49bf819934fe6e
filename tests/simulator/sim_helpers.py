"""Helpers shared by the simulator tests (plain module, imported by name)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from sendkit_async.simulator import _app

KEY = "sk_test_simulator"
HEADERS = {"X-Api-Key": KEY}


async def fetch(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    """GET ``url``: (status, parsed JSON body or text, headers)."""
    async with session.get(url, **kwargs) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json(), resp.headers
        return resp.status, await resp.text(), resp.headers


class HeldSleeps:
    """Stands in for ``asyncio`` inside the simulator's request pipeline: every sleep it
    asks for (a request's latency, a step of a workspace-wide aggregation) is recorded
    and lasts until :meth:`release`, so a test sees requests overlap without timing them.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays: list[float] = []
        self._released = asyncio.Event()
        monkeypatch.setattr(_app, "asyncio", self)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        await self._released.wait()
        await asyncio.sleep(0)

    def release(self) -> None:
        self._released.set()


STATUSES = {"draft", "active", "paused", "completed", "archived"}
LEAD_STATUSES = {
    "active",
    "completed",
    "paused",
    "bounced",
    "removed",
    "failed",
    "unsubscribed",
    "replied",
    "pending",
}
FUNNEL = ("sent", "opened", "clicked", "bounced")


def _sums(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(r[k] for r in rows) for k in FUNNEL}


def _check_funnel(row: dict[str, Any]) -> None:
    assert 0 <= row["opened"] <= row["sent"], row
    assert 0 <= row["clicked"] <= row["opened"], row
    assert 0 <= row["bounced"] <= row["sent"], row
    if "replied" in row:
        assert 0 <= row["replied"] <= row["sent"], row


def check_analytics(data: dict[str, Any], shape: str, total_leads: int | None) -> None:
    """Assert every documented consistency rule of one campaign-analytics ``data``."""
    camp = data["campaign"]
    assert set(camp) == {"id", "name", "status"}
    assert len(camp["id"]) == 24
    assert int(camp["id"], 16) >= 0
    assert camp["status"] in STATUSES
    assert camp["name"]
    stats, steps = data["stats"], data["stepStats"]
    breakdown = data["statusBreakdown"]
    assert set(breakdown) <= LEAD_STATUSES
    assert all(v > 0 for v in breakdown.values())
    for row in steps:
        _check_funnel(row)
    _check_funnel(stats)
    assert data["totalReplied"] == stats["replied"]
    main = _sums(steps)
    if shape == "original":
        assert set(data) == {"campaign", "stats", "stepStats", "statusBreakdown", "totalReplied"}
        assert set(stats) == {"totalLeads", *FUNNEL, "replied"}
        assert [r["_id"] for r in steps] == list(range(1, len(steps) + 1))
        assert {k: stats[k] for k in FUNNEL} == main
        assert sum(breakdown.values()) == stats["totalLeads"]
        if total_leads is not None:
            assert stats["totalLeads"] == total_leads
        return
    assert set(stats) == {
        "sent",
        "delivered",
        "opened",
        "clicked",
        "replied",
        "bounced",
        "unsubscribed",
    }
    assert [r["_id"] for r in steps] == list(range(len(steps)))
    assert data["bySequence"]["main"] == main
    subs = data["subsequences"]
    for sub in subs:
        assert set(sub) == {
            "id",
            "name",
            "trigger",
            "enabled",
            "archived",
            "addedCount",
            "currentlyEnrolled",
            "stats",
            "stepStats",
        }
        assert set(sub["trigger"]) == {"type", "value"}
        assert 0 <= sub["currentlyEnrolled"] <= sub["addedCount"]
        assert [r["_id"] for r in sub["stepStats"]] == list(range(len(sub["stepStats"])))
        assert {k: sub["stats"][k] for k in FUNNEL} == _sums(sub["stepStats"])
        _check_funnel(sub["stats"])
    sub_total = _sums([s["stats"] for s in subs])
    assert data["bySequence"]["subsequence"] == sub_total
    assert {k: stats[k] for k in FUNNEL} == {k: main[k] + sub_total[k] for k in FUNNEL}
    assert stats["delivered"] == stats["sent"] - stats["bounced"]
    assert 0 <= data["totalPositiveReplied"] <= data["totalReplied"]
    if total_leads is not None:
        assert sum(breakdown.values()) == total_leads
        assert 0 <= stats["unsubscribed"] <= total_leads
