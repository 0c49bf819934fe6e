"""``SendKit``, the blocking client: the async client's results and errors, from any thread.

The simulator runs on a loop in a thread of its own (tests/sync_helpers.py): a
blocking call holds its caller's thread, and with it any loop running there.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp import web
from typing_extensions import assert_type

from sendkit_async import (
    APIResponse,
    AsyncSendKit,
    BulkError,
    CampaignAnalytics,
    CampaignPage,
    CampaignResult,
    CampaignSummary,
    ClientClosedError,
    ConfigurationError,
    InvalidRequestError,
    MemoryCache,
    NotFoundError,
    SendKit,
    SendKitError,
)
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import KEY, Script, json_reply, scripted_server
from tests.sync_helpers import served

MISSING = "ffffffffffffffffffffffff"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with served(lambda: run_simulator(SimulatorConfig(campaigns=40, seed=3))) as (simulator, _):
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[SendKit]:
    with SendKit(api_key=KEY, base_url=sim.base_url) as c:
        yield c


def pending_tasks(client: SendKit) -> set[asyncio.Task[Any]]:
    """Tasks left on the client's loop (read in its thread, outside any task)."""
    portal = client._portal
    return portal.call(lambda: asyncio.all_tasks(portal.loop))


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sendkit-sync"]


async def async_results(sim: Simulator, ids: list[str]) -> list[CampaignAnalytics]:
    async with AsyncSendKit(api_key=KEY, base_url=sim.base_url) as c:
        return [await c.analytics.campaign(i) for i in ids]


# --------------------------------------------------------------------- results and types


def test_results_are_the_async_clients(client: SendKit, sim: Simulator) -> None:
    ids = sim.campaign_ids[:3]
    one = client.analytics.campaign(ids[0])
    assert_type(one, CampaignAnalytics)
    assert [one, *(client.analytics.campaign(i) for i in ids[1:])] == asyncio.run(
        async_results(sim, ids)
    )
    page = client.campaigns.list(limit=5)
    assert_type(page, CampaignPage)
    assert [c.id for c in page.items] == sim.campaign_ids[:5]
    assert len(client.analytics.daily()) == 30  # the API's default window
    assert (client.analytics.overview().total_sent or 0) > 0
    assert client.analytics.mailboxes()


def test_iterators_are_plain_iterators(client: SendKit, sim: Simulator) -> None:
    listing = client.campaigns.iter(page_size=7)
    assert_type(next(listing), CampaignSummary)
    assert len(list(listing)) == len(sim.campaign_ids) - 1
    assert list(client.campaigns.iter_ids(page_size=9)) == sim.campaign_ids
    results = list(client.iter_campaigns(client.campaigns.iter_ids(), ordered=True))
    assert_type(results[0], CampaignResult[CampaignAnalytics])
    assert [r.unwrap().campaign.id for r in results] == sim.campaign_ids


def test_gather_campaigns_reports_progress_in_the_calling_thread(
    client: SendKit, sim: Simulator
) -> None:
    seen: list[tuple[int, int | None, str]] = []
    caller = threading.get_ident()

    def progress(done: int, total: int | None, last: CampaignResult[Any]) -> None:
        assert threading.get_ident() == caller
        seen.append((done, total, last.id))

    ids = sim.campaign_ids[:12]
    results = client.gather_campaigns(iter(ids), progress=progress)
    assert_type(results, list[CampaignAnalytics])
    assert [r.campaign.id for r in results] == ids
    assert [s[:2] for s in seen] == [(n, 12) for n in range(1, 13)]
    assert sorted(s[2] for s in seen) == sorted(ids)
    report = client.last_bulk_report
    assert report is not None
    assert (report.succeeded, report.requests) == (12, 12)


