"""Many campaign ids -> analytics, concurrently, losing nothing.

Every fetch goes through ``client.analytics.campaign`` and so through the one
request pipeline (limiter, retries, cooldown): this module only schedules.
At most ``concurrency`` ids are admitted and not yet handed to the caller, so
memory stays flat for any number of ids and a slow consumer holds the
producers back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from .errors import (
    AuthenticationError,
    BulkError,
    InvalidRequestError,
    PermissionDeniedError,
    SendKitError,
    UnexpectedError,
)

if TYPE_CHECKING:
    from ._client import AsyncSendKit
    from ._core import ClientStats

__all__ = ["BulkReport", "CampaignResult", "ProgressCallback", "gather", "iterate"]

T = TypeVar("T")

FATAL_ERRORS = (AuthenticationError, PermissionDeniedError)
"""Errors after which no other id can succeed: the run stops at once."""


@attrs.frozen
class CampaignResult(Generic[T]):
    """The outcome for one id: ``value`` or ``error``, never both.

    ``ok`` does not narrow ``value`` for a type checker: test ``error is not None``,
    then take the value with :meth:`unwrap` (or test ``value is not None``).
    """

    id: Any
    value: T | None = None
    error: SendKitError | None = None

    @property
    def ok(self) -> bool:
        """True when the fetch succeeded."""
        return self.error is None

    def unwrap(self) -> T:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


ProgressCallback = Callable[[int, "int | None", CampaignResult[Any]], object]
"""``progress(done, total, last_result)``; ``total`` is None when the input has no length."""


@attrs.frozen
class BulkReport:
    """What a bulk run did, for logs and dashboards.

    ``requests``, ``retries`` and ``rate_limited`` count this run's own HTTP
    attempts, whatever else uses the client meanwhile. ``throttled_seconds`` is
    the time requests spent held by the shared rate limiter (waiting for the
    cooldown gate or a token) during the run, summed over requests: the
    limiter's figure, so it includes the waits of other calls made meanwhile.
    """

    total: int
    succeeded: int
    failed: int
    not_attempted: int
    failures_by_type: dict[str, int]
    requests: int
    retries: int
    rate_limited: int
    throttled_seconds: float
    wall_seconds: float

    @property
    def requests_per_second(self) -> float:
        """HTTP attempts per second of wall time."""
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def campaigns_per_second(self) -> float:
        """Ids finished (either way) per second of wall time."""
        done = self.succeeded + self.failed
        return done / self.wall_seconds if self.wall_seconds > 0 else 0.0


class _Recorder:
    """Counts a run's outcomes and turns its request counters into a :class:`BulkReport`."""

    def __init__(self, client: AsyncSendKit, counts: ClientStats) -> None:
        self._client = client
        self._counts = counts
        self._limits = client.rate_limit
        self._start = time.monotonic()
        self.succeeded = 0
        self.failures: dict[str, int] = {}

    @property
    def done(self) -> int:
        return self.succeeded + sum(self.failures.values())

    def tally(self, error: SendKitError | None) -> None:
        if error is None:
            self.succeeded += 1
        else:
            name = type(error).__name__
            self.failures[name] = self.failures.get(name, 0) + 1

    def report(self, not_attempted: int = 0) -> BulkReport:
        counts, limits = self._counts, self._client.rate_limit
        failed = sum(self.failures.values())
        return BulkReport(
            total=self.succeeded + failed + not_attempted,
            succeeded=self.succeeded,
            failed=failed,
            not_attempted=not_attempted,
            failures_by_type=dict(self.failures),
            requests=counts.requests,
            retries=counts.retries,
            rate_limited=counts.rate_limited,
            throttled_seconds=limits.throttled_seconds - self._limits.throttled_seconds,
            wall_seconds=time.monotonic() - self._start,
        )


