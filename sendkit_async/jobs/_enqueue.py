"""Enqueue a run (workspaces listed and cut into chunks) and follow its progress."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, TypeVar

import attrs
from arq.connections import ArqRedis

from .. import AsyncSendKit, DateLike
from .._protocol import iso_date
from ..errors import ConfigurationError
from ._config import (
    DEFAULT_QUEUE,
    REDIS_TIMEOUT,
    TASK_NAME,
    RunTimeoutError,
    chunk_job_id,
    redis_url_from_env,
    run_key,
)
from ._keys import KeyResolver, check_name
from ._redis import connect, unavailable

__all__ = ["RunInfo", "RunStatus", "enqueue_run", "run_status", "wait_for_run"]

T = TypeVar("T")

Sources = Mapping[str, "Iterable[str] | AsyncIterable[str] | None"] | Iterable[str]


@attrs.frozen
class RunInfo:
    """What :func:`enqueue_run` put in the queue."""

    run_id: str
    chunks: int
    ids: int
    ids_by_key: Mapping[str, int]
    already_queued: int  # chunks whose job already existed (the same run enqueued again)


@attrs.frozen
class RunStatus:
    """How far a run is: chunks done out of ``chunks`` (None while still being enqueued)."""

    run_id: str
    chunks: int | None
    done: int
    succeeded: int
    failed: int

    @property
    def complete(self) -> bool:
        """True once every chunk's rows are in the sink."""
        return self.chunks is not None and self.done >= self.chunks


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix (``20260129T0400Z-1a2b3c``)."""
    now = dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def _done(value: Awaitable[T] | T) -> T:
    """redis-py types its commands as sync-or-async; ours are always async."""
    if inspect.isawaitable(value):
        return await value
    return value


class _Conn:
    """The pool a call uses, and how to name its Redis in an error."""

    def __init__(self, pool: ArqRedis, url: str | None, timeout: float | None) -> None:
        self.pool, self.url, self.timeout, self.owned = pool, url, timeout, url is not None

    def guard(self) -> contextlib.AbstractContextManager[None]:
        return unavailable(self.url, self.timeout)

    async def aclose(self) -> None:
        if self.owned:
            await self.pool.aclose(close_connection_pool=True)


async def _pool(redis: ArqRedis | None, redis_url: str | None, queue: str, timeout: float) -> _Conn:
    """The caller's client as is, or ours with every Redis call bounded by ``timeout``."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError(f"redis_timeout must be a number > 0, got {timeout!r}")
    if redis is not None:
        return _Conn(redis, None, None)
    url = redis_url_from_env(redis_url)
    return _Conn(await connect(url, queue, timeout), url, timeout)


async def _listed(
    pool: ArqRedis, ref: str, keys: KeyResolver, base_url: str | None, status: str | None
) -> AsyncIterator[str]:
    """Every campaign id of ``ref``'s workspace, listed within that key's shared budget."""
    from ..redis_limiter import RedisRateLimiter

    key = keys.key(ref)
    async with (
        RedisRateLimiter(pool, api_key=key, base_url=base_url) as limiter,
        AsyncSendKit(
            key, base_url=base_url, workspace_id=keys.workspace_id(ref), rate_limiter=limiter
        ) as client,
    ):
        async for item in client.campaigns.iter_ids(status=status):
            yield item


