"""A retried chunk fetches only the ids no earlier try answered, and still writes every id
of the chunk to the sink exactly once.

The simulator is served behind a gate (an aiohttp middleware) that logs every analytics
request and holds the ones the test chooses: the first try answers some ids and then
waits on the rest for ever, so the test interrupts it at a known point (once Redis holds
the answered ids' rows) without depending on how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("arq")

from aiohttp import web
from arq.worker import Retry
from redis.asyncio import Redis

from sendkit_async import AsyncSendKit, NotFoundError
from sendkit_async.jobs import CallbackSink, ChunkOutput, JsonLinesSink, Row, read_jsonl_run
from sendkit_async.jobs import _progress as progress_module
from sendkit_async.jobs import worker_settings as make_settings
from sendkit_async.jobs._progress import (
    PARTIAL_TTL,
    ChunkProgress,
    ProgressWriter,
    dump_rows,
    load_rows,
    partial_key,
)
from sendkit_async.jobs._task import CONFIG_KEY, fetch_chunk, on_shutdown, on_startup
from sendkit_async.simulator import (
    SIMULATOR_KEY,
    Simulator,
    SimulatorConfig,
    make_app,
    run_simulator,
)
from tests.jobs_helpers import new_key, running, unique

GUARD = 60.0  # seconds before a wait that must end fails the test (never an outcome)
ANALYTICS = "/v1/analytics/campaigns/"
MISSING = "ffffffffffffffffffffffff"  # the simulator answers 404: a recorded failure


class Gate:
    """Logs the id of every analytics request; holds those in ``hold`` until ``release``."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.hold: set[str] = set()
        self.release = asyncio.Event()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(ANALYTICS):
            item = request.path[len(ANALYTICS) :]
            self.requested.append(item)
            if item in self.hold:
                await self.release.wait()
        return await handler(request)


@contextlib.asynccontextmanager
async def gated_simulator(config: SimulatorConfig) -> AsyncIterator[tuple[Simulator, str, Gate]]:
    """The simulator behind a :class:`Gate`, served on 127.0.0.1; (state, base URL, gate)."""
    gate = Gate()
    app = make_app(config)
    app.middlewares.insert(0, gate.middleware)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield app[SIMULATOR_KEY], f"http://127.0.0.1:{runner.addresses[0][1]}", gate
    finally:
        gate.release.set()  # held handlers end before the server does
        await runner.cleanup()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after GUARD seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def worker_ctx(
    settings: dict[str, Any], redis: Redis, job_try: int
) -> AsyncIterator[dict[str, Any]]:
    """What arq hands the task: our config, the Redis client, the try number."""
    ctx: dict[str, Any] = {CONFIG_KEY: settings["ctx"][CONFIG_KEY], "redis": redis,
                           "job_try": job_try, "job_id": unique("job")}  # fmt: skip
    await on_startup(ctx)
    try:
        yield ctx
    finally:
        await on_shutdown(ctx)


