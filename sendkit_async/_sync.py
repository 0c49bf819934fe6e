"""``SendKit``: the synchronous client, an :class:`AsyncSendKit` on a private event loop.

One implementation: every method hands the async client's coroutine to a
:class:`~._portal.Portal` (an event loop in a daemon thread) and blocks until it
ends, so results, errors, retries and rate limits are the async client's own.
The resources (:mod:`._sync_resources`) are typed from the async methods themselves
(``Callable[P, Awaitable[R]]`` becomes ``Callable[P, R]``), so signatures never drift.
Closing, bounded and on the client's own loop, and the finaliser of a client never
closed are in :mod:`._sync_close`.
"""

from __future__ import annotations

import queue
import sys
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

import aiohttp

from ._budget import RateBudget
from ._bulk import BulkReport, CampaignResult, ProgressCallback
from ._client import AsyncSendKit
from ._config import Timeout
from ._core import ClientStats
from ._hooks import Hooks
from ._portal import BlockingIterator, Portal
from ._priority import Priority
from ._protocol import DateLike
from ._ratelimit import RateLimitSnapshot
from ._retry import RetryPolicy
from ._sync_close import forgotten, shutdown
from ._sync_resources import SendKitWithRawResponse, SyncAnalytics, SyncCampaigns
from .cache import ResponseCache
from .errors import ClientClosedError, ConfigurationError, SendKitError
from .models import CampaignAnalytics

__all__ = ["SendKit"]

R = TypeVar("R")


