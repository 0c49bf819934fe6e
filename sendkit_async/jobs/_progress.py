"""A chunk's partial progress in Redis: ids already answered are not fetched again.

While a chunk runs, every row the fetch produces (a result or a recorded failure) is
also written to a Redis hash of that chunk, ``sendkit:jobs:run:<run_id>:partial:<key_ref>:<chunk>``
(field: the id; value: the row as JSON, analytics in the API's own field names). A
later try of the same chunk (after a crash, a SIGTERM, a chunk timeout or a failing
sink) reads the hash first and fetches only the ids without a row.

This is an optimisation only; exactly-once does not depend on it. The sink still
receives the whole chunk in one replaceable write (the loaded rows merged with the
new ones, one per id), and the hash is deleted in the same Redis transaction that
marks the chunk done. A hash that cannot be read or written costs only re-fetches.

Bounds: one write in flight per chunk (rows that arrive meanwhile go in the next
one), so a crash re-fetches at most the rows of one Redis round trip; the hash
expires a day after its last write (arq itself drops a job a day after it was
enqueued). It holds key references and rows, never an API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, cast

from redis.asyncio import Redis

from ..errors import SendKitError
from ..models import CampaignAnalytics
from ..wire import from_wire, to_wire
from ._config import run_key
from ._sinks import Row

__all__ = ["PARTIAL_TTL", "ChunkProgress", "dump_row", "load_row", "partial_key", "stop_task"]

PARTIAL_TTL = 86400
"""Seconds a chunk's partial rows live after their last write (arq's own job expiry)."""

logger = logging.getLogger("sendkit_async.jobs")


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a background loop of ours and wait until it has ended.

    The loop must also check a stop flag of its own after each Redis call: on Python
    3.11, redis-py's bounded send (``asyncio.wait_for``) can swallow a cancellation
    that lands as the send completes, and a loop that relied on it would run on (and
    its awaiter wait) for ever. A cancellation of the caller is never suppressed here.
    """
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: an unexpected error must not warn at exit


def partial_key(run_id: str, key_ref: str, chunk: int) -> str:
    """The Redis hash of one chunk's rows recorded so far."""
    return run_key(run_id, f"partial:{key_ref}:{chunk}")


def dump_row(row: Row) -> str:
    """``row`` as compact JSON (without its id, which is the hash field)."""
    if row.analytics is not None:
        data: dict[str, Any] = {"a": to_wire(row.analytics)}
    else:
        data = {"e": row.error, "m": row.message, "s": row.status}
    return json.dumps(data, separators=(",", ":"))


def load_row(id: str, text: bytes | str) -> Row | None:
    """The row :func:`dump_row` wrote, or None when it cannot be read (fetched again)."""
    try:
        data = json.loads(text)
        if "a" in data:
            return Row(id, analytics=from_wire(data["a"], CampaignAnalytics))
        error, message, status = data["e"], data["m"], data["s"]
    except (ValueError, TypeError, KeyError, SendKitError):
        return None
    if not isinstance(error, str):
        return None
    return Row(id, error=error, message=message, status=status)


class ChunkProgress:
    """Records one chunk's rows in Redis as they come, in the background.

    ``async with ChunkProgress(redis, key) as progress``: :meth:`load` the rows of
    earlier tries, :meth:`add` each new row (no await), :meth:`flush` before giving the
    chunk back. Leaving the block stops the writer (rows not yet written are dropped:
    they are fetched again by the next try). Redis errors are logged, never raised.
    """

    __slots__ = ("_closing", "_failed", "_key", "_lock", "_pending", "_redis", "_task", "_wake")

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self._key = key
        self._pending: dict[str, Row] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one write at a time: rows arriving meanwhile wait
        self._task: asyncio.Task[None] | None = None
        self._failed = False
        self._closing = False

    async def __aenter__(self) -> ChunkProgress:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            await stop_task(task)

    async def load(self, ids: Iterable[str]) -> dict[str, Row]:
        """Rows recorded for ``ids`` by earlier tries of this chunk (none if unreadable)."""
        wanted = list(ids)
        if not wanted:
            return {}
        try:
            # redis-py types its commands as sync-or-async; this client is async
            values = await cast(
                "Awaitable[list[bytes | None]]", self._redis.hmget(self._key, wanted)
            )
        except Exception as exc:  # a Redis hiccup: fetch them all again
            logger.warning("partial rows of %s not read (%s)", self._key, type(exc).__name__)
            return {}
        rows: dict[str, Row] = {}
        for item, text in zip(wanted, values, strict=True):
            row = None if text is None else load_row(item, text)
            if row is not None:
                rows[item] = row
        return rows

    def add(self, row: Row) -> None:
        """Queue ``row`` for the next write."""
        self._pending[row.id] = row
        self._wake.set()

    async def flush(self) -> None:
        """Write every queued row now (after the write in flight, if any)."""
        await self._write()

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._write()

    async def _write(self) -> None:
        async with self._lock:
            await self._write_pending()

    async def _write_pending(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key, mapping={i: dump_row(r) for i, r in batch.items()})
                pipe.expire(self._key, PARTIAL_TTL)
                await pipe.execute()
        except Exception as exc:  # kept for the next write; at worst fetched again
            self._pending = {**batch, **self._pending}
            if not self._failed:
                self._failed = True
                logger.warning("partial rows of %s not recorded (%s)", self._key,
                               type(exc).__name__)  # fmt: skip