async def _aiter(ids: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(ids, AsyncIterable):
        async for item in ids:
            yield item
    else:
        for item in ids:
            yield item


def _unexpected(item: Any, exc: Exception) -> UnexpectedError:
    """``exc`` (not one of ours) as ``item``'s failure; its text stays in ``__cause__`` only."""
    error = UnexpectedError(f"unexpected {type(exc).__name__} while fetching {item!r}")
    error.__cause__ = exc
    return error


async def _settle(fetch: Callable[[Any], Awaitable[T]], item: Any) -> CampaignResult[T]:
    try:
        if not isinstance(item, str):
            raise InvalidRequestError(f"campaign id must be a string, got {type(item).__name__}")
        return CampaignResult(item, value=await fetch(item))
    except SendKitError as exc:
        return CampaignResult(item, error=exc)
    except Exception as exc:  # a bug below us fails this id, never the run or its window
        return CampaignResult(item, error=_unexpected(item, exc))


async def iterate(
    ids: Iterable[Any] | AsyncIterable[Any],
    fetch: Callable[[Any], Awaitable[T]],
    *,
    concurrency: int,
    ordered: bool = False,
) -> AsyncIterator[CampaignResult[T]]:
    """Yield one :class:`CampaignResult` per id, as they complete (or in input order).

    At most ``concurrency`` ids are in flight or waiting to be yielded. A
    fatal error (authentication, permission) cancels the rest and is raised
    after its result is yielded. An exception outside :class:`SendKitError`
    is that id's :class:`UnexpectedError`; a cancellation, ``KeyboardInterrupt``
    or ``SystemExit`` in a fetch cancels the rest and is raised.
    """
    if concurrency < 1:
        raise InvalidRequestError(f"concurrency must be >= 1, got {concurrency}")
    window = asyncio.Semaphore(concurrency)
    done: asyncio.Queue[tuple[int, CampaignResult[T]] | None] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()
    fatal: list[SendKitError] = []
    crashed: list[BaseException] = []

    async def run(seq: int, item: Any) -> None:
        try:
            result = await _settle(fetch, item)
        except BaseException as exc:  # e.g. a stray cancellation: the consumer must not wait
            crashed.append(exc)
            done.put_nowait(None)
            raise
        if isinstance(result.error, FATAL_ERRORS):
            fatal.append(result.error)
        done.put_nowait((seq, result))

    async def produce() -> None:
        seq = 0
        source = _aiter(ids)
        try:
            async for item in source:
                await window.acquire()
                if fatal:
                    break
                task = asyncio.create_task(run(seq, item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                seq += 1
            while tasks:
                await asyncio.gather(*tasks)
        finally:
            if hasattr(source, "aclose"):
                await source.aclose()
            done.put_nowait(None)

    producer = asyncio.create_task(produce())
    waiting: dict[int, CampaignResult[T]] = {}
    next_seq = 0
    try:
        while True:
            entry = await done.get()
            if entry is None:
                if crashed:
                    raise crashed[0]
                break
            seq, result = entry
            if ordered:
                waiting[seq] = result
                ready = []
                while next_seq in waiting:
                    ready.append(waiting.pop(next_seq))
                    next_seq += 1
            else:
                ready = [result]
            for item in ready:
                yield item
                window.release()
            if fatal:
                raise fatal[0]
        await producer
    finally:
        pending = [producer, *tasks]
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)


async def gather(
    client: AsyncSendKit,
    ids: Iterable[Any] | AsyncIterable[Any],
    fetch: Callable[[Any], Awaitable[T]],
    *,
    counts: ClientStats,
    concurrency: int,
    return_exceptions: bool,
    progress: ProgressCallback | None,
) -> list[Any]:
    """Fetch every id (duplicates once), returning results in input order.

    ``counts`` are the run's own request counters (``fetch`` counts into them).

    ``concurrency`` workers share the list of distinct ids, so a run costs no
    task, queue entry or result object per id. An exception outside
    :class:`SendKitError` is that id's :class:`UnexpectedError`; a cancellation,
    ``KeyboardInterrupt`` or ``SystemExit`` cancels the other workers and is raised.

    Raises:
        BulkError: some ids failed (and ``return_exceptions`` is false), or a
            fatal error stopped the run; it carries every result.
    """
    if concurrency < 1:
        raise InvalidRequestError(f"concurrency must be >= 1, got {concurrency}")
    items = [item async for item in _aiter(ids)]
    slots: dict[Any, int] = {}  # an id's key -> its place among the distinct ids
    distinct: list[Any] = []
    places: list[int] = []  # for each input item, its distinct id's place
    for item in items:
        new = len(distinct)
        try:
            place = slots.setdefault(item, new)
        except TypeError:  # unhashable: the same object twice is still one id
            place = slots.setdefault(("unhashable", id(item)), new)
        if place == new:
            distinct.append(item)
        places.append(place)
    total = len(distinct)
    outcomes: list[Any] = [_MISSING] * total  # a value, or the id's SendKitError
    recorder = _Recorder(client, counts)
    fatal: list[SendKitError] = []
    workers: list[asyncio.Task[None]] = []
    queue = iter(range(total))

    async def work() -> None:
        for place in queue:  # shared by every worker: each place is taken once
            item = distinct[place]
            error: SendKitError | None = None
            try:
                if not isinstance(item, str):
                    raise InvalidRequestError(
                        f"campaign id must be a string, got {type(item).__name__}"
                    )
                outcomes[place] = value = await fetch(item)
            except SendKitError as exc:
                outcomes[place] = error = exc
                value = None
            except Exception as exc:  # a bug below us fails this id, never the whole run
                outcomes[place] = error = _unexpected(item, exc)
                value = None
            recorder.tally(error)
            if progress is not None:
                progress(recorder.done, total, CampaignResult(item, value=value, error=error))
            if isinstance(error, FATAL_ERRORS):
                fatal.append(error)
                for worker in workers:
                    if worker is not asyncio.current_task():
                        worker.cancel()
                return

    workers.extend(asyncio.create_task(work()) for _ in range(min(concurrency, total)))
    try:
        if workers:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for worker in done:
                if worker.cancelled():
                    if not fatal:  # not cancelled by us: a fetch raised CancelledError
                        raise asyncio.CancelledError
                elif (exc := worker.exception()) is not None:
                    raise exc  # a bug (e.g. in the progress callback), not a fetch failure
    finally:
        for worker in workers:
            worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, return_exceptions=True)
    return _outcome(
        client, distinct, outcomes, places, fatal, recorder, return_exceptions=return_exceptions
    )


_MISSING: Any = object()


def _outcome(
    client: AsyncSendKit,
    distinct: list[Any],
    outcomes: list[Any],
    places: list[int],
    fatal: list[SendKitError],
    recorder: _Recorder,
    *,
    return_exceptions: bool,
) -> list[Any]:
    """The results in input order, or the :class:`BulkError` that carries them."""
    not_attempted: list[Any] = []
    failures: dict[Any, SendKitError] = {}
    for item, out in zip(distinct, outcomes, strict=True):
        if out is _MISSING:
            not_attempted.append(item)
        elif isinstance(out, SendKitError):
            failures[_as_key(item)] = out
    report = recorder.report(len(not_attempted))
    client.last_bulk_report = report
    if fatal or (failures and not return_exceptions):
        results = {
            item: out
            for item, out in zip(distinct, outcomes, strict=True)
            if out is not _MISSING and not isinstance(out, SendKitError)
        }
        first = fatal[0] if fatal else None
        reason = f"stopped early by {type(first).__name__}: {first}; " if first else ""
        raise BulkError(
            f"{reason}{len(failures)} of {len(distinct)} ids failed, {len(results)} succeeded"
            + (f", {len(not_attempted)} not attempted" if not_attempted else ""),
            results=results,
            failures=failures,
            not_attempted=tuple(not_attempted),
            fatal=first,
            report=report,
        )
    if len(places) == len(distinct):  # no duplicates: the outcomes are in input order
        return outcomes
    return [outcomes[place] for place in places]


def _as_key(item: Any) -> Any:
    """``item`` as a dict key: itself, or its ``repr()`` if unhashable (a list by mistake)."""
    try:
        hash(item)
    except TypeError:
        return repr(item)
    return item
