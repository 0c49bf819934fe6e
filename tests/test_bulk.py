"""gather_campaigns / iter_campaigns against a real loopback server."""

from __future__ import annotations

import asyncio
import copy
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

import sendkit_async
from sendkit_async import (
    AsyncSendKit,
    AuthenticationError,
    BulkError,
    CampaignAnalytics,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    RateLimiter,
    RetryPolicy,
)
from tests.helpers import GUARD, KEY, Script, fixture

BODY: dict[str, Any] = fixture("analytics_campaign_seed.json")
MISSING = {"error": "Not Found", "message": "The requested resource was not found", "code": 404}


def ids(n: int, start: int = 0) -> list[str]:
    return [f"{i:024x}" for i in range(start, start + n)]


def serve(
    server: Script,
    *,
    missing: set[str] = frozenset(),  # type: ignore[assignment]
    delay: float = 0.0,
    unauthorized: bool = False,
) -> None:
    """Answer analytics for any id (named after it), 404 for ``missing``."""

    async def handler(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        if unauthorized:
            denied = {"error": "Unauthorized", "message": "Invalid API key", "code": 401}
            return web.json_response(denied, status=401)
        campaign_id = request.match_info["tail"].rsplit("/", 1)[-1]
        if campaign_id in missing:
            return web.json_response(MISSING, status=404)
        body = copy.deepcopy(BODY)
        body["data"]["campaign"]["id"] = campaign_id
        body["data"]["campaign"]["name"] = f"name-{campaign_id[-4:]}"
        return web.json_response(body)

    server.default = handler


def client_for(server: Script, **kw: Any) -> AsyncSendKit:
    kw.setdefault("retry", RetryPolicy(max_retries=0))
    return AsyncSendKit(api_key=KEY, base_url=server.base_url, **kw)


async def test_gather_keeps_input_order(server: Script) -> None:
    serve(server)
    wanted = ids(50)[::-1]
    async with client_for(server) as client:
        results = await client.gather_campaigns(wanted, concurrency=8)
        report = client.last_bulk_report
    assert [r.campaign.id for r in results] == wanted
    assert all(isinstance(r, CampaignAnalytics) for r in results)
    assert report is not None
    assert (report.total, report.succeeded, report.failed, report.requests) == (50, 50, 0, 50)
    assert report.wall_seconds > 0
    assert report.requests_per_second > 0


async def test_failures_raise_bulk_error_with_everything(server: Script) -> None:
    wanted = ids(20)
    missing = {wanted[3], wanted[11]}
    serve(server, missing=missing)
    async with client_for(server) as client:
        with pytest.raises(BulkError) as info:
            await client.gather_campaigns([*wanted, "  "], concurrency=5)
    err = info.value
    assert set(err.results) == set(wanted) - missing
    assert all(err.results[i].campaign.id == i for i in err.results)
    assert set(err.failures) == {*missing, "  "}
    assert isinstance(err.failures[wanted[3]], NotFoundError)
    assert isinstance(err.failures["  "], InvalidRequestError)
    assert err.not_attempted == ()
    assert err.fatal is None
    assert err.report is not None
    assert err.report.failures_by_type == {"NotFoundError": 2, "InvalidRequestError": 1}
    assert "3 of 21 ids failed, 18 succeeded" in str(err)
    assert server.count() == 20  # the blank id was never sent


async def test_return_exceptions_puts_errors_in_place(server: Script) -> None:
    wanted = ids(10)
    serve(server, missing={wanted[4]})
    async with client_for(server) as client:
        results = await client.gather_campaigns(wanted, return_exceptions=True)
    assert isinstance(results[4], NotFoundError)
    got = [r.campaign.id for r in results if isinstance(r, CampaignAnalytics)]
    assert got == wanted[:4] + wanted[5:]


async def test_duplicates_fetched_once(server: Script) -> None:
    serve(server)
    a, b = ids(2)
    async with client_for(server) as client:
        results = await client.gather_campaigns([a, b, a, a, b])
    assert [r.campaign.id for r in results] == [a, b, a, a, b]
    assert server.count() == 2


async def test_non_string_ids_fail_alone(server: Script) -> None:
    serve(server)
    (good,) = ids(1)
    listed: list[str] = ["x"]  # unhashable: the same object twice is one id, another is not
    async with client_for(server) as client:
        results = await client.gather_campaigns(
            [good, None, 42, listed, listed, ["x"]],  # type: ignore[list-item]
            return_exceptions=True,
        )
        report = client.last_bulk_report
    assert isinstance(results[0], CampaignAnalytics)
    assert results[0].campaign.id == good
    assert all(isinstance(r, InvalidRequestError) for r in results[1:])
    assert results[3] is results[4]  # one outcome for the repeated object
    assert report is not None
    assert (report.total, report.succeeded, report.failed) == (5, 1, 4)
    async with client_for(server) as client:
        with pytest.raises(BulkError) as info:
            await client.gather_campaigns([good, listed])  # type: ignore[list-item]
    assert list(info.value.results) == [good]
    assert list(info.value.failures) == ["['x']"]  # a list cannot be a key: its repr is


async def test_auth_error_stops_the_run(server: Script) -> None:
    serve(server, unauthorized=True, delay=0.01)
    wanted = ids(500)
    async with client_for(server, max_concurrency=4) as client:
        with pytest.raises(BulkError) as info:
            await client.gather_campaigns(wanted, concurrency=4)
    err = info.value
    assert isinstance(err.fatal, AuthenticationError)
    assert err.results == {}
    assert server.count() <= 8  # at most what was in flight when the first 401 came back
    assert len(err.not_attempted) >= 490
    assert set(err.not_attempted) | set(err.failures) == set(wanted)
    assert "stopped early by AuthenticationError" in str(err)


async def test_progress_callback(server: Script) -> None:
    serve(server)
    seen: list[tuple[int, int | None, str]] = []
    async with client_for(server) as client:
        await client.gather_campaigns(
            ids(6), progress=lambda done, total, last: seen.append((done, total, last.id))
        )
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5, 6]
    assert {s[1] for s in seen} == {6}
    assert sorted(s[2] for s in seen) == ids(6)


