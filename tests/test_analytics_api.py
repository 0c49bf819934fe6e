"""Overview, daily series, mailboxes and the campaign listing (issue: rest of the API)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiohttp import web

from sendkit_async import (
    AsyncSendKit,
    CampaignSummary,
    DailyStats,
    InvalidRequestError,
    NotFoundError,
    Percent,
    ResponseValidationError,
    RetryPolicy,
    SequenceStats,
)
from sendkit_async._converter import unstructure
from tests.helpers import GUARD, KEY, Script, fixture, reply

SUB = "665c1b2c3d4e5f6a7b8c9d20"


def client_for(server: Script) -> AsyncSendKit:
    return AsyncSendKit(api_key=KEY, base_url=server.base_url, retry=RetryPolicy(max_retries=0))


async def test_overview_fixture(server: Script) -> None:
    server.add(reply(fixture("analytics_overview.json")))
    async with client_for(server) as client:
        o = await client.analytics.overview()
    assert server.raw_paths == ["/v1/analytics/overview"]
    assert (o.total_sent, o.total_opened, o.total_clicked, o.total_bounced) == (
        12500,
        5625,
        1250,
        375,
    )
    assert (o.total_replied, o.total_positive_replied) == (625, 312)
    assert (o.total_campaigns, o.active_campaigns) == (8, 3)
    assert o.by_sequence is not None
    assert o.by_sequence.main == SequenceStats(sent=11000, opened=4950, clicked=1100, bounced=330)
    assert o.by_sequence.subsequence == SequenceStats(
        sent=1500, opened=675, clicked=150, bounced=45
    )
    assert o.rates.open == Percent("45.0")
    assert o.rates.open.percent == 45.0
    assert o.rates.open.fraction == pytest.approx(0.45)
    assert o.rates.click is not None and o.rates.click.percent == 10.0
    assert o.rates.reply is not None and o.rates.reply.percent == 5.0
    assert o.rates.positive_reply is not None and o.rates.positive_reply.percent == 2.5
    assert o.rates.bounce is not None and o.rates.bounce.raw == "3.0"
    assert str(o.rates.bounce) == "3.0%"
    assert unstructure(o) == fixture("analytics_overview.json")["data"]


def test_percent_garbage_is_none() -> None:
    assert Percent("n/a").percent is None
    assert Percent("n/a").fraction is None


async def test_daily_fixture_and_params(server: Script) -> None:
    server.add(reply(fixture("analytics_daily.json")))
    async with client_for(server) as client:
        rows = await client.analytics.daily(
            from_=dt.date(2024, 5, 28), to=dt.datetime(2024, 5, 29, 23, 0), subsequence="main"
        )
    assert server.raw_paths == [
        "/v1/analytics/daily?from=2024-05-28&to=2024-05-29T23%3A00%3A00&subsequenceId=main"
    ]
    assert rows == [
        DailyStats(dt.date(2024, 5, 28), 150, 68, 15, 4, 7, 3),
        DailyStats(dt.date(2024, 5, 29), 140, 61, 12, 5, 6, 2),
    ]
    assert rows[0].open_rate == pytest.approx(68 / 150)


@pytest.mark.parametrize("bad", ["Main", "abc", SUB[:-1], SUB + "0", "", 7])
async def test_daily_rejects_bad_subsequence(server: Script, bad: Any) -> None:
    async with client_for(server) as client:
        with pytest.raises(InvalidRequestError, match="subsequence"):
            await client.analytics.daily(subsequence=bad)
    assert server.raw_paths == []


async def test_daily_default_and_subsequence_id(server: Script) -> None:
    server.add(reply(fixture("analytics_daily.json")), reply({"success": True, "data": []}))
    async with client_for(server) as client:
        assert len(await client.analytics.daily()) == 2
        assert await client.analytics.daily(subsequence=SUB) == []
    assert server.raw_paths == ["/v1/analytics/daily", f"/v1/analytics/daily?subsequenceId={SUB}"]


async def test_campaign_daily(server: Script) -> None:
    server.add(reply(fixture("analytics_daily.json")), reply(fixture("error_404.json"), 404))
    async with client_for(server) as client:
        rows = await client.analytics.campaign_daily("a/b", from_="2024-05-01")
        with pytest.raises(NotFoundError):
            await client.analytics.campaign_daily("000000000000000000000000")
    assert server.raw_paths[0] == "/v1/analytics/daily/campaigns/a%2Fb?from=2024-05-01"
    assert rows[1].date == dt.date(2024, 5, 29)


MAILBOXES = {
    "success": True,
    "data": [
        {
            "_id": "66aa00000000000000000001",
            "email": "ana@example.com",
            "displayName": "Ana",
            "status": "active",
            "totalSent": 1200,
            "totalReceived": 80,
            "bounceRate": 0.02,
            "sentToday": 35,
            "dailySendLimit": 50,
            "warmup": {"enabled": True, "status": "active"},
        }
    ],
}


async def test_mailboxes(server: Script) -> None:
    server.add(reply(MAILBOXES))
    async with client_for(server) as client:
        (box,) = await client.analytics.mailboxes()
    assert box.id == "66aa00000000000000000001"
    assert (box.email, box.display_name, box.status) == ("ana@example.com", "Ana", "active")
    assert (box.total_sent, box.total_received, box.sent_today, box.daily_send_limit) == (
        1200,
        80,
        35,
        50,
    )
    assert box.bounce_rate == 0.02
    assert box.warmup is not None and box.warmup.enabled is True
    assert unstructure(box) == MAILBOXES["data"][0]  # type: ignore[index]


async def test_campaign_page_fixture(server: Script) -> None:
    server.add(reply(fixture("campaigns_page.json")))
    async with client_for(server) as client:
        page = await client.campaigns.list(status="active", search="Q1 & co", limit=2)
    assert server.raw_paths == ["/v1/campaigns?status=active&search=Q1%20%26%20co&limit=2"]
    assert [c.id for c in page.items] == ["664a1b2c3d4e5f6a7b8c9d02", "664a1b2c3d4e5f6a7b8c9d03"]
    first = page.items[0]
    assert (first.name, first.status) == ("Q1 Outreach", "active")
    assert first.stats is not None
    assert (first.stats.total_leads, first.stats.contacted, first.stats.total_emails_sent) == (
        200,
        150,
        150,
    )
    assert page.pagination.limit == 2
    assert page.pagination.total == 45
    assert page.pagination.has_more is True
    assert page.pagination.next_cursor == "664a1b2c3d4e5f6a7b8c9d03"


@pytest.mark.parametrize("bad", [0, 101, -1, True, 2.5])
async def test_list_rejects_bad_limit(server: Script, bad: Any) -> None:
    async with client_for(server) as client:
        with pytest.raises(InvalidRequestError, match="limit"):
            await client.campaigns.list(limit=bad)


def page(ids: list[str], has_more: bool, cursor: str | None) -> dict[str, Any]:
    return {
        "success": True,
        "data": [{"_id": i, "name": f"c{i}", "status": "active"} for i in ids],
        "pagination": {"limit": 2, "total": 9, "hasMore": has_more, "nextCursor": cursor},
    }


async def test_iter_follows_cursor_and_stops_on_has_more_false(server: Script) -> None:
    server.add(
        reply(page(["a", "b"], True, "b")),
        reply(page([], True, "b2")),  # an empty page with hasMore: keep going
        reply(page(["c"], False, "c")),  # hasMore false wins over a cursor
        reply(page(["never"], False, None)),
    )
    async with client_for(server) as client:
        got = [c async for c in client.campaigns.iter(status="paused", page_size=2)]
    assert [c.id for c in got] == ["a", "b", "c"]
    assert all(isinstance(c, CampaignSummary) for c in got)
    assert server.raw_paths == [
        "/v1/campaigns?status=paused&limit=2",
        "/v1/campaigns?status=paused&limit=2&cursor=b",
        "/v1/campaigns?status=paused&limit=2&cursor=b2",
    ]


async def test_iter_refuses_a_repeated_cursor(server: Script) -> None:
    server.add(reply(page(["a"], True, "x")), reply(page(["b"], True, "x")))
    async with client_for(server) as client:
        with pytest.raises(ResponseValidationError, match="repeated"):
            _ = [c async for c in client.campaigns.iter()]
    assert server.count() == 2


async def test_iter_refuses_has_more_without_cursor(server: Script) -> None:
    server.add(reply(page(["a"], True, None)))
    async with client_for(server) as client:
        with pytest.raises(ResponseValidationError, match="nextCursor"):
            _ = [c async for c in client.campaigns.iter()]


async def test_first_analytics_arrive_before_listing_ends(server: Script) -> None:
    # The listing's second page is held until the first result is in the caller's hands:
    # a stream that waited for the whole listing would never yield (and fail on GUARD).
    listing_done, release = asyncio.Event(), asyncio.Event()
    pages = [page([f"{i:024x}", f"{i + 1:024x}"], i < 8, f"{i + 1:024x}") for i in range(0, 10, 2)]

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/v1/campaigns":
            if len(pages) < 5:
                await release.wait()
            body = pages.pop(0)
            if not pages:
                listing_done.set()
            return web.json_response(body)
        data = fixture("analytics_campaign_seed.json")
        data["data"]["campaign"]["id"] = request.path.rsplit("/", 1)[-1]
        return web.json_response(data)

    server.default = handler
    async with client_for(server) as client:
        stream = client.iter_campaigns(client.campaigns.iter_ids(), concurrency=4)
        try:
            first = await asyncio.wait_for(anext(stream), GUARD)
            assert not listing_done.is_set()
            assert server.count("/v1/campaigns") <= 2  # the first page, the second held
        finally:
            release.set()
        rest = [r async for r in stream]
        assert listing_done.is_set()
    assert first.ok
    assert len(rest) == 9
