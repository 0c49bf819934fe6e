"""A chunk's partial progress in Redis: ids already answered are not fetched again.

While a chunk runs, every row the fetch produces (a result or a recorded failure) is
also written to a Redis list of that chunk, ``sendkit:jobs:run:<run_id>:partial:<key_ref>:<chunk>``
(each element: the rows of one write, id -> row, in ``marshal`` form, analytics in the
API's own field names; see :func:`dump_rows`). A later try of the same chunk (after a
crash, a SIGTERM, a chunk timeout or a failing sink) reads the list first and fetches
only the ids without a row.

This is an optimisation only; exactly-once does not depend on it. The sink still
receives the whole chunk in one replaceable write (the loaded rows merged with the
new ones, one per id), and the list is deleted in the same Redis transaction that
marks the chunk done. A list that cannot be read or written costs only re-fetches.

Cost and bounds: one writer per worker gathers the answers of every running chunk for
``WRITE_EVERY`` seconds and writes them in one transaction, one ``RPUSH`` of one value
per chunk (a transaction per answer cost more client CPU than the request, a hash
field per answer about three times this; see ``benchmarks/bench_progress.py``), so a
crash re-fetches at most the answers of the last ``WRITE_EVERY`` seconds and of the
write in flight. A chunk given back (chunk timeout, failing sink) flushes its rows
first. The list expires a day after its last write (arq itself drops a job a day
after it was enqueued). It holds key references and rows, never an API key.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import cast

from redis.asyncio import Redis

from ..errors import SendKitError
from ..models import CampaignAnalytics
from ..wire import from_wire
from ._config import run_key
from ._sinks import Row

__all__ = [
    "PARTIAL_TTL",
    "WRITE_EVERY",
    "ChunkProgress",
    "ProgressWriter",
    "dump_rows",
    "load_rows",
    "partial_key",
    "stop_task",
]

PARTIAL_TTL = 86400
"""Seconds a chunk's partial rows live after their last write (arq's own job expiry)."""

WRITE_EVERY = 0.5
"""Seconds a worker's progress writer lets answers gather before one write."""

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
    """The Redis list of one chunk's rows recorded so far."""
    return run_key(run_id, f"partial:{key_ref}:{chunk}")


def dump_rows(rows: Iterable[Row]) -> bytes:
    """``rows`` as one element of a chunk's list: ``marshal`` of plain data (id -> the
    analytics in the API's own field names, or the failure).

    ``marshal``, not JSON: several times cheaper to write, and this runs for every
    answer. It reads only plain values back (never code to run, unlike arq's own
    pickled jobs in the same Redis); a value it cannot read is fetched again.
    """
    plain: dict[str, tuple[object, ...]] = {}
    for row in rows:
        wire = row._wire
        if wire is not None:
            plain[row.id] = ("a", wire)
        else:
            plain[row.id] = ("e", row.error, row.message, row.status)
    return marshal.dumps(plain)


def load_rows(value: bytes, wanted: Collection[str]) -> dict[str, Row]:
    """The rows of ``wanted`` ids in one element :func:`dump_rows` wrote; an element or a
    row that cannot be read gives nothing (fetched again)."""
    try:
        plain = marshal.loads(value)  # noqa: S302 - plain values only; see dump_rows
    except (ValueError, TypeError, EOFError):
        return {}
    if not isinstance(plain, dict):
        return {}
    rows: dict[str, Row] = {}
    for id, data in plain.items():
        if id in wanted and (row := _row(id, data)) is not None:
            rows[id] = row
    return rows


def _row(id: str, data: object) -> Row | None:
    if not isinstance(data, tuple):
        return None
    if data[:1] == ("a",) and len(data) == 2:
        try:
            return Row(id, analytics=from_wire(data[1], CampaignAnalytics))
        except (SendKitError, ValueError, TypeError, KeyError):
            return None
    if len(data) != 4:
        return None
    kind, error, message, status = data
    if (
        kind != "e"
        or not isinstance(error, str)
        or not isinstance(message, str | None)
        or not isinstance(status, int | None)
    ):
        return None
    return Row(id, error=error, message=message, status=status)


