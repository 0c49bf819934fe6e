"""The client's calls into the request pipeline: what the resources reach of a client.

:class:`ClientCalls` is the base of :class:`~._client.AsyncSendKit`. It turns a
resource call (a path, query parameters, a model type and per-call options) into a
pipeline call: it builds the URL, settles the options once (:meth:`~ClientCalls._caller`:
a function of the path, so a bulk run's ids each cost one coroutine) and, for a
single GET, picks the lane (:func:`single`: cache and single flight in
:mod:`._caching`, or the pipeline alone). The client sets the state it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from yarl import URL

from . import _caching as caching
from . import _pipeline as pipeline
from . import errors
from ._config import Timeout, as_timeout
from ._core import Core
from ._retry import Deadline, RetryPolicy
from ._transport import RawResponse
from .cache import ResponseCache

__all__ = ["ClientCalls", "single"]

T = TypeVar("T")


class ClientCalls:
    """The calls a client sends through the pipeline; the base of :class:`AsyncSendKit`.

    It holds no state of its own: :class:`AsyncSendKit` sets every attribute
    declared here (its ``with_options`` views copy them, then change some).
    """

    _base: URL
    """The base URL, parsed once."""
    _path_prefix: str
    """The base URL's path (no trailing slash), put before every request's path."""
    _core: Core
    """Transport, budget and counters, shared with the ``with_options`` views."""
    timeout: Timeout
    retry: RetryPolicy
    _cache: ResponseCache | None
    """The cache of single GETs (None: not cached)."""
    _coalesce: bool
    """Whether identical concurrent single GETs share one request."""
    _scope: str
    """The cache scope of (base URL, key, workspace): :func:`._caching.cache_scope`."""

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
        cache: bool = True,
        max_age: float | None = None,
    ) -> Coroutine[Any, Any, T]:
        """GET ``path`` and structure the envelope's ``data`` as ``cls`` (a single call).

        Cached (unless ``cache`` is false, or the answer is older than ``max_age``)
        and coalesced as the client's options say.
        """
        read = pipeline.data_reader(cls)
        return single(self, path, read, params, timeout, retry, cache, max_age)

    def _data_getter(
        self,
        cls: type[T],
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[str], Coroutine[Any, Any, T]]:
        """:meth:`_get_data` for many paths with the same options, settled once."""
        return self._caller("GET", pipeline.data_reader(cls), params, timeout, retry)

    def _get_envelope(
        self,
        path: str,
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Coroutine[Any, Any, Mapping[str, Any]]:
        """GET ``path`` and return the whole checked envelope (for paged lists; never cached)."""
        return single(self, path, pipeline.read_envelope, params, timeout, retry, False, None)

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
        return await self._call(method, path, pipeline.as_is, params, timeout, retry)

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

        Raises:
            SendKitError: the final error (with ``attempts`` set), when awaited.
        """
        return self._caller(method, read, params, timeout, retry)(path)

    def _caller(
        self,
        method: str,
        read: Callable[[RawResponse], T],
        params: Mapping[str, str | None] | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[str], Coroutine[Any, Any, T]]:
        """:meth:`_call` with its options settled now: a function of the path.

        The function checks nothing but the client being open and returns the
        call's first attempt, so one call, or each of a bulk run's million,
        costs a single coroutine of ours when it succeeds at once.
        """
        limits = as_timeout(timeout, self.timeout)
        policy = retry if retry is not None else self.retry
        core, url_for, per_attempt, seconds = self._core, self._url, limits.total, policy.deadline
        max_gate, max_queue = policy.max_wait, policy.max_queue

        def call(path: str) -> Coroutine[Any, Any, T]:
            if core.transport.closed:
                raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
            url = url_for(path, params)
            deadline = Deadline(seconds, clock=core.clock, max_gate=max_gate, max_queue=max_queue)
            return pipeline.attempt(core, method, url, read, deadline, per_attempt, policy)

        return call


def single(
    client: ClientCalls,
    path: str,
    read: Callable[[RawResponse], T],
    params: Mapping[str, str | None] | None,
    timeout: float | Timeout | None,
    retry: RetryPolicy | None,
    cache: bool,
    max_age: float | None,
) -> Coroutine[Any, Any, T]:
    """A single GET of ``client``: cache -> single flight -> pipeline, each as the options say.

    Raises:
        ClientClosedError: the client is closed (even a cached answer is refused).
        InvalidRequestError: a negative ``max_age``.
    """
    if client._core.transport.closed:  # before the cache: a closed client answers nothing
        raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
    if max_age is not None and not max_age >= 0:
        raise errors.InvalidRequestError(f"max_age must be >= 0 seconds, got {max_age!r}")
    store = client._cache if cache else None
    if store is None and not client._coalesce:
        return client._call("GET", path, read, params, timeout, retry)
    call = client._caller("GET", pipeline.as_is, params, timeout, retry)
    options = (as_timeout(timeout, client.timeout), retry if retry is not None else client.retry)
    return caching.get(
        client._core,
        client._url(path, params),
        read,
        lambda: call(path),
        store=store,
        scope=client._scope,
        coalesce=client._coalesce,
        max_age=max_age,
        options=options,
    )
