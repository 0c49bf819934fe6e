"""The arq task that fetches one chunk, and the worker's startup and shutdown.

Exactly once per id, across crashes: a chunk's rows (results and failures) go to
the sink in one replaceable write, then the chunk is marked done in the run's
hash; a worker killed at any point leaves the job in arq's queue, and its lease
(arq's in-progress key, renewed while the chunk runs) runs out within
``JobsConfig.lease`` seconds so another worker takes the chunk again. The last
allowed try records every id still without an answer as a failure.

A retried chunk fetches only the ids no earlier try answered: each answer is also
recorded in the chunk's partial-progress list in Redis (by the worker's one writer,
within ``WRITE_EVERY`` seconds, at once when the chunk is given back; see
``_progress``), and a later try merges those rows with its own before the one sink
write. The list is deleted in the same Redis transaction that marks the chunk done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from arq import Retry
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from .. import AsyncSendKit, CampaignAnalytics, CampaignResult, errors
from ._config import ChunkAbandonedError, JobsConfig, run_key
from ._progress import ChunkProgress, ProgressWriter, partial_key, stop_task
from ._sinks import ChunkOutput, Row
from ._stop import insist_on_stop

__all__ = ["CONFIG_KEY", "fetch_chunk", "on_shutdown", "on_startup"]

CONFIG_KEY = "sendkit_jobs"
_CLIENTS = "sendkit_jobs_clients"
_PROGRESS = "sendkit_jobs_progress"
logger = logging.getLogger("sendkit_async.jobs")


class _Clients:
    """One client (and one shared Redis budget) per key reference, made on first use."""

    def __init__(self, config: JobsConfig) -> None:
        self._config = config
        self._made: dict[str, tuple[AsyncSendKit, Any]] = {}
        self._lock = asyncio.Lock()

    async def get(self, ref: str) -> AsyncSendKit:
        async with self._lock:
            found = self._made.get(ref)
            if found is not None:
                return found[0]
            from ..redis_limiter import RedisRateLimiter

            cfg = self._config
            key = cfg.keys.key(ref)
            limiter = RedisRateLimiter.from_url(
                cfg.redis_url, api_key=key, base_url=cfg.base_url, rate=cfg.rate,
                max_concurrency=cfg.concurrency,
            )  # fmt: skip
            try:
                client = AsyncSendKit(
                    key, base_url=cfg.base_url, workspace_id=cfg.keys.workspace_id(ref),
                    max_concurrency=cfg.concurrency, rate_limiter=limiter,
                )  # fmt: skip
            except BaseException:
                await limiter.aclose()
                raise
            self._made[ref] = (client, limiter)
            return client

    async def aclose(self) -> None:
        made, self._made = self._made, {}
        for client, limiter in made.values():
            try:
                await client.aclose()
            finally:
                await limiter.aclose()


async def on_startup(ctx: dict[str, Any]) -> None:
    """arq ``on_startup``: prepare the per-key clients (made lazily) and start the worker's
    progress writer (chunks' answers to Redis, see ``_progress``), and make sure the
    worker's main task (the current one) ends once stopped (:func:`insist_on_stop`), also
    under arq's own ``arq`` command."""
    ctx[_CLIENTS] = _Clients(ctx[CONFIG_KEY])
    writer = ctx[_PROGRESS] = ProgressWriter(ctx["redis"])
    writer.start()
    insist_on_stop()


async def on_shutdown(ctx: dict[str, Any]) -> None:
    """arq ``on_shutdown``: stop the progress writer, close every client and its budget."""
    writer: ProgressWriter | None = ctx.pop(_PROGRESS, None)
    clients = ctx.pop(_CLIENTS, None)
    try:
        if writer is not None:
            await writer.aclose()
    finally:
        if clients is not None:
            await clients.aclose()


@contextlib.asynccontextmanager
async def _lease(redis: Redis, job_id: str, seconds: float) -> AsyncIterator[None]:
    """Keep arq's in-progress key of ``job_id`` alive for ``seconds`` at a time.

    A worker that dies stops renewing: the key expires and another worker takes the
    job. ``pexpire`` never creates the key, so a renewal after arq removed it is harmless.
    """
    key = in_progress_key_prefix + job_id
    ms = max(1, int(seconds * 1000))
    done = asyncio.Event()

    async def renew() -> None:
        while not done.is_set():  # not only the cancellation: redis-py may swallow it
            with contextlib.suppress(Exception):  # Redis hiccup: the next renewal retries
                await redis.pexpire(key, ms)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), seconds / 3)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        done.set()
        await stop_task(task)


