"""The client: options, lifecycle and the one request pipeline every call goes through.

pipeline: rate limiter (slot, cooldown gate, tokens) -> transport (one attempt)
-> protocol (hints, errors, envelope), all inside a fresh tenacity loop.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import tenacity
from yarl import URL

from . import _protocol as protocol
from . import errors
from ._budget import RateBudget
from ._bulk import BulkReport, CampaignResult, ProgressCallback
from ._bulk import gather as bulk_gather
from ._bulk import iterate as bulk_iterate
from ._config import Timeout, as_retry, as_timeout, resolve_base_url, resolve_key, resolve_workspace
from ._core import ClientStats, Core
from ._protocol import DateLike
from ._ratelimit import RateLimiter, RateLimitSnapshot
from ._retry import Deadline, RetryPolicy
from ._transport import RawResponse, Transport
from ._version import __version__
from .models import CampaignAnalytics
from .resources.analytics import Analytics
from .resources.campaigns import Campaigns

T = TypeVar("T")


def _as_is(raw: RawResponse) -> RawResponse:
    return raw


def _read_envelope(raw: RawResponse) -> Mapping[str, Any]:
    return protocol.parse_envelope(raw.status, raw.body)


def data_reader(cls: type[T]) -> Callable[[RawResponse], T]:
    """A function that checks an answer's envelope and structures its ``data`` as ``cls``."""
    read = _readers.get(cls)
    if read is None:

        def read(raw: RawResponse) -> Any:
            envelope = protocol.parse_envelope(raw.status, raw.body)
            return protocol.structure_field(envelope, "data", cls, status=raw.status)

        _readers[cls] = read
    return read


_readers: dict[Any, Callable[[RawResponse], Any]] = {}


logger = logging.getLogger("sendkit_async")

THROTTLE_LOG_SECONDS = 0.05
"""Waits for the rate-limit budget at least this long are logged (INFO)."""

__all__ = ["AsyncSendKit"]

USER_AGENT = (
    f"sendkit-async/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
)


