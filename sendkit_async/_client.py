"""The client: options, lifecycle, resources, bulk runs and ``with_options`` views.

Every call goes through :mod:`._pipeline` (budget -> transport -> protocol, with
retries) over the :class:`Core` the client shares with its ``with_options`` copies;
the calls themselves (URL, options settled once, the lane of a single GET) are built
by its base class, :class:`~._calls.ClientCalls`.
"""

from __future__ import annotations

import platform
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Literal, overload

import aiohttp
from yarl import URL

from . import _caching as caching
from . import _protocol as protocol
from . import errors
from ._budget import RateBudget, release_budget
from ._bulk import BulkReport, CampaignResult, ProgressCallback
from ._bulk import gather as bulk_gather
from ._bulk import iterate as bulk_iterate
from ._calls import ClientCalls
from ._config import (
    Timeout,
    as_retry,
    as_timeout,
    resolve_base_url,
    resolve_key,
    resolve_priority,
    resolve_workspace,
)
from ._core import ClientStats, Core
from ._hooks import Hooks, as_dispatch
from ._priority import BACKGROUND, INTERACTIVE, Priority
from ._protocol import DateLike
from ._ratelimit import RateLimiter, RateLimitSnapshot
from ._raw import AsyncSendKitWithRawResponse
from ._retry import RetryPolicy
from ._runstats import counting_core
from ._transport import Transport
from ._version import __version__
from .cache import ResponseCache
from .models import CampaignAnalytics
from .resources.analytics import Analytics
from .resources.campaigns import Campaigns

__all__ = ["AsyncSendKit"]

USER_AGENT = (
    f"sendkit-async/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
)


