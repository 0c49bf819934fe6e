"""Bulk runs lose no id and never hang, whatever a fetch raises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from sendkit_async import (
    AsyncSendKit,
    BulkError,
    BulkReport,
    CampaignAnalytics,
    ClientClosedError,
    RateLimiter,
    RetryPolicy,
    UnexpectedError,
)
from sendkit_async import _protocol as protocol
from sendkit_async.resources.analytics import Analytics
from tests.helpers import KEY, Script
from tests.test_bulk import client_for, ids, serve

# Stands in for a body nested deep enough to exhaust a JSON parser's recursion.
HOSTILE = b"[" * 64 + b"]" * 64


@pytest.fixture
def hostile_server(server: Script, monkeypatch: pytest.MonkeyPatch) -> Script:
    """``server`` answering HOSTILE for ids that end in 'bad', whose parsing raises RecursionError.

    The parser is patched (not fed a real deep body) so the test keeps meaning
    once the parser maps RecursionError itself: bulk must not rely on that.
    """
    serve(server)
    good = server.default
    assert good is not None

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("bad"):
            return web.Response(body=HOSTILE, content_type="application/json")
        result: web.StreamResponse = await good(request)
        return result

    server.default = handler
    real = protocol.parse_envelope

    def parse_envelope(status: int, body: bytes) -> Any:
        if body.startswith(b"[["):
            raise RecursionError("maximum recursion depth exceeded")
        return real(status, body)

    monkeypatch.setattr(protocol, "parse_envelope", parse_envelope)
    return server


def sixty_ids() -> tuple[list[str], set[str]]:
    """60 ids of which 40 (every id but each third) get a hostile body."""
    wanted = [i if n % 3 == 0 else i[3:] + "bad" for n, i in enumerate(ids(60))]
    return wanted, {i for i in wanted if i.endswith("bad")}


def assert_unexpected(error: object) -> None:
    assert isinstance(error, UnexpectedError)
    assert isinstance(error.__cause__, RecursionError)


async def test_gather_records_an_unexpected_exception_as_that_ids_failure(
    hostile_server: Script,
) -> None:
    wanted, bad = sixty_ids()
    async with client_for(hostile_server) as client:
        results = await client.gather_campaigns(wanted, concurrency=8, return_exceptions=True)
        report = client.last_bulk_report
        with pytest.raises(BulkError) as info:
            await client.gather_campaigns(wanted, concurrency=8)
    assert len(results) == 60
    for campaign_id, result in zip(wanted, results, strict=True):
        if campaign_id in bad:
            assert_unexpected(result)
        else:
            assert isinstance(result, CampaignAnalytics)
            assert result.campaign.id == campaign_id
    assert report is not None
    assert (report.succeeded, report.failed) == (20, 40)
    assert report.failures_by_type == {"UnexpectedError": 40}
    assert len(info.value.results) == 20
    assert set(info.value.failures) == bad
    for error in info.value.failures.values():
        assert_unexpected(error)


@pytest.mark.timeout(60)  # the old code hung here for ever
async def test_iter_records_an_unexpected_exception_as_that_ids_failure(
    hostile_server: Script,
) -> None:
    wanted, bad = sixty_ids()
    async with client_for(hostile_server) as client:
        got = {r.id: r async for r in client.iter_campaigns(wanted, concurrency=8)}
    assert set(got) == set(wanted)
    assert sum(r.ok for r in got.values()) == 20
    for campaign_id in bad:
        assert_unexpected(got[campaign_id].error)


Fetch = Callable[[str], Awaitable[CampaignAnalytics]]


def interrupted_run(monkeypatch: pytest.MonkeyPatch, bulk: Callable[[AsyncSendKit], Any]) -> None:
    """Run ``bulk`` with a fetch that hangs except for one id, which raises KeyboardInterrupt.

    Runs its own event loop: the interrupt ends that loop as it would a script.
    """
    started: list[str] = []
    cancelled: list[str] = []

    def fetcher(self: Analytics, **options: Any) -> Fetch:
        gate = asyncio.Event()  # opens once all ten fetches are in

        async def fetch(campaign_id: str) -> CampaignAnalytics:
            started.append(campaign_id)
            if len(started) == 10:
                gate.set()
            try:
                await gate.wait()
                if campaign_id == ids(1)[0]:
                    raise KeyboardInterrupt
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(campaign_id)
                raise
            raise AssertionError("unreachable")

        return fetch

    monkeypatch.setattr(Analytics, "_campaign_fetcher", fetcher)

    async def main() -> None:
        async with AsyncSendKit(api_key=KEY, base_url="http://127.0.0.1:9") as client:
            await bulk(client)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert len(started) == 10
    assert sorted(cancelled) == ids(9, start=1)  # every other worker was cancelled


def test_keyboard_interrupt_in_gather_propagates_and_cancels_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def bulk(client: AsyncSendKit) -> None:
        await client.gather_campaigns(ids(10), concurrency=10)

    interrupted_run(monkeypatch, bulk)


def test_keyboard_interrupt_in_iter_propagates_and_cancels_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def bulk(client: AsyncSendKit) -> None:
        async for result in client.iter_campaigns(ids(10), concurrency=10):
            raise AssertionError(f"nothing can finish, got {result}")

    interrupted_run(monkeypatch, bulk)


async def test_a_stray_cancellation_in_one_fetch_propagates_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fetcher(self: Analytics, **options: Any) -> Fetch:
        async def fetch(campaign_id: str) -> CampaignAnalytics:
            raise asyncio.CancelledError  # e.g. a library's own timeout gone wrong

        return fetch

    monkeypatch.setattr(Analytics, "_campaign_fetcher", fetcher)
    async with AsyncSendKit(api_key=KEY, base_url="http://127.0.0.1:9") as client:
        stream = client.iter_campaigns(ids(3), concurrency=2)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(anext(stream), 30)
        with pytest.raises(asyncio.CancelledError):
            await client.gather_campaigns(ids(3), concurrency=2, return_exceptions=True)


async def test_a_closed_client_raises_once_before_anything_starts(server: Script) -> None:
    serve(server)
    client = client_for(server)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.gather_campaigns(ids(200), return_exceptions=True)
    with pytest.raises(ClientClosedError):
        await client.gather_campaigns(ids(200))
    with pytest.raises(ClientClosedError):
        client.iter_campaigns(ids(200))
    assert client.last_bulk_report is None
    assert server.count() == 0


async def test_two_runs_at_once_each_report_only_their_own_requests(server: Script) -> None:
    """Run a (30 ids, 5 throttled once) and run b (20 ids, 3 throttled, 2 failing once) overlap."""
    run_a, run_b = ["a" + i[1:] for i in ids(30)], ["b" + i[1:] for i in ids(20)]
    throttled = {*run_a[:5], *run_b[:3]}
    faulty = set(run_b[3:5])
    attempts: dict[str, int] = {}
    prefixes: set[str] = set()
    both_running = asyncio.Event()
    serve(server)
    answer = server.default
    assert answer is not None

    async def handler(request: web.Request) -> web.StreamResponse:
        campaign_id = request.path.rsplit("/", 1)[-1]
        prefixes.add(campaign_id[0])
        if len(prefixes) == 2:
            both_running.set()
        await both_running.wait()  # no run gets an answer before the other has started
        attempts[campaign_id] = attempt = attempts.get(campaign_id, 0) + 1
        if attempt == 1 and campaign_id in throttled:
            return web.json_response({}, status=429, headers={"Retry-After": "0"})
        if attempt == 1 and campaign_id in faulty:
            return web.json_response({}, status=500)
        result: web.StreamResponse = await answer(request)
        return result

    server.default = handler
    limiter = RateLimiter(max_concurrency=8, adaptive=False)
    retry = RetryPolicy(max_retries=2, backoff_base=0.001, backoff_max=0.001)
    async with client_for(server, rate_limiter=limiter, retry=retry) as client:

        async def gather(wanted: list[str]) -> BulkReport:
            await client.gather_campaigns(wanted, concurrency=6)
            report = client.last_bulk_report
            assert report is not None
            return report

        report_a, report_b = await asyncio.gather(gather(run_a), gather(run_b))
        stats = client.stats
    assert (report_a.succeeded, report_a.requests, report_a.retries) == (30, 35, 5)
    assert report_a.rate_limited == 5
    assert (report_b.succeeded, report_b.requests, report_b.retries) == (20, 25, 5)
    assert report_b.rate_limited == 3
    assert (stats.requests, stats.retries, stats.rate_limited) == (60, 10, 8)
    assert stats.by_status == {200: 50, 429: 8, 500: 2}