class Waves:
    """Holds each request until ``size`` are in flight together, then lets them all go
    after some loop rounds (no timers) in which a request beyond ``size`` would arrive."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.waiting = 0
        self.gate = asyncio.Event()

    async def wait(self) -> None:
        gate = self.gate
        self.waiting += 1
        if self.waiting == self.size:
            self.waiting, self.gate = 0, asyncio.Event()
            for _ in range(100):
                await asyncio.sleep(0)
            gate.set()
        await gate.wait()


@pytest.mark.parametrize(
    ("cap", "client_cap", "concurrency"),
    [(5, 50, 5), (3, 3, None)],  # the bulk helper's bound, then the client's own
)
async def test_bounded_in_flight(
    server: Script, cap: int, client_cap: int, concurrency: int | None
) -> None:
    # No timing: the server answers only once `cap` requests are in flight together, so
    # the cap is reached (or the run hangs until GUARD) and never passed (max_in_flight).
    # No pacing and no first request sent alone (adaptive=False): every worker sends at
    # once, so only the two bounds decide how many requests are in flight.
    serve(server)
    answer = server.default
    assert answer is not None
    waves = Waves(cap)

    async def in_waves(request: web.Request) -> web.StreamResponse:
        await waves.wait()
        result: web.StreamResponse = await answer(request)
        return result

    server.default = in_waves
    limiter = RateLimiter(max_concurrency=client_cap, adaptive=False)
    async with client_for(server, rate_limiter=limiter) as client:
        run = client.gather_campaigns(ids(60), concurrency=concurrency)
        results = await asyncio.wait_for(run, GUARD)
    assert len(results) == 60
    assert server.max_in_flight == cap


async def test_iter_yields_as_completed_with_errors(server: Script) -> None:
    wanted = ids(30)
    serve(server, missing={wanted[0]})
    async with client_for(server) as client:
        got = {r.id: r async for r in client.iter_campaigns(wanted, concurrency=6)}
    assert set(got) == set(wanted)
    assert not got[wanted[0]].ok
    assert isinstance(got[wanted[0]].error, NotFoundError)
    with pytest.raises(NotFoundError):
        got[wanted[0]].unwrap()
    assert got[wanted[1]].unwrap().campaign.id == wanted[1]


async def test_iter_ordered(server: Script) -> None:
    serve(server)
    wanted = ids(40)
    async with client_for(server) as client:
        order = [r.id async for r in client.iter_campaigns(wanted, ordered=True, concurrency=7)]
    assert order == wanted


async def test_iter_generator_is_never_materialised(server: Script) -> None:
    serve(server)
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        i = 0
        while True:
            pulled += 1
            yield f"{i:024x}"
            i += 1

    taken = 0
    async with client_for(server) as client:
        async for result in client.iter_campaigns(endless(), concurrency=4):
            assert result.ok
            taken += 1
            if taken == 25:
                break
    # only what fits in the window beyond what was consumed was ever pulled
    assert 25 <= pulled <= 25 + 4 + 1


async def test_iter_async_iterable_and_backpressure(server: Script) -> None:
    serve(server)

    async def source() -> Any:
        for i in ids(100):
            yield i

    async with client_for(server) as client:
        stream = client.iter_campaigns(source(), concurrency=3)
        first = await anext(stream)
        await asyncio.sleep(0.1)  # a slow consumer: nothing more may be fetched meanwhile
        assert server.count() <= 4
        rest = [r async for r in stream]
    assert first.ok
    assert len(rest) == 99


async def test_iter_raises_auth_error_after_yielding(server: Script) -> None:
    serve(server, unauthorized=True)
    async with client_for(server) as client:
        got = []
        with pytest.raises(AuthenticationError):
            async for r in client.iter_campaigns(ids(100), concurrency=2):
                got.append(r)
    assert len(got) >= 1
    assert isinstance(got[0].error, AuthenticationError)
    assert server.count() <= 3


def _other_tasks() -> set[asyncio.Task[Any]]:
    """Client-side tasks still alive (the loopback server's own tasks are not ours)."""
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and "/aiohttp/web_" not in repr(t.get_coro())
        and "sendkit_async" in getattr(t.get_coro(), "cr_code", t.get_coro()).__repr__()
    }