class AsyncSendKit(ClientCalls):
    """Async client of the SendKit API.

    Use it as ``async with AsyncSendKit() as client: ...`` (or call
    :meth:`aclose`). One client per application: it holds the connection
    pool and the rate-limit budget every concurrent call shares. A client works
    in the event loop of its first call only: used from another loop (a second
    ``asyncio.run()``) it raises :class:`ClientClosedError`; create one client
    per ``asyncio.run()``.

    Args:
        api_key: the key; default ``$SENDKIT_API_KEY``.
        base_url: default ``$SENDKIT_BASE_URL`` or ``https://api.sendkit.ai``.
        workspace_id: for platform keys (``sk_user_...``); default ``$SENDKIT_WORKSPACE_ID``.
        timeout: per-attempt seconds, or a :class:`Timeout`.
        retry: the :class:`RetryPolicy`; ``max_retries`` is a shortcut for its field.
        max_concurrency: requests in flight at once, across all calls (default 100, the
            size of the default connection pool: at 50 ms of latency the cap allows 2,000
            requests/s, beyond what one process serves, so the server's rate limit binds
            first; queueing for it is bounded per call by ``RetryPolicy.max_queue``).
        rate_limit: requests per second never to exceed (default: learned from the server).
        burst: requests that may go at once under ``rate_limit``.
        session: an aiohttp session to use instead of our own (never closed by us).
        allow_insecure_http: allow ``http://`` to a non-loopback host.
        connection_limit: size of our own connection pool.
        rate_limiter: a :class:`RateBudget` to use instead of a new
            :class:`RateLimiter` (then ``max_concurrency``, ``rate_limit`` and
            ``burst`` are the limiter's business), e.g. one shared by processes.
        priority: how this client's calls queue for the rate limit when others wait:
            ``"interactive"`` (default) before ``"background"``, which keeps a bounded
            share. The bulk helpers run as ``"background"`` unless told otherwise;
            ``with_options(priority=...)`` overrides it per view.
        clock, sleep: how the client reads time (seconds, monotonic) and waits:
            retry waits, deadlines, the overload guard and a new ``RateLimiter``
            all go through them. Defaults: ``time.monotonic`` and ``asyncio.sleep``;
            tests pass a fake clock so that nothing really waits.
        cache: a :class:`~sendkit_async.cache.ResponseCache` (``MemoryCache``,
            ``RedisCache``) for the analytics single calls; default none.
        coalesce: identical concurrent single GETs share one request (default True).
        hooks: a :class:`Hooks` (or a sequence of them) told about every call,
            attempt, retry and throttle wait, e.g. ``sendkit_async.otel.OpenTelemetryHooks``.

    Raises:
        ConfigurationError: no key, an unusable base URL, or unusable hooks.
    """

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
        priority: Priority = INTERACTIVE,
    ) -> None:
        key = resolve_key(api_key)
        dispatch = as_dispatch(hooks)
        self.base_url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self._base = URL(self.base_url)
        self._path_prefix = self._base.raw_path.rstrip("/")
        self.workspace_id = resolve_workspace(workspace_id, protocol.is_platform_key(key))
        self.timeout = as_timeout(timeout, Timeout())
        self.retry = as_retry(retry, max_retries, RetryPolicy())
        self._key_kind = "platform" if protocol.is_platform_key(key) else "workspace"
        if max_concurrency < 1:
            raise errors.ConfigurationError("max_concurrency must be >= 1")
        limiter: RateBudget
        if rate_limiter is not None:
            if not isinstance(rate_limiter, RateBudget):
                raise errors.ConfigurationError("rate_limiter must implement RateBudget")
            limiter = rate_limiter
        else:
            try:
                limiter = RateLimiter(
                    max_concurrency=max_concurrency,
                    rate=rate_limit,
                    burst=burst,
                    clock=clock,
                    sleep=sleep,
                )
            except ValueError as exc:
                raise errors.ConfigurationError(str(exc)) from None
        transport = Transport(
            session=session,
            connection_limit=connection_limit,
            connect_timeout=self.timeout.connect,
            headers=protocol.auth_headers(key, self.workspace_id, USER_AGENT),
        )
        self._core = Core(transport, limiter, clock=clock, sleep=sleep, hooks=dispatch)
        self._cache = caching.checked_cache(cache)
        self._coalesce = bool(coalesce)
        self._scope = caching.cache_scope(key, self.workspace_id, self.base_url)
        self._core.priority = resolve_priority(priority)
        self.analytics = Analytics(self)
        self.campaigns = Campaigns(self)
        self.last_bulk_report: BulkReport | None = None
        """The report of the latest ``gather_campaigns`` run (None before the first)."""

    # ------------------------------------------------------------------ bulk

    @overload
    async def gather_campaigns(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = BACKGROUND,
    ) -> list[CampaignAnalytics]: ...

    @overload
    async def gather_campaigns(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: bool,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = BACKGROUND,
    ) -> list[CampaignAnalytics | errors.SendKitError]: ...

    async def gather_campaigns(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: ProgressCallback | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = BACKGROUND,
    ) -> list[CampaignAnalytics] | list[CampaignAnalytics | errors.SendKitError]:
        """Analytics for many campaigns, concurrently, in the order of ``ids``.

        Every fetch goes through the client's pipeline (rate limit, retries,
        cooldown). Duplicate ids are fetched once; an invalid id fails alone.
        ``progress(done, total, last_result)`` is called after each id. The
        fetches queue for the rate limit as ``priority`` (default ``"background"``:
        interactive calls meanwhile go first, see :data:`Priority`).
        The run's :class:`BulkReport` is then in :attr:`last_bulk_report`.

        Returns:
            ``CampaignAnalytics`` per id; with ``return_exceptions=True`` a
            failed id holds its :class:`SendKitError` instead.

        Raises:
            ClientClosedError: the client is closed (once, before anything starts).
            BulkError: some ids failed (without ``return_exceptions``), or an
                authentication/permission error stopped the run; it carries
                every result, every failure and the ids not attempted.
        """
        if self.closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        counts = ClientStats()  # the run's own, for its report: other calls may run meanwhile
        run = self.with_options(priority=priority)
        run._core = counting_core(run._core, counts)
        fetch = run.analytics._campaign_fetcher(from_=from_, to=to, timeout=timeout, retry=retry)
        return await bulk_gather(
            self,
            ids,
            fetch,
            counts=counts,
            concurrency=concurrency or self._default_concurrency(),
            return_exceptions=return_exceptions,
            progress=progress,
        )

    def iter_campaigns(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        ordered: bool = False,
        concurrency: int | None = None,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        priority: Priority = BACKGROUND,
    ) -> AsyncIterator[CampaignResult[CampaignAnalytics]]:
        """Yield a :class:`CampaignResult` per id as each completes (or in order).

        ``ids`` may be any iterable or async iterable, a generator of millions
        included: ids are pulled only as room frees up, so memory stays flat
        and a slow consumer holds the fetching back. Ids are not de-duplicated.
        The fetches queue for the rate limit as ``priority`` (default ``"background"``).

        Raises:
            ClientClosedError: the client is closed (here, before anything starts).
            AuthenticationError, PermissionDeniedError: after yielding that
                id's result; everything still in flight is cancelled.
        """
        if self.closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        analytics = self.with_options(priority=priority).analytics
        fetch = analytics._campaign_fetcher(from_=from_, to=to, timeout=timeout, retry=retry)
        return bulk_iterate(
            ids, fetch, concurrency=concurrency or self._default_concurrency(), ordered=ordered
        )

    def _default_concurrency(self) -> int:
        # Twice the limiter's cap keeps it busy while some ids wait to retry.
        return 2 * self._core.limiter.snapshot().max_concurrency

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AsyncSendKit:
        if self._core.transport.closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client: end every call of it at once, and close our own pool. Idempotent.

        Calls asleep before a retry, queued for the rate limit (even a shared one)
        or held by the overload guard, requests in flight on our own pool, and
        shared (coalesced) requests end with :class:`ClientClosedError`; nothing is
        retried after a close. A cache is not closed: it may serve other clients;
        nor is a ``rate_limiter``, but one with a ``release()`` coroutine method
        (``RedisRateLimiter``) is released: its connections of this loop end with it.
        Shared requests (a background refresh too) are waited for, at most 5 s,
        then cancelled (5 s more at most): none is left running.
        """
        self._core.close()
        await self._core.transport.aclose()  # ends the requests, shared ones too, on our pool
        # A borrowed pool keeps its requests: those shared are cancelled (their callers
        # get ClientClosedError). On our own they end as the closed pool ends them.
        await self._core.flights.aclose(cancel=not self._core.transport.owns_session)
        await release_budget(self._core.limiter)

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._core.transport.closed

    def with_options(
        self,
        *,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        cache: ResponseCache | Literal[False] | None = None,
        coalesce: bool | None = None,
        priority: Priority | None = None,
    ) -> AsyncSendKit:
        """A view of this client with other defaults; it shares the pool and the rate budget.

        ``cache=False`` turns the cache off for the view, a cache object uses that
        one; ``coalesce=False`` sends every call of the view on its own; ``priority``
        sets how the view's calls queue for the rate limit (see :data:`Priority`).
        Closing either closes both.

        Raises:
            ConfigurationError: an invalid option.
        """
        clone = object.__new__(AsyncSendKit)
        clone.__dict__.update(self.__dict__)
        clone.timeout = as_timeout(timeout, self.timeout)
        clone.retry = as_retry(retry, max_retries, self.retry)
        if cache is not None:
            clone._cache = None if cache is False else caching.checked_cache(cache)
        if coalesce is not None:
            clone._coalesce = bool(coalesce)
        if priority is not None:
            clone._core = self._core.with_priority(resolve_priority(priority))
        clone.analytics = Analytics(clone)
        clone.campaigns = Campaigns(clone)
        return clone

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<AsyncSendKit {state} base_url={self.base_url!r} key=<{self._key_kind} key> "
            f"workspace_id={self.workspace_id!r}>"
        )

    # ------------------------------------------------------------------ state

    @property
    def with_raw_response(self) -> AsyncSendKitWithRawResponse:
        """The resources again, each method returning an :class:`APIResponse` (see :mod:`._raw`).

        Same single request, options, retries and errors as the plain method.
        """
        return AsyncSendKitWithRawResponse(self)

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """A snapshot of the shared rate-limit budget."""
        return self._core.limiter.snapshot()

    @property
    def stats(self) -> ClientStats:
        """A copy of the running request counters."""
        return self._core.stats.copy()
