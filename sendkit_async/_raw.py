"""Raw responses: ``client.with_raw_response``, the HTTP answer beside the parsed model.

``await client.with_raw_response.analytics.campaign(id)`` makes the very call
``client.analytics.campaign(id)`` makes (one request, same retries, same
errors) and returns an :class:`APIResponse` holding the answer it was parsed
from: status, headers, request id, rate-limit hints and the wire JSON.

How, at no cost to ordinary calls: each raw call runs the resource method on a
throwaway copy of the client (as ``with_options()`` makes) whose ``_caller``
wraps the call's reader, so the 2xx answer the pipeline hands to it is kept
too. The copy counts its own attempts (as a bulk run does). Plain calls never
see any of it. A raw call always sends its own request: it neither reads nor fills
the response cache, and never shares an identical call's request.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from multidict import CIMultiDict, CIMultiDictProxy

from . import _protocol as protocol
from . import errors
from ._core import ClientStats
from ._hints import RateLimitHints
from ._runstats import counting_core
from ._transport import RawResponse

if TYPE_CHECKING:
    from ._client import AsyncSendKit
    from ._config import Timeout
    from ._retry import RetryPolicy

__all__ = ["APIResponse", "AsyncSendKitWithRawResponse"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class APIResponse(Generic[R]):
    """One HTTP answer of the API and the model parsed from it.

    Returned by the methods of ``client.with_raw_response``. Only 2xx answers
    become an ``APIResponse``: any other status raises the same
    :class:`APIStatusError` the plain call raises (which carries the status,
    headers, request id and body itself).

    Attributes:
        method: the request's method (``"GET"``).
        url: the URL requested (the key is never in it: it travels in headers).
        attempts: HTTP attempts the call made, retries included (1 when the
            first one succeeded).
        elapsed: seconds from the call's start to its answer being read, by the
            client's clock; waits for the rate limit and retries included.
        rate_limit: the rate-limit headers of this answer, read as the client
            reads them (seconds from when it arrived); all None without any.
    """

    __slots__ = (
        "_body", "_headers", "_parsed", "_status", "attempts", "elapsed", "method", "rate_limit",
        "url",
    )  # fmt: skip

    def __init__(
        self,
        raw: RawResponse,
        parsed: R,
        *,
        method: str,
        url: str,
        attempts: int,
        elapsed: float,
        rate_limit: RateLimitHints,
    ) -> None:
        headers = raw.headers
        if not isinstance(headers, CIMultiDictProxy):
            headers = CIMultiDictProxy(CIMultiDict(headers))
        self._headers: CIMultiDictProxy[str] = headers
        self._status = raw.status
        self._body = raw.body
        self._parsed = parsed
        self.method = method
        self.url = url
        self.attempts = attempts
        self.elapsed = elapsed
        self.rate_limit = rate_limit

    @property
    def status_code(self) -> int:
        """The HTTP status (2xx)."""
        return self._status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers: read-only and case-insensitive (aiohttp's own
        ``CIMultiDictProxy``: ``headers.getall(name)`` gives every value of a repeated one)."""
        return self._headers

    @property
    def request_id(self) -> str | None:
        """The server's request id (``X-Request-Id`` or a usual variant), or None."""
        return protocol.request_id(self._headers)

    @property
    def content(self) -> bytes:
        """The body as it came over the wire."""
        return self._body

    @property
    def text(self) -> str:
        """The body as text (UTF-8; undecodable bytes replaced)."""
        return self._body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The wire body as parsed JSON (a new object each call: wire names, envelope and all).

        Raises:
            ResponseValidationError: the body is not JSON (never for an answer
                that was parsed into a model).
        """
        try:
            return protocol.decode_json(self._body)
        except protocol.UNDECODABLE:
            raise errors.ResponseValidationError(
                "response body is not JSON", errors=("$: not JSON",), status=self.status_code
            ) from None

    def parse(self) -> R:
        """The model the plain call returns (parsed once, when the answer arrived)."""
        return self._parsed

    def __repr__(self) -> str:
        rid = self.request_id
        return (
            f"<APIResponse [{self.status_code}] {self.method} {self.url}"
            f"{f' request_id={rid!r}' if rid else ''} -> {type(self._parsed).__name__}>"
        )


class _Recorder:
    """A throwaway copy of a client whose calls also keep the 2xx answer they read."""

    __slots__ = (
        "_attempts", "_clock", "_counts", "_elapsed", "_mask", "_method", "_raw", "_sent",
        "_started", "_url", "client",
    )  # fmt: skip

    def __init__(self, client: AsyncSendKit) -> None:
        self._counts = ClientStats()
        # Its own request, always: a cached answer or another call's shared request
        # would leave this call with no answer of its own to show.
        clone = client.with_options(cache=False, coalesce=False)
        clone._core = counting_core(client._core, self._counts)
        self._clock = clone._core.clock
        self._mask = clone._core.transport.masked
        self._raw: RawResponse | None = None
        self._method = self._url = ""
        self._sent = self._attempts = 0
        self._started = self._elapsed = 0.0
        # An instance attribute shadows the method for this copy alone.
        vars(clone)["_caller"] = self._caller_of(clone)
        self.client = clone

    def _caller_of(
        self, clone: AsyncSendKit
    ) -> Callable[..., Callable[[str], Coroutine[Any, Any, Any]]]:
        plain = clone._caller
        url_for = clone._url

        def caller(
            method: str,
            read: Callable[[RawResponse], T],
            params: Mapping[str, str | None] | None = None,
            timeout: float | Timeout | None = None,
            retry: RetryPolicy | None = None,
        ) -> Callable[[str], Coroutine[Any, Any, T]]:
            def keep(raw: RawResponse) -> T:
                # The answer the pipeline accepted, after every retry: the key masked
                # wherever a server echoed it, for the model and the raw view alike.
                self._raw = raw = self._mask(raw)
                self._attempts = self._counts.requests - self._sent
                self._elapsed = self._clock() - self._started
                return read(raw)

            call = plain(method, keep, params, timeout, retry)

            def start(path: str) -> Coroutine[Any, Any, T]:
                self._raw = None
                self._method, self._url = method, str(url_for(path, params))
                self._sent = self._counts.requests
                self._started = self._clock()
                return call(path)

            return start

        return caller

    def close(self) -> None:
        """Empty the copy, done with: it refers to its ``_caller`` and its resources,
        which refer back to it, and such cycles would leave every raw call's objects to
        the garbage collector (its pauses cost more than the call)."""
        vars(self.client).clear()

    def response(self, parsed: R) -> APIResponse[R]:
        """The :class:`APIResponse` of the call that just returned ``parsed``."""
        raw = self._raw
        if raw is None:  # pragma: no cover - every resource method reads one answer
            raise errors.UnexpectedError("the raw view saw no response for this call")
        return APIResponse(
            raw,
            parsed,
            method=self._method,
            url=self._url,
            attempts=self._attempts,
            elapsed=self._elapsed,
            rate_limit=protocol.rate_limit_hints(raw.headers, status=raw.status),
        )


def raw_method(
    client: AsyncSendKit, area: str, method: Callable[P, Awaitable[R]]
) -> Callable[P, Coroutine[Any, Any, APIResponse[R]]]:
    """``method`` (a bound resource method of ``client``) returning an :class:`APIResponse`.

    Each call runs ``method`` on a fresh recording copy of ``client``, so concurrent
    raw calls never see each other's answers.

    Raises:
        SendKitError: whatever the plain method raises, unchanged.
    """
    name = method.__name__

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> APIResponse[R]:
        recorder = _Recorder(client)
        same: Callable[P, Awaitable[R]] = getattr(getattr(recorder.client, area), name)
        try:
            return recorder.response(await same(*args, **kwargs))
        finally:
            recorder.close()

    return call


def raw_pages(
    client: AsyncSendKit, area: str, method: Callable[P, AsyncGenerator[R, None]]
) -> Callable[P, AsyncGenerator[APIResponse[R], None]]:
    """``method`` (a bound resource method yielding pages) yielding an :class:`APIResponse`
    per page: each page is one request.

    Raises:
        SendKitError: whatever the plain method raises, unchanged.
    """
    name = method.__name__

    @functools.wraps(method)
    async def pages(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[APIResponse[R], None]:
        recorder = _Recorder(client)
        same: Callable[P, AsyncGenerator[R, None]] = getattr(getattr(recorder.client, area), name)
        try:
            inner = same(*args, **kwargs)
            async with aclosing(inner):
                async for page in inner:
                    yield recorder.response(page)
        finally:
            recorder.close()

    return pages


class RawAnalytics:
    """``client.with_raw_response.analytics``: each method returns an :class:`APIResponse`."""

    __slots__ = ("campaign", "campaign_daily", "daily", "mailboxes", "overview")

    def __init__(self, client: AsyncSendKit) -> None:
        plain = client.analytics
        self.campaign = raw_method(client, "analytics", plain.campaign)
        self.overview = raw_method(client, "analytics", plain.overview)
        self.daily = raw_method(client, "analytics", plain.daily)
        self.campaign_daily = raw_method(client, "analytics", plain.campaign_daily)
        self.mailboxes = raw_method(client, "analytics", plain.mailboxes)


class RawCampaigns:
    """``client.with_raw_response.campaigns``: ``list`` returns an :class:`APIResponse`,
    ``pages`` yields one per page.

    ``iter`` and ``iter_ids`` have no raw form: they yield campaigns, and a
    response belongs to a page, not to a campaign; use ``pages``.
    """

    __slots__ = ("list", "pages")

    def __init__(self, client: AsyncSendKit) -> None:
        plain = client.campaigns
        self.list = raw_method(client, "campaigns", plain.list)
        self.pages = raw_pages(client, "campaigns", plain.pages)


class AsyncSendKitWithRawResponse:
    """The resources of a client, each method returning (or yielding) :class:`APIResponse`."""

    __slots__ = ("analytics", "campaigns")

    def __init__(self, client: AsyncSendKit) -> None:
        self.analytics = RawAnalytics(client)
        self.campaigns = RawCampaigns(client)