class ProgressWriter:
    """Records the answered rows of every running chunk of one worker in Redis.

    :meth:`add` queues a row (no await); one background task writes what was queued,
    at most every ``every`` seconds (``WRITE_EVERY``), every chunk's rows in one transaction (one
    ``RPUSH`` of one value and an ``EXPIRE`` per chunk): a transaction per answer cost
    more client CPU than the request itself. :meth:`flush` writes one chunk's rows at
    once (before the chunk is given back). A failed write is logged once and its rows
    kept for the next; the rows of a chunk that has ended (:meth:`close`) are dropped.
    ``start()`` in the running loop, ``aclose()`` at the end.
    """

    __slots__ = ("_closing", "_every", "_failed", "_live", "_lock", "_sleep", "_task", "_wake",
                 "redis")  # fmt: skip

    def __init__(
        self,
        redis: Redis,
        *,
        every: float | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.redis = redis
        self._every = WRITE_EVERY if every is None else every
        self._sleep = sleep
        self._live: dict[str, dict[str, Row]] = {}  # running chunk's key -> rows to write
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one write at a time: rows arriving meanwhile wait
        self._task: asyncio.Task[None] | None = None
        self._failed = False
        self._closing = False

    def start(self) -> None:
        """Start the background writer (in the running loop)."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop the writer; rows not yet written are dropped (fetched again if needed)."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            await stop_task(task)

    def open(self, key: str) -> None:
        """A chunk whose rows go to the list ``key`` has started."""
        self._live.setdefault(key, {})

    def close(self, key: str) -> None:
        """The chunk of ``key`` has ended: its queued rows are not written."""
        self._live.pop(key, None)

    def add(self, key: str, row: Row) -> None:
        """Queue ``row`` of the running chunk ``key`` for the next write."""
        pending = self._live.get(key)
        if pending is not None:
            pending[row.id] = row
            self._wake.set()

    async def flush(self, key: str) -> None:
        """Write the queued rows of ``key`` now (after the write in flight, if any)."""
        async with self._lock:
            await self._write((key,))

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            await self._sleep(self._every)  # the answers of the next moment join this write
            self._wake.clear()
            if self._closing:
                return
            async with self._lock:
                await self._write(tuple(self._live))

    async def _write(self, keys: Iterable[str]) -> None:
        batch: dict[str, dict[str, Row]] = {}
        for key in keys:
            rows = self._live.get(key)
            if rows:
                batch[key], self._live[key] = rows, {}
        if not batch:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key, rows in batch.items():
                    pipe.rpush(key, dump_rows(rows.values()))
                    pipe.expire(key, PARTIAL_TTL)
                await pipe.execute()
        except Exception as exc:  # kept for the next write; at worst fetched again
            for key, rows in batch.items():
                pending = self._live.get(key)
                if pending is not None:  # still running
                    self._live[key] = {**rows, **pending}
            if not self._failed:
                self._failed = True
                logger.warning("partial rows of %d chunk(s) not recorded (%s), e.g. %s",
                               len(batch), type(exc).__name__, next(iter(batch)))  # fmt: skip


class ChunkProgress:
    """One chunk's view of the worker's :class:`ProgressWriter`.

    ``async with ChunkProgress(writer, key) as progress``: :meth:`load` the rows of
    earlier tries, :meth:`add` each new row (no await), :meth:`flush` before giving the
    chunk back. Leaving the block drops the rows not yet written (they are fetched again
    by the next try). Redis errors are logged, never raised.
    """

    __slots__ = ("_key", "_writer")

    def __init__(self, writer: ProgressWriter, key: str) -> None:
        self._writer = writer
        self._key = key

    async def __aenter__(self) -> ChunkProgress:
        self._writer.open(self._key)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._writer.close(self._key)

    async def load(self, ids: Iterable[str]) -> dict[str, Row]:
        """Rows recorded for ``ids`` by earlier tries of this chunk (none if unreadable)."""
        wanted = set(ids)
        if not wanted:
            return {}
        try:
            # redis-py types its commands as sync-or-async; this client is async
            values = await cast(
                "Awaitable[list[bytes]]", self._writer.redis.lrange(self._key, 0, -1)
            )
        except Exception as exc:  # a Redis hiccup: fetch them all again
            logger.warning("partial rows of %s not read (%s)", self._key, type(exc).__name__)
            return {}
        rows: dict[str, Row] = {}
        for value in values:  # in the order written: a later answer wins
            rows.update(load_rows(value, wanted))
        return rows

    def add(self, row: Row) -> None:
        """Queue ``row`` for the next write."""
        self._writer.add(self._key, row)

    async def flush(self) -> None:
        """Write every queued row of this chunk now (after the write in flight, if any)."""
        await self._writer.flush(self._key)