async def _fetch(
    client: AsyncSendKit,
    ids: list[str],
    spec: dict[str, Any],
    timeout: float,
    answered: Callable[[Row], None],
) -> tuple[dict[str, Row], bool]:
    """Rows of every id answered within ``timeout`` (each also handed to ``answered`` as
    it comes); True when the chunk ran out of time."""
    rows: dict[str, Row] = {}

    def keep(done: int, total: int | None, last: CampaignResult[Any]) -> None:
        value: CampaignAnalytics | None = last.value
        row = (
            Row(last.id, analytics=value) if last.error is None else Row.failed(last.id, last.error)
        )
        rows[last.id] = row
        answered(row)

    fetch = client.gather_campaigns(
        ids, return_exceptions=True, progress=keep, from_=spec.get("from"), to=spec.get("to")
    )
    try:
        await asyncio.wait_for(fetch, timeout)
    except errors.BulkError as exc:  # a fatal error (key rejected): the rest is not attempted
        fatal = exc.fatal or errors.UnexpectedError("stopped early")
        for item in exc.not_attempted:
            rows[item] = Row.failed(item, fatal)
    except asyncio.TimeoutError:
        return rows, True
    return rows, False


async def fetch_chunk(ctx: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """arq task: fetch one chunk's analytics and hand exactly one row per id to the sink.

    ``spec`` holds ``run_id``, ``key_ref``, ``chunk``, ``ids`` and optional ``from``/``to``:
    never a key. Returns counts (kept by arq as the job's result).

    Raises:
        arq.Retry: the chunk ran out of time, or the sink or Redis failed, and tries remain.
    """
    cfg: JobsConfig = ctx[CONFIG_KEY]
    clients: _Clients = ctx[_CLIENTS]
    redis: Redis = ctx["redis"]
    job_try: int = ctx.get("job_try", 1)
    run_id, ref, chunk = spec["run_id"], spec["key_ref"], int(spec["chunk"])
    ids = list(dict.fromkeys(spec["ids"]))
    last_try = job_try >= cfg.max_tries
    start = time.monotonic()
    async with (
        _lease(redis, ctx.get("job_id", ""), cfg.lease),
        ChunkProgress(ctx[_PROGRESS], partial_key(run_id, ref, chunk)) as progress,
    ):
        rows = await progress.load(ids) if job_try > 1 else {}
        todo = [i for i in ids if i not in rows]
        if job_try > cfg.max_tries:
            given_up = ChunkAbandonedError(f"chunk gave up after {cfg.max_tries} tries")
            rows.update((i, Row.failed(i, given_up)) for i in todo)
        elif todo:
            try:
                client = await clients.get(ref)
            except errors.ConfigurationError as exc:  # no key for it here: nothing can succeed
                rows.update((i, Row.failed(i, exc)) for i in todo)
            else:
                try:
                    got, out_of_time = await _fetch(
                        client, todo, spec, cfg.chunk_timeout, progress.add
                    )
                except asyncio.CancelledError:  # SIGTERM: the next try starts from here
                    await progress.flush()
                    raise
                rows.update(got)
                if out_of_time and not last_try:
                    await progress.flush()  # the next try starts where this one stopped
                    raise Retry(defer=cfg.retry_delay)
                late = errors.APITimeoutError(f"chunk ran out of time ({cfg.chunk_timeout:g} s)")
                for item in todo:
                    rows.setdefault(item, Row.failed(item, late))
        output = ChunkOutput(run_id, ref, chunk, tuple(rows[i] for i in ids))
        try:
            await cfg.sink.write(output)
            field = f"{ref}/{chunk}"
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(run_key(run_id, "chunks"), field, f"{output.succeeded} {output.failed}")
                pipe.expire(run_key(run_id, "chunks"), int(cfg.keep_run))
                pipe.delete(partial_key(run_id, ref, chunk))
                await pipe.execute()
        except Exception as exc:
            if job_try > cfg.max_tries + 1:
                raise
            logger.warning("chunk %s/%s/%d not recorded (%s): retrying", run_id, ref, chunk,
                           type(exc).__name__)  # fmt: skip
            await progress.flush()  # the next try writes these rows without fetching them
            raise Retry(defer=cfg.retry_delay) from exc
    return {
        "succeeded": output.succeeded,
        "failed": output.failed,
        "seconds": round(time.monotonic() - start, 3),
    }