async def _each(source: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


async def _enqueue_key(
    conn: _Conn,
    queue: str,
    base: dict[str, Any],
    ids: Iterable[str] | AsyncIterable[str],
    chunk_size: int,
) -> tuple[int, int, int]:
    """Enqueue one key's chunks; returns (chunks, ids, chunks already queued)."""
    chunks = total = again = 0
    batch: list[str] = []

    async def flush() -> None:
        nonlocal chunks, again
        job_id = chunk_job_id(base["run_id"], base["key_ref"], chunks)
        spec = {**base, "chunk": chunks, "ids": list(batch)}
        with conn.guard():
            job = await conn.pool.enqueue_job(TASK_NAME, spec, _job_id=job_id, _queue_name=queue)
        again += job is None
        chunks += 1
        batch.clear()

    async for item in _each(ids):
        batch.append(item)
        total += 1
        if len(batch) >= chunk_size:
            await flush()
    if batch:
        await flush()
    return chunks, total, again


async def enqueue_run(
    sources: Sources,
    *,
    redis: ArqRedis | None = None,
    redis_url: str | None = None,
    queue_name: str = DEFAULT_QUEUE,
    run_id: str | None = None,
    chunk_size: int = 100,
    status: str | None = None,
    from_: DateLike | None = None,
    to: DateLike | None = None,
    keys: KeyResolver | Mapping[str, str] | None = None,
    base_url: str | None = None,
    keep_run: float = 7 * 86400.0,
    redis_timeout: float = REDIS_TIMEOUT,
) -> RunInfo:
    """Cut the campaigns of one or more keys into chunks and enqueue one arq job per chunk.

    ``sources`` maps key references to their campaign ids, or to None to list the
    whole workspace (``campaigns.iter_ids(status=...)``, through that key's shared
    Redis budget); a plain list of references lists each workspace. Chunks are
    enqueued as the listing goes, so workers start at once. A chunk's job id is
    ``sendkit:<run_id>:<key_ref>:<chunk>``: enqueueing the same run again (same
    ``run_id``, same ids) adds nothing that is still queued or recently done.
    Jobs carry the reference only; the key stays on the machines that have it.
    Each Redis call (connect, read, write) may take ``redis_timeout`` seconds.

    Raises:
        ConfigurationError: a malformed reference or run id, ``chunk_size`` < 1, or no
            key for a reference that must be listed.
        QueueUnavailableError: Redis did not answer within ``redis_timeout`` or refused.
        SendKitError: the listing failed (e.g. ``AuthenticationError``).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    run_id = check_name(run_id or new_run_id(), "run id")
    plan: dict[str, Iterable[str] | AsyncIterable[str] | None] = (
        dict(sources) if isinstance(sources, Mapping) else dict.fromkeys(sources)
    )
    for ref in plan:
        check_name(ref, "key reference")
    resolver = keys if isinstance(keys, KeyResolver) else KeyResolver(keys)
    dates = {"from": iso_date(from_, "from_"), "to": iso_date(to, "to")}
    conn = await _pool(redis, redis_url, queue_name, redis_timeout)
    pool = conn.pool
    meta, ttl = run_key(run_id, "meta"), int(keep_run)
    chunks = queued_before = 0
    counts: dict[str, int] = {}
    try:
        with conn.guard():
            await _done(
                pool.hset(meta, mapping={"key_refs": ",".join(plan), "created": time.time()})
            )
            await _done(pool.hdel(meta, "chunks"))
            await pool.expire(meta, ttl)
        # Every key at once: listings overlap, and the keys' chunks interleave in the queue.
        tasks = [
            asyncio.ensure_future(
                _enqueue_key(
                    conn,
                    queue_name,
                    {"run_id": run_id, "key_ref": ref, **dates},
                    _listed(pool, ref, resolver, base_url, status) if source is None else source,
                    chunk_size,
                )
            )
            for ref, source in plan.items()
        ]
        try:
            made = await asyncio.gather(*tasks)
        finally:  # one listing failed (or we were cancelled): stop the others too
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for ref, (n_chunks, n_ids, again) in zip(plan, made, strict=True):
            chunks, counts[ref], queued_before = chunks + n_chunks, n_ids, queued_before + again
        with conn.guard():
            await _done(pool.hset(meta, mapping={"chunks": chunks, "ids": sum(counts.values())}))
            await pool.expire(meta, ttl)
    finally:
        await conn.aclose()
    return RunInfo(run_id, chunks, sum(counts.values()), counts, queued_before)


async def run_status(
    run_id: str,
    *,
    redis: ArqRedis | None = None,
    redis_url: str | None = None,
    redis_timeout: float = REDIS_TIMEOUT,
) -> RunStatus:
    """Chunks done so far, and rows succeeded and failed (from the run's hash in Redis).

    Raises:
        QueueUnavailableError: Redis did not answer within ``redis_timeout`` or refused.
    """
    check_name(run_id, "run id")
    conn = await _pool(redis, redis_url, DEFAULT_QUEUE, redis_timeout)
    try:
        return await _status(conn, run_id)
    finally:
        await conn.aclose()


async def _status(conn: _Conn, run_id: str) -> RunStatus:
    with conn.guard():
        total = await _done(conn.pool.hget(run_key(run_id, "meta"), "chunks"))
        done = await _done(conn.pool.hgetall(run_key(run_id, "chunks")))
    succeeded = failed = 0
    for value in done.values():
        ok, bad = value.split()
        succeeded, failed = succeeded + int(ok), failed + int(bad)
    chunks = None if total is None else int(total)
    return RunStatus(run_id, chunks, len(done), succeeded, failed)


async def wait_for_run(
    run_id: str,
    *,
    timeout: float,
    redis: ArqRedis | None = None,
    redis_url: str | None = None,
    poll: float = 0.2,
    redis_timeout: float = REDIS_TIMEOUT,
) -> RunStatus:
    """Wait until every chunk of ``run_id`` is done; returns its final status.

    Raises:
        RunTimeoutError: not complete within ``timeout`` seconds.
        QueueUnavailableError: a Redis call took longer than ``redis_timeout`` or failed.
    """
    check_name(run_id, "run id")
    conn = await _pool(redis, redis_url, DEFAULT_QUEUE, redis_timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            state = await _status(conn, run_id)
            if state.complete:
                return state
            if loop.time() >= deadline:
                raise RunTimeoutError(
                    f"run {run_id}: {state.done} of {state.chunks} chunks done after {timeout:g} s"
                )
            await asyncio.sleep(poll)
    finally:
        await conn.aclose()