class SendKit:
    """Synchronous client of the SendKit API, for scripts, notebooks and threads.

    Same arguments, resources, results and errors as :class:`AsyncSendKit`, which
    it runs on a private event loop in a daemon thread. Use it as
    ``with SendKit() as client: ...`` (or call :meth:`close`). It works where
    ``asyncio.run`` fails (inside Jupyter's running loop), and one client may be
    shared by any number of threads: they share its pool and rate budget.

    Ctrl-C (``KeyboardInterrupt``) during a call cancels the call's async work,
    waits for it to end (bounded) and is re-raised; the client stays usable.
    A client never closed warns (``ResourceWarning``) when collected or at exit,
    and is closed then; it never holds the interpreter up at exit.

    ``hooks`` are called on the client's own thread (its event loop's), not the
    caller's: a hook that touches shared state needs a lock.

    Raises:
        ConfigurationError: no key, an unusable base URL, or a ``session`` (an aiohttp
            session belongs to the loop it was made in; this client runs its own, so
            size its pool with ``connection_limit``). No thread is started then.
    """

    analytics: SyncAnalytics
    campaigns: SyncCampaigns
    _async: AsyncSendKit
    _caches: list[ResponseCache]
    _portal: Portal
    _root: SendKit | None

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        workspace_id: str | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        max_concurrency: int = 100,
        rate_limit: float | None = None,
        burst: float | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        connection_limit: int = 100,
        rate_limiter: RateBudget | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        cache: ResponseCache | None = None,
        coalesce: bool = True,
        hooks: Hooks | Sequence[Hooks] | None = None,
        priority: Priority = "interactive",
    ) -> None:
        if session is not None:
            raise ConfigurationError(
                "SendKit runs its own event loop and cannot use an aiohttp session made for "
                "another; drop session= (connection_limit= sizes the client's own pool)"
            )
        client = AsyncSendKit(  # binds no loop yet: it is bound to ours at its first call
            api_key,
            base_url=base_url,
            workspace_id=workspace_id,
            timeout=timeout,
            retry=retry,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            burst=burst,
            session=session,
            allow_insecure_http=allow_insecure_http,
            connection_limit=connection_limit,
            rate_limiter=rate_limiter,
            clock=clock,
            sleep=sleep,
            cache=cache,
            coalesce=coalesce,
            hooks=hooks,
            priority=priority,
        )
        portal = Portal()
        self._bind(client, portal, None)
        self._caches = [] if cache is None else [cache]  # released on our loop at close
        caller = sys._getframe(1)  # where the warning of a client never closed points
        origin = (caller.f_code.co_filename, caller.f_lineno)
        self._finalizer = weakref.finalize(self, forgotten, portal, client, self._caches, origin)

    def _bind(self, client: AsyncSendKit, portal: Portal, root: SendKit | None) -> None:
        self._async, self._portal, self._root = client, portal, root
        self.analytics = SyncAnalytics(portal, client.analytics)
        self.campaigns = SyncCampaigns(portal, client.campaigns)

    # ------------------------------------------------------------------ bulk

    @overload
    def gather_campaigns(
        self,
        ids: Iterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = "background",
    ) -> list[CampaignAnalytics]: ...

    @overload
    def gather_campaigns(
        self,
        ids: Iterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: bool,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = "background",
    ) -> list[CampaignAnalytics | SendKitError]: ...

    def gather_campaigns(
        self,
        ids: Iterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = "background",
    ) -> list[CampaignAnalytics] | list[CampaignAnalytics | SendKitError]:
        """:meth:`AsyncSendKit.gather_campaigns`, blocking.

        ``ids`` are read in the calling thread first (``client.campaigns.iter_ids()``
        in the client's own). ``progress(done, total, last)``
        is called in the calling thread too (never in the client's), once per id;
        an exception from it (``KeyboardInterrupt`` included) cancels the run, waits
        for it to end and is raised.

        Raises:
            ClientClosedError: the client is closed.
            BulkError: as :meth:`AsyncSendKit.gather_campaigns`.
        """
        items: Iterable[str] | AsyncIterator[str]
        if isinstance(ids, BlockingIterator):  # e.g. iter_ids(): read inside, no hand-offs
            items = ids.take_source()
        else:
            items = ids if isinstance(ids, (list, tuple)) else list(ids)
        events: queue.SimpleQueue[object] | None = None
        relay: ProgressCallback | None = None
        if progress is not None:
            events = queue.SimpleQueue()
            relay = _relay(events)
        coro = self._async.gather_campaigns(
            items,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=relay,
            from_=from_,
            to=to,
            timeout=timeout,
            retry=retry,
            priority=priority,
        )
        return self._portal.run(coro, events, None if progress is None else _report(progress))

    def iter_campaigns(
        self,
        ids: Iterable[str],
        *,
        ordered: bool = False,
        concurrency: int | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = "background",
    ) -> BlockingIterator[CampaignResult[CampaignAnalytics]]:
        """:meth:`AsyncSendKit.iter_campaigns` as a plain iterator (close it to stop early).

        ``client.campaigns.iter_ids()`` is streamed by the client itself. Other
        iterables are pulled from the client's own thread, as room frees up: a
        generator of ids must not call the client (that raises
        :class:`InvalidRequestError` instead of deadlocking).

        Raises:
            ClientClosedError: the client is closed.
            AuthenticationError, PermissionDeniedError: as the async method.
        """
        source: Iterable[str] | AsyncIterator[str] = ids
        if isinstance(ids, BlockingIterator):
            source = ids.take_source()
        results = self._portal.call(
            lambda: self._async.iter_campaigns(
                source,
                ordered=ordered,
                concurrency=concurrency,
                from_=from_,
                to=to,
                timeout=timeout,
                retry=retry,
                priority=priority,
            )
        )
        return self._portal.iterate(results)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SendKit:
        if self.closed:
            raise ClientClosedError("the client is closed; create a new SendKit")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client (as :meth:`AsyncSendKit.aclose`), then stop its thread. Idempotent.

        Calls still running in other threads end with :class:`ClientClosedError`.
        Waits at most a few seconds (``CLOSE_WAIT``) for each step.
        """
        root = self._root or self
        root._finalizer.detach()
        shutdown(self._portal, self._async, root._caches)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return not self._portal.alive

    def with_options(
        self,
        *,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        cache: ResponseCache | Literal[False] | None = None,
        coalesce: bool | None = None,
        priority: Priority | None = None,
    ) -> SendKit:
        """A view of this client with other defaults, sharing its thread, pool and budget.

        Closing either closes both.

        Raises:
            ConfigurationError: a bad ``timeout`` or ``max_retries``.
        """
        clone = self._portal.call(
            lambda: self._async.with_options(
                timeout=timeout,
                retry=retry,
                max_retries=max_retries,
                cache=cache,
                coalesce=coalesce,
                priority=priority,
            )
        )
        root = self._root or self
        if cache and all(cache is not known for known in root._caches):
            root._caches.append(cache)
        view = object.__new__(SendKit)
        view._bind(clone, self._portal, root)  # the root lives while views do
        return view

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        text = repr(self._async)
        return f"<SendKit {state} {text.split(' ', 2)[2]}"

    # ------------------------------------------------------------------ state

    @property
    def with_raw_response(self) -> SendKitWithRawResponse:
        """The resources again, each method returning an :class:`APIResponse` (blocking)."""
        return SendKitWithRawResponse(self._portal, self._async.with_raw_response)

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def workspace_id(self) -> str | None:
        return self._async.workspace_id

    @property
    def timeout(self) -> Timeout:
        return self._async.timeout

    @property
    def retry(self) -> RetryPolicy:
        return self._async.retry

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """A snapshot of the shared rate-limit budget (taken in the client's thread)."""
        return self._read(lambda: self._async.rate_limit)

    @property
    def stats(self) -> ClientStats:
        """A copy of the running request counters (taken in the client's thread)."""
        return self._read(lambda: self._async.stats)

    @property
    def last_bulk_report(self) -> BulkReport | None:
        """The report of this client's latest ``gather_campaigns`` run (None before)."""
        return self._async.last_bulk_report

    def _read(self, fn: Callable[[], R]) -> R:
        try:
            return self._portal.call(fn)
        except ClientClosedError:  # stopped: nothing else touches the client any more
            return fn()


def _relay(events: queue.SimpleQueue[object]) -> ProgressCallback:
    put = events.put

    def relay(done: int, total: int | None, last: CampaignResult[Any]) -> None:
        put((done, total, last))

    return relay


def _report(progress: ProgressCallback) -> Callable[[Any], object]:
    def handle(event: Any) -> object:
        return progress(*event)

    return handle