def one_chunk(
    sinks: Path, redis_url: str, base_url: str, ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Worker settings (JSON Lines sink in ``sinks``, key ref "acme"), the job spec of
    chunk 0 of run "r" over ``ids``, and the Redis key of that chunk's progress."""
    settings = make_settings(sink=JsonLinesSink(sinks), keys={"acme": new_key()},
                             redis_url=redis_url, base_url=base_url)  # fmt: skip
    spec = {"run_id": "r", "key_ref": "acme", "chunk": 0, "ids": ids}
    return settings, spec, partial_key("r", "acme", 0)


async def test_a_chunk_interrupted_after_k_ids_fetches_only_the_rest_on_its_retry(
    tmp_path: Path, jobs_redis: str
) -> None:
    async with gated_simulator(SimulatorConfig(campaigns=12, seed=5)) as (sim, base_url, gate):
        ids = [*sim.campaign_ids[:10], MISSING]
        answered, held = [*ids[:3], MISSING], ids[3:10]  # k = 4 ids answered, one a 404
        gate.hold = set(held)
        settings, spec, key = one_chunk(tmp_path, jobs_redis, base_url, ids)
        async with Redis.from_url(jobs_redis) as redis:
            async with worker_ctx(settings, redis, job_try=1) as ctx:
                first = asyncio.create_task(fetch_chunk(ctx, spec))

                async def answered_recorded() -> bool:
                    return await recorded(redis, key, ids) == set(answered)

                async def all_asked() -> bool:
                    return set(gate.requested) == set(ids)

                try:
                    await until(all_asked, "every id requested once")
                    await until(answered_recorded, "the answered ids recorded in Redis")
                finally:
                    first.cancel()  # the worker dies mid-chunk, holding 7 requests
                    with pytest.raises(asyncio.CancelledError):
                        await first
            assert list(read_jsonl_run(tmp_path, "r")) == []  # nothing reached the sink
            assert await recorded(redis, key, ids) == set(answered)
            assert 0 < await redis.ttl(key) <= PARTIAL_TTL

            gate.requested.clear()
            gate.hold.clear()
            async with worker_ctx(settings, redis, job_try=2) as ctx:
                result = await fetch_chunk(ctx, spec)
            assert await redis.exists(key) == 0  # gone with the chunk's done mark

    assert sorted(gate.requested) == sorted(held)  # the retry asked for the rest only
    assert (result["succeeded"], result["failed"]) == (10, 1)
    rows = list(read_jsonl_run(tmp_path, "r"))
    assert [r["id"] for r in rows] == ids  # every id once, in the chunk's order
    assert all(r["analytics"]["campaign"]["id"] == r["id"] for r in rows if r["ok"])
    assert [(r["id"], r["error"]["type"]) for r in rows if not r["ok"]] == [
        (MISSING, "NotFoundError")
    ]


async def test_a_cancelled_chunk_records_its_answers_before_it_goes_back(
    tmp_path: Path, jobs_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "WRITE_EVERY", 3600.0)  # the writer never would
    added: list[str] = []
    add = ProgressWriter.add

    def counted(self: ProgressWriter, key: str, row: Row) -> None:
        added.append(row.id)
        add(self, key, row)

    monkeypatch.setattr(ProgressWriter, "add", counted)
    async with gated_simulator(SimulatorConfig(campaigns=6, seed=3)) as (sim, base_url, gate):
        ids = sim.campaign_ids[:6]
        gate.hold = set(ids[2:])
        settings, spec, key = one_chunk(tmp_path, jobs_redis, base_url, ids)
        async with Redis.from_url(jobs_redis) as redis:
            async with worker_ctx(settings, redis, job_try=1) as ctx:
                task = asyncio.create_task(fetch_chunk(ctx, spec))

                async def two_answered() -> bool:
                    return len(added) == 2

                try:
                    await until(two_answered, "two answers handed to the progress writer")
                finally:
                    task.cancel()  # SIGTERM: arq cancels the chunk
                    with pytest.raises(asyncio.CancelledError):
                        await task
            assert await recorded(redis, key, ids) == set(ids[:2])


async def test_a_chunk_whose_sink_failed_is_written_on_its_retry_without_fetching(
    jobs_redis: str,
) -> None:
    written: list[ChunkOutput] = []
    fail = [True]

    def sink(output: ChunkOutput) -> None:
        if fail[0]:
            raise OSError("disk full")
        written.append(output)

    async with gated_simulator(SimulatorConfig(campaigns=6, seed=2)) as (sim, base_url, gate):
        ids = sim.campaign_ids
        settings = make_settings(sink=CallbackSink(sink), keys={"acme": new_key()},
                                 redis_url=jobs_redis, base_url=base_url)  # fmt: skip
        spec = {"run_id": "r", "key_ref": "acme", "chunk": 3, "ids": ids}
        async with Redis.from_url(jobs_redis) as redis:
            async with worker_ctx(settings, redis, job_try=1) as ctx:
                with pytest.raises(Retry):
                    await fetch_chunk(ctx, spec)
            assert sorted(gate.requested) == sorted(ids)
            gate.requested.clear()
            fail[0] = False
            async with worker_ctx(settings, redis, job_try=2) as ctx:
                await fetch_chunk(ctx, spec)
    assert gate.requested == []
    (output,) = written
    assert [row.id for row in output.rows] == ids
    assert all(row.ok and row.analytics is not None for row in output.rows)


async def test_a_chunk_past_its_tries_keeps_the_rows_recorded_before(
    tmp_path: Path, jobs_redis: str
) -> None:
    settings = make_settings(sink=JsonLinesSink(tmp_path), keys={}, redis_url=jobs_redis,
                             max_tries=2)  # fmt: skip
    spec = {"run_id": "r", "key_ref": "acme", "chunk": 1, "ids": ["a", "b"]}
    async with Redis.from_url(jobs_redis) as redis:
        gone = Row.failed("a", NotFoundError("gone", status=404))
        await redis.rpush(partial_key("r", "acme", 1), dump_rows([gone]))
        async with worker_ctx(settings, redis, job_try=3) as ctx:
            result = await fetch_chunk(ctx, spec)
    assert (result["succeeded"], result["failed"]) == (0, 2)
    rows = list(read_jsonl_run(tmp_path, "r"))
    assert [(r["id"], r["error"]["type"]) for r in rows] == [
        ("a", "NotFoundError"),
        ("b", "ChunkAbandonedError"),
    ]


async def test_rows_round_trip_through_their_stored_form_and_bad_ones_are_fetched_again() -> None:
    async with (
        run_simulator(SimulatorConfig(campaigns=3, seed=1)) as sim,
        AsyncSendKit("sk_test_rows", base_url=sim.base_url) as client,
    ):
        got = await client.analytics.campaign(sim.campaign_ids[0])
    ok, bad = Row(got.id, analytics=got), Row.failed("x", NotFoundError("gone", status=404))
    assert load_rows(dump_rows([ok, bad]), {got.id, "x"}) == {got.id: ok, "x": bad}
    assert load_rows(dump_rows([ok, bad]), {"x", "y"}) == {"x": bad}  # only those asked
    junk: list[Any] = [
        b"",
        b"{",
        '{"a": {}}',  # a str (a client decoding answers): not ours
        b'{"x": {"campaign": {"id": "x"}}}',  # JSON
        marshal.dumps([]),
        marshal.dumps(("e", "NotFoundError", None, None)),  # a row without its id
    ]
    for value in junk:
        assert load_rows(value, {"x"}) == {}, value
    bad_rows: list[Any] = [
        3,
        (),
        ("a", {"campaign": 3}),
        ("a", {}, 1),
        ("e", 1, None, None),
        ("e", "NotFoundError", 3, None),
        ("e", "NotFoundError", None, "404"),
        ("x", "NotFoundError", None, None),
    ]
    for data in bad_rows:  # a bad row costs its own fetch only
        value = marshal.dumps({"x": data, "y": ("e", "NotFoundError", None, 404)})
        assert list(load_rows(value, {"x", "y"})) == ["y"], data


async def recorded(redis: Redis, key: str, ids: list[str]) -> set[str]:
    """Those of ``ids`` with a row in a chunk's progress list."""
    values: list[bytes] = await redis.lrange(key, 0, -1)  # type: ignore[misc]
    return {i for value in values for i in load_rows(value, ids)}


class SwallowingRedis:
    """A Redis client whose calls block until cancelled and then swallow the cancellation,
    as redis-py's bounded send (``asyncio.wait_for`` on Python 3.11) can when the send
    completes just as the cancellation lands."""

    def __init__(self, then: asyncio.Event | None = None) -> None:
        self.entered = asyncio.Event()
        self.swallowed = asyncio.Event()
        self.calls = 0
        self._then = then  # after swallowing, the call goes on until this is set

    async def _call(self) -> bool:
        self.calls += 1
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.swallowed.set()
            if self._then is not None:
                await self._then.wait()
            return True
        return False  # pragma: no cover - the event is never set

    async def pexpire(self, key: str, ms: int) -> bool:
        return await self._call()

    def pipeline(self, transaction: bool = True) -> SwallowingRedis:
        return self

    async def __aenter__(self) -> SwallowingRedis:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def rpush(self, key: str, value: bytes) -> None:
        return None

    def expire(self, key: str, seconds: int) -> None:
        return None

    async def execute(self) -> list[bool]:
        return [await self._call()]


async def test_the_lease_and_the_progress_writer_stop_even_if_redis_swallows_the_cancel() -> None:
    from sendkit_async.jobs._task import _lease

    redis = SwallowingRedis()

    async def lease_then_leave() -> None:
        async with _lease(redis, "job", 30.0):  # type: ignore[arg-type]
            await redis.entered.wait()  # the renewal is inside its Redis call

    await asyncio.wait_for(lease_then_leave(), GUARD)
    assert redis.calls == 1  # stopped after the swallowed call, not renewed again

    redis = SwallowingRedis()

    async def write_then_stop() -> None:
        async with (
            running(ProgressWriter(redis, every=0)) as writer,  # type: ignore[arg-type]
            ChunkProgress(writer, "k") as progress,
        ):
            progress.add(Row.failed("a", NotFoundError("gone", status=404)))
            await redis.entered.wait()  # the writer is inside its Redis call

    await asyncio.wait_for(write_then_stop(), GUARD)
    assert redis.calls == 1


async def test_stopping_the_writer_never_swallows_the_callers_cancellation() -> None:
    release = asyncio.Event()
    redis = SwallowingRedis(then=release)

    async def body() -> None:
        # On leaving, the writer is stopped while it has swallowed its cancel, in a Redis call
        async with (
            running(ProgressWriter(redis, every=0)) as writer,  # type: ignore[arg-type]
            ChunkProgress(writer, "k") as progress,
        ):
            progress.add(Row.failed("a", NotFoundError("gone", status=404)))
            await redis.entered.wait()

    task = asyncio.create_task(body())
    try:
        await asyncio.wait_for(redis.swallowed.wait(), GUARD)
        task.cancel()  # the worker is cancelled while it waits for the writer to end
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), GUARD)
    finally:
        release.set()
        await asyncio.gather(task, return_exceptions=True)