def test_same_constructor_and_signatures_as_async() -> None:
    def params(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(SendKit.__init__) == params(AsyncSendKit.__init__)
    for name in ("gather_campaigns", "iter_campaigns", "with_options"):
        assert params(getattr(SendKit, name)) == params(getattr(AsyncSendKit, name)), name


# --------------------------------------------------------------------- errors


def test_errors_are_the_async_clients(client: SendKit, sim: Simulator) -> None:
    async def async_error() -> SendKitError:
        async with AsyncSendKit(api_key=KEY, base_url=sim.base_url) as c:
            with pytest.raises(NotFoundError) as caught:
                await c.analytics.campaign(MISSING)
            return caught.value

    expected = asyncio.run(async_error())
    with pytest.raises(NotFoundError) as caught:
        client.analytics.campaign(MISSING)
    assert type(caught.value) is type(expected)
    assert (caught.value.status, str(caught.value)) == (expected.status, str(expected))
    with pytest.raises(InvalidRequestError, match="campaign_id"):
        client.analytics.campaign(" ")
    with pytest.raises(InvalidRequestError, match="limit"):
        client.campaigns.list(limit=0)
    with pytest.raises(BulkError) as bulk:
        client.gather_campaigns([sim.campaign_ids[0], MISSING])
    assert list(bulk.value.results) == [sim.campaign_ids[0]]
    assert isinstance(bulk.value.failures[MISSING], NotFoundError)
    with pytest.raises(ConfigurationError):
        client.with_options(timeout="soon")  # type: ignore[arg-type]


def test_a_bad_configuration_starts_no_thread() -> None:
    before = len(sync_threads())
    with pytest.raises(ConfigurationError):
        SendKit()  # no key anywhere
    with pytest.raises(ConfigurationError, match="session"):
        SendKit(api_key=KEY, session=object())  # type: ignore[arg-type]
    assert len(sync_threads()) == before


def test_calling_the_client_from_its_own_thread_raises_instead_of_deadlocking(
    client: SendKit, sim: Simulator
) -> None:
    def ids() -> Iterator[str]:
        yield sim.campaign_ids[0]
        client.analytics.campaign(sim.campaign_ids[1])  # runs in the client's own thread
        yield sim.campaign_ids[1]

    with pytest.raises(InvalidRequestError, match="own event-loop thread"):
        list(client.iter_campaigns(ids()))
    assert client.analytics.campaign(sim.campaign_ids[2]).campaign.id == sim.campaign_ids[2]


# --------------------------------------------------------------------- threads and loops


def test_eight_threads_share_one_client(client: SendKit, sim: Simulator) -> None:
    ids = sim.campaign_ids[:32]

    def fetch(chunk: list[str]) -> list[str]:
        return [client.analytics.campaign(i).campaign.id for i in chunk]

    chunks = [ids[n::8] for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(fetch, chunks))
    assert got == chunks
    assert client.stats.requests == 32
    assert client.stats.by_status == {200: 32}


async def test_works_inside_a_running_event_loop(sim: Simulator) -> None:
    asyncio.get_running_loop()  # as in a notebook cell: asyncio.run() would fail here
    with SendKit(api_key=KEY, base_url=sim.base_url) as client:
        analytics = client.analytics.campaign(sim.campaign_ids[0])
        assert analytics.campaign.id == sim.campaign_ids[0]
        assert len(client.gather_campaigns(sim.campaign_ids[:5])) == 5


# --------------------------------------------------------------------- interrupts


def test_keyboard_interrupt_from_progress_cancels_the_run(client: SendKit, sim: Simulator) -> None:
    calls: list[int] = []

    def progress(done: int, total: int | None, last: CampaignResult[Any]) -> None:
        calls.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.gather_campaigns(sim.campaign_ids, concurrency=2, progress=progress)
    assert calls == [1, 2, 3]
    assert pending_tasks(client) == set()
    assert client.stats.requests < len(sim.campaign_ids)  # the run stopped early
    # Still usable, then closed with nothing left behind.
    assert client.analytics.campaign(sim.campaign_ids[0]).campaign.id == sim.campaign_ids[0]
    client.close()
    assert sync_threads() == []


def hanging_server(script: Script, after: int, release: asyncio.Event) -> None:
    """Answer the first ``after - 1`` requests; at ``after``, send SIGINT to the main thread;
    from then on hold every request until ``release``."""
    seen = [0]

    async def handle(request: web.Request) -> web.Response:
        seen[0] += 1
        if seen[0] == after:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        if seen[0] >= after:
            await release.wait()
        return json_reply({"data": {}}, 404)

    script.default = handle


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill is POSIX only")
def test_sigint_while_blocked_cancels_and_the_client_stays_usable() -> None:
    with served(scripted_server) as (script, thread):
        release = thread.run(_event())
        hanging_server(script, after=3, release=release)
        with SendKit(api_key=KEY, base_url=script.base_url, max_retries=0) as client:
            ids = [f"{n:024x}" for n in range(10)]
            with pytest.raises(KeyboardInterrupt):
                client.gather_campaigns(ids, concurrency=1, return_exceptions=True)
            assert pending_tasks(client) == set()
            assert client.stats.requests == 3
            thread.soon(release.set)
            with pytest.raises(NotFoundError):
                client.analytics.campaign(ids[0])
        assert sync_threads() == []


def test_an_iterator_abandoned_midway_cancels_its_work(client: SendKit, sim: Simulator) -> None:
    results = client.iter_campaigns(sim.campaign_ids, concurrency=4)
    first = next(results)
    assert first.ok
    results.close()
    assert pending_tasks(client) == set()
    with pytest.raises(StopIteration):
        next(results)
    for _ in client.iter_campaigns(sim.campaign_ids, concurrency=4):
        break  # the iterator is collected at once, which closes it
    assert pending_tasks(client) == set()


# --------------------------------------------------------------------- lifecycle


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_close_stops_the_thread_and_ends_calls_in_other_threads() -> None:
    with served(scripted_server) as (script, thread):
        release = thread.run(_event())
        arrived = threading.Event()

        async def handle(request: web.Request) -> web.Response:
            arrived.set()
            await release.wait()
            return json_reply({"data": {}}, 404)

        script.default = handle
        client = SendKit(api_key=KEY, base_url=script.base_url)
        view = client.with_options(timeout=5)
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(view.analytics.campaign, "a" * 24)
            assert arrived.wait(30)
            view.close()  # closing a view closes its client
            with pytest.raises(ClientClosedError):
                call.result(30)
        thread.soon(release.set)
    assert client.closed
    assert view.closed
    assert sync_threads() == []
    assert client._portal.loop.is_closed()
    client.close()  # idempotent
    with pytest.raises(ClientClosedError):
        client.analytics.campaign("a" * 24)
    with pytest.raises(ClientClosedError):
        list(client.campaigns.iter())
    with pytest.raises(ClientClosedError), client:
        pass
    assert client.stats.requests == 1  # still readable after close
    assert "closed" in repr(client)
    assert KEY not in repr(client)


def test_loop_thread_is_a_daemon(client: SendKit) -> None:
    (thread,) = sync_threads()
    assert thread.daemon
    assert client._portal.thread_id == thread.ident


# ------------------------------------------------------- raw view, pages, cache


def test_the_raw_view_blocks_and_returns_the_async_views_responses(
    client: SendKit, sim: Simulator
) -> None:
    first = sim.campaign_ids[0]
    resp = client.with_raw_response.analytics.campaign(first)
    assert_type(resp, APIResponse[CampaignAnalytics])
    assert (resp.status_code, resp.attempts) == (200, 1)
    assert resp.parse() == client.analytics.campaign(first)
    assert resp.json()["data"]["campaign"]["id"] == first
    pages = list(client.with_raw_response.campaigns.pages(page_size=25))
    assert [len(p.parse().items) for p in pages] == [25, 15]  # 40 campaigns
    assert [p.status_code for p in pages] == [200, 200]
    listed = client.with_raw_response.campaigns.list(limit=5)
    assert_type(listed, APIResponse[CampaignPage])
    assert [c.id for c in listed.parse().items] == [c.id for c in pages[0].parse().items[:5]]


def test_pages_is_a_plain_iterator_of_pages(client: SendKit, sim: Simulator) -> None:
    pages = list(client.campaigns.pages(page_size=30))
    assert_type(pages, list[CampaignPage])
    assert [c.id for p in pages for c in p.items] == list(client.campaigns.iter_ids())
    assert len(pages) == 2


def test_the_cache_and_coalescing_options_reach_the_async_client(sim: Simulator) -> None:
    with SendKit(api_key=KEY, base_url=sim.base_url, cache=MemoryCache(maxsize=8, ttl=60)) as c:
        first = sim.campaign_ids[0]
        assert c.analytics.campaign(first) == c.analytics.campaign(first)
        assert (c.stats.requests, c.stats.cache_hits) == (1, 1)
        fresh = c.with_options(cache=False)
        fresh.analytics.campaign(first)
        assert (c.stats.requests, c.stats.cache_hits) == (2, 1)
        assert c._async._coalesce and not c.with_options(coalesce=False)._async._coalesce