class AsyncSendKit:
    """Async client of the SendKit API.

    Use it as ``async with AsyncSendKit() as client: ...`` (or call
    :meth:`aclose`). One client per application: it holds the connection
    pool and the rate-limit budget every concurrent call shares.

    Args:
        api_key: the key; default ``$SENDKIT_API_KEY``.
        base_url: default ``$SENDKIT_BASE_URL`` or ``https://api.sendkit.ai``.
        workspace_id: for platform keys (``sk_user_...``); default ``$SENDKIT_WORKSPACE_ID``.
        timeout: per-attempt seconds, or a :class:`Timeout`.
        retry: the :class:`RetryPolicy`; ``max_retries`` is a shortcut for its field.
        max_concurrency: requests in flight at once, across all calls.
        rate_limit: requests per second never to exceed (default: learned from the server).
        burst: requests that may go at once under ``rate_limit``.
        session: an aiohttp session to use instead of our own (never closed by us).
        allow_insecure_http: allow ``http://`` to a non-loopback host.
        connection_limit: size of our own connection pool.
        rate_limiter: a :class:`RateBudget` to use instead of a new
            :class:`RateLimiter` (then ``max_concurrency``, ``rate_limit`` and
            ``burst`` are the limiter's business), e.g. one shared by processes.

    Raises:
        ConfigurationError: no key, or an unusable base URL.
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
        max_concurrency: int = 16,
        rate_limit: float | None = None,
        burst: float | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        connection_limit: int = 100,
        rate_limiter: RateBudget | None = None,
    ) -> None:
        key = resolve_key(api_key)
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
                limiter = RateLimiter(max_concurrency=max_concurrency, rate=rate_limit, burst=burst)
            except ValueError as exc:
                raise errors.ConfigurationError(str(exc)) from None
        transport = Transport(
            session=session,
            connection_limit=connection_limit,
            connect_timeout=self.timeout.connect,
            headers=protocol.auth_headers(key, self.workspace_id, USER_AGENT),
        )
        self._core = Core(transport, limiter)
        self.analytics = Analytics(self)
        self.campaigns = Campaigns(self)
        self.last_bulk_report: BulkReport | None = None
        """The report of the latest ``gather_campaigns`` run (None before the first)."""

    # ------------------------------------------------------------------ bulk

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
    ) -> list[Any]:
        """Analytics for many campaigns, concurrently, in the order of ``ids``.

        Every fetch goes through the client's pipeline (rate limit, retries,
        cooldown). Duplicate ids are fetched once; an invalid id fails alone.
        ``progress(done, total, last_result)`` is called after each id.
        The run's :class:`BulkReport` is then in :attr:`last_bulk_report`.

        Returns:
            ``CampaignAnalytics`` per id; with ``return_exceptions=True`` a
            failed id holds its :class:`SendKitError` instead.

        Raises:
            BulkError: some ids failed (without ``return_exceptions``), or an
                authentication/permission error stopped the run; it carries
                every result, every failure and the ids not attempted.
        """
        fetch = self.analytics._campaign_fetcher(from_=from_, to=to, timeout=timeout, retry=retry)
        return await bulk_gather(
            self,
            ids,
            fetch,
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
    ) -> AsyncIterator[CampaignResult[CampaignAnalytics]]:
        """Yield a :class:`CampaignResult` per id as each completes (or in order).

        ``ids`` may be any iterable or async iterable, a generator of millions
        included: ids are pulled only as room frees up, so memory stays flat
        and a slow consumer holds the fetching back. Ids are not de-duplicated.

        Raises:
            AuthenticationError, PermissionDeniedError: after yielding that
                id's result; everything still in flight is cancelled.
        """
        fetch = self.analytics._campaign_fetcher(from_=from_, to=to, timeout=timeout, retry=retry)
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
        """Close the connection pool (if the client created it). Idempotent."""
        await self._core.transport.aclose()

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
    ) -> AsyncSendKit:
        """A view of this client with other defaults; it shares the pool and the rate budget.

        Closing either closes both.
        """
        clone = object.__new__(AsyncSendKit)
        clone.__dict__.update(self.__dict__)
        clone.timeout = as_timeout(timeout, self.timeout)
        clone.retry = as_retry(retry, max_retries, self.retry)
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
    def rate_limit(self) -> RateLimitSnapshot:
        """A snapshot of the shared rate-limit budget."""
        return self._core.limiter.snapshot()

    @property
    def stats(self) -> ClientStats:
        """A copy of the running request counters."""
        return self._core.stats.copy()

    # ------------------------------------------------------------------ pipeline

    def _url(self, path: str, params: Mapping[str, str | None] | None) -> URL:
        # Built from parts (encoded=True: the path segments are already quoted, and
        # yarl must not re-normalise them: it would resolve "..", decode "%2e%2e").
        # Not parsed from text: parsing costs several times more, and a bulk run's
        # distinct ids would only churn yarl's cache of parsed URLs.
        path = self._path_prefix + path
        if params and (query := {k: v for k, v in params.items() if v is not None}):
            base = self._base
            return URL.build(
                scheme=base.scheme,
                authority=base.raw_authority,
                path=path,
                query_string=urlencode(query, quote_via=quote),
                encoded=True,
            )
        return self._base.with_path(path, encoded=True)

    def _get_data(
        self,
        path: str,
        cls: type[T],
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Coroutine[Any, Any, T]:
        """GET ``path`` and structure the envelope's ``data`` as ``cls``."""
        return self._call("GET", path, data_reader(cls), params, timeout, retry)

    def _get_envelope(
        self,
        path: str,
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Coroutine[Any, Any, Mapping[str, Any]]:
        """GET ``path`` and return the whole checked envelope (for paged lists)."""
        return self._call("GET", path, _read_envelope, params, timeout, retry)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> RawResponse:
        """Send ``method path`` through the pipeline and return the 2xx answer as it is."""
        return await self._call(method, path, _as_is, params, timeout, retry)

    def _call(
        self,
        method: str,
        path: str,
        read: Callable[[RawResponse], T],
        params: Mapping[str, str | None] | None,
        timeout: float | Timeout | None,
        retry: RetryPolicy | None,
    ) -> Coroutine[Any, Any, T]:
        """Send ``method path`` through limiter, retries and transport; ``read`` the 2xx answer.

        A plain function that settles the call's options and returns its first
        attempt: a call that succeeds at once costs a single coroutine of ours.

        Raises:
            SendKitError: the final error (with ``attempts`` set), when awaited.
        """
        if self.closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        url = self._url(path, params)
        limits = as_timeout(timeout, self.timeout)
        policy = retry if retry is not None else self.retry
        return self._attempt(method, url, read, Deadline(policy.deadline), limits.total, policy)

    async def _retry(
        self,
        first_failure: errors.SendKitError,
        policy: RetryPolicy,
        method: str,
        url: URL,
        deadline: Deadline,
        per_attempt: float | None,
    ) -> RawResponse:
        """Attempts after a retryable first failure, in a fresh tenacity loop.

        The loop's first attempt is the failure already seen, so waits, stops
        (max_retries, max_wait, deadline) and logging are tenacity's own.
        """
        retrying = policy.retrying(
            method=method, deadline=deadline, on_retry=self._on_retry, sleep=self._core.sleep
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts == 1:
                        raise first_failure
                    return await self._attempt(method, url, _as_is, deadline, per_attempt, None)
        except errors.SendKitError as exc:
            exc.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def _wait_for_slot(
        self, deadline: Deadline, method: str, url: URL
    ) -> AbstractAsyncContextManager[None]:
        """Enter the budget's ``slot()``, which the caller exits; queuing extends ``deadline``."""
        slot = self._core.limiter.slot()
        queued = time.monotonic()
        await slot.__aenter__()
        # Time queued for a slot or a token does not count against the call.
        waited = time.monotonic() - queued
        deadline.extend(waited)
        if waited >= THROTTLE_LOG_SECONDS:
            logger.info(
                "throttled %.2fs by the rate-limit budget before %s %s", waited, method, url
            )
        return slot

    def _on_retry(self, _: tenacity.RetryCallState) -> None:
        self._core.stats.retries += 1

    def _observe(self, raw: RawResponse, method: str, url: URL) -> None:
        """Count the response and feed its rate-limit hints to the budget."""
        core, stats = self._core, self._core.stats
        stats.by_status[raw.status] = stats.by_status.get(raw.status, 0) + 1
        hints = protocol.rate_limit_hints(raw.headers, status=raw.status)
        if raw.status == 429:
            stats.rate_limited += 1
            logger.info(
                "rate limited (429) on %s %s [request id %s]; server asked to wait %s",
                method,
                url,
                protocol.request_id(raw.headers) or "-",
                "nothing" if hints.retry_after is None else f"{hints.retry_after:.2f}s",
            )
        if hints is protocol.NO_HINTS:
            core.limiter.observe(raw.status)
            return
        core.limiter.observe(
            raw.status,
            limit=hints.limit,
            remaining=hints.remaining,
            reset_after=hints.reset_after,
            window=hints.window,
            retry_after=hints.retry_after,
        )

    async def _attempt(
        self,
        method: str,
        url: URL,
        read: Callable[[RawResponse], T],
        deadline: Deadline,
        per_attempt: float | None,
        policy: RetryPolicy | None,
    ) -> T:
        """One attempt: admitted by the budget, sent, observed, checked, then ``read``.

        The call's first attempt gets its ``policy``: a retryable failure moves on
        to :meth:`_retry`. Attempts made there get None and raise every failure.
        """
        core = self._core
        try:
            # Our own limiter admits a request that needs no wait synchronously (nearly
            # every request of a bulk run); anything else goes through ``slot()``.
            sent_at = core.admit_now() if core.admit_now is not None else None
            slot = None if sent_at is not None else await self._wait_for_slot(deadline, method, url)
            try:
                attempt_timeout = deadline.attempt_timeout(per_attempt, method, url)
                core.stats.requests += 1
                try:
                    raw = await core.transport.request(method, url, timeout=attempt_timeout)
                except errors.APIConnectionError:
                    core.stats.connection_errors += 1
                    raise
                # Still admitted: the limiter corrects `remaining` by what is in flight.
                self._observe(raw, method, url)
            except BaseException as exc:
                if slot is not None:
                    await slot.__aexit__(type(exc), exc, exc.__traceback__)
                elif sent_at is not None:
                    core.release_admitted(sent_at)
                raise
            if slot is not None:
                await slot.__aexit__(None, None, None)
            elif sent_at is not None:
                core.release_admitted(sent_at)
            if not 200 <= raw.status < 300:
                raise protocol.error_from_response(
                    raw.status, raw.headers, raw.body, method=method, url=str(url)
                )
        except errors.SendKitError as exc:
            if policy is None:
                raise
            if not policy.should_retry(exc):
                exc.attempts = 1
                raise
            raw = await self._retry(exc, policy, method, url, deadline, per_attempt)
        return read(raw)