async def test_cancelling_gather_leaves_nothing(server: Script) -> None:
    serve(server, delay=5)
    client = client_for(server)
    before = _other_tasks()
    task = asyncio.create_task(client.gather_campaigns(ids(100), concurrency=10))
    while server.in_flight < 10:
        await asyncio.sleep(0.01)
    assert len(_other_tasks() - before) >= 10
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    assert _other_tasks() - before == set()
    assert client.rate_limit.in_flight == 0


async def test_breaking_out_of_iter_cleans_up(server: Script) -> None:
    serve(server)
    fast = server.default
    assert fast is not None

    async def first_fast_rest_slow(request: web.Request) -> web.StreamResponse:
        if not request.path.endswith(ids(1)[0]):
            await asyncio.sleep(5)
        result: web.StreamResponse = await fast(request)
        return result

    server.default = first_fast_rest_slow
    client = client_for(server)
    before = _other_tasks()
    in_flight_seen = 0
    async for _ in client.iter_campaigns(ids(100), concurrency=10):
        in_flight_seen = len(_other_tasks() - before)
        break
    gc.collect()
    for _ in range(20):
        await asyncio.sleep(0.01)
        if not _other_tasks() - before:
            break
    left = _other_tasks() - before
    await client.aclose()
    assert in_flight_seen >= 9  # the check below would be empty without the window
    assert left == set()


async def test_module_level_gather(server: Script, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(server)
    monkeypatch.setenv("SENDKIT_API_KEY", KEY)
    monkeypatch.setenv("SENDKIT_BASE_URL", server.base_url)
    results = await sendkit_async.gather_campaigns(ids(3))
    assert [r.campaign.id for r in results] == ids(3)


async def test_invalid_concurrency(server: Script) -> None:
    async with client_for(server) as client:
        with pytest.raises(InvalidRequestError):
            await client.gather_campaigns(ids(2), concurrency=-1)


async def test_bulk_options_checked_once_and_sent_with_every_id(server: Script) -> None:
    serve(server)
    async with client_for(server) as client:
        with pytest.raises(InvalidRequestError, match="from_"):
            await client.gather_campaigns(ids(3), from_="not a date")
        with pytest.raises(InvalidRequestError, match="to"):
            client.iter_campaigns(ids(3), to="31/01/2026")
        with pytest.raises(ConfigurationError, match="timeout"):
            await client.gather_campaigns(ids(3), timeout="soon")  # type: ignore[call-overload]
        assert server.count() == 0  # refused before anything was sent
        results = await client.gather_campaigns(ids(3), from_="2026-01-01", to="2026-01-31")
    assert [r.id for r in results] == ids(3)
    assert sorted(server.raw_paths) == [
        f"/v1/analytics/campaigns/{i}?from=2026-01-01&to=2026-01-31" for i in ids(3)
    ]


async def test_a_failing_progress_callback_stops_the_run_cleanly(server: Script) -> None:
    serve(server, delay=0.01)

    def progress(done: int, total: int | None, last: object) -> None:
        if done == 3:
            raise ValueError("progress bar broke")

    before = _other_tasks()
    async with client_for(server) as client:
        with pytest.raises(ValueError, match="progress bar broke"):
            await client.gather_campaigns(ids(200), concurrency=4, progress=progress)
        assert _other_tasks() - before == set()
        assert client.rate_limit.in_flight == 0
    assert server.count() < 20  # the other workers stopped instead of finishing the run


async def test_no_ids_no_requests(server: Script) -> None:
    serve(server)
    async with client_for(server) as client:
        assert await client.gather_campaigns([]) == []
        assert [r async for r in client.iter_campaigns(iter(()))] == []
        report = client.last_bulk_report
    assert server.count() == 0
    assert report is not None
    assert (report.total, report.succeeded, report.failed) == (0, 0, 0)
