"""The only module that touches aiohttp.

It sends one request and returns status, headers and the whole body; every
aiohttp, OS and timeout exception is mapped to our tree in one place
(:func:`map_exceptions`, after httpx's ``map_httpcore_exceptions``). Our
errors are built from the exception's class and the URL, never from
aiohttp's text, whose repr can include the request headers and so the key.
A server that echoes the key in an error answer gets it masked here
(:data:`MASK`), before any error is built from that answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import errors

__all__ = ["MASK", "RawResponse", "Transport", "map_exceptions", "translate"]

MASK = "sk_***"
"""What the key becomes wherever an error answer (body or header value) echoes it."""

_SECRET_MIN = 8  # a shorter "key" would mask ordinary words; no real key is that short


class RawResponse:
    """One HTTP answer, fully read (headers case-insensitive, as aiohttp gives them)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<RawResponse {self.status}, {len(self.body)} bytes>"


# Every aiohttp client exception derives from ClientError except the websocket
# message-type error (a TypeError, absent before aiohttp 3.11).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    OSError,
    *((aiohttp.WSMessageTypeError,) if hasattr(aiohttp, "WSMessageTypeError") else ()),
)


def translate(exc: BaseException, method: str, url: str) -> errors.SendKitError | None:
    """Our error for an exception aiohttp or the OS raised; None for anything else.

    Ours pass through unchanged; ``CancelledError`` and programming errors are not ours
    to translate (None). Only failures another attempt could cure become
    :class:`APIConnectionError` (retried): a request aiohttp refuses to build
    (``ValueError``, e.g. a control character in a header) is an
    :class:`InvalidRequestError`, and an answer it cannot parse (too many or too long
    headers, a broken status line) a :class:`ResponseValidationError`; the same
    request would fail the same way again.
    """
    if isinstance(exc, errors.SendKitError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return errors.APITimeoutError(f"timed out during {method} {url}", method=method, url=url)
    if isinstance(exc, aiohttp.InvalidURL):
        return errors.ConfigurationError(f"invalid URL: {url}")
    if isinstance(exc, aiohttp.ClientResponseError):
        # With raise_for_status=False and no redirects followed, aiohttp raises this
        # only when the status line or headers cannot be parsed. Its text is not
        # quoted: the request info in it carries our headers.
        cause = exc.__cause__
        detail = type(cause.__cause__ or cause).__name__ if cause else type(exc).__name__
        return errors.ResponseValidationError(
            f"malformed HTTP response to {method} {url} ({detail})",
            errors=(detail,),
            status=0,
        )
    if isinstance(exc, ValueError) and not isinstance(exc, _CONNECTION_ERRORS):
        return errors.InvalidRequestError(
            f"request refused before sending: {method} {url} ({type(exc).__name__}; "
            "a header or URL holds a character HTTP does not allow)"
        )
    if isinstance(exc, _CONNECTION_ERRORS):
        detail = type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            detail += f": {exc.strerror}"
        return errors.APIConnectionError(
            f"connection error during {method} {url} ({detail})", method=method, url=url
        )
    return None


@contextlib.contextmanager
def map_exceptions(method: str, url: str) -> Iterator[None]:
    """Turn every exception aiohttp or the OS raises inside the block into ours."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, method, url)
        if mapped is None or mapped is exc:
            raise
        raise mapped from None


class Transport:
    """Sends requests on an aiohttp session it owns or borrows.

    An owned session is created lazily inside the running loop on first use
    and closed by :meth:`aclose`; a borrowed one is never closed here.
    """

    __slots__ = (
        "_closed",
        "_connect_timeout",
        "_headers",
        "_last_timeout",
        "_limit",
        "_loop",
        "_owns",
        "_secrets",
        "_session",
    )
    _last_timeout: tuple[float | None, aiohttp.ClientTimeout]

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 100,
        connect_timeout: float | None = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._headers = dict(headers or {})
        self._owns = session is None
        self._limit = connection_limit
        self._connect_timeout = connect_timeout
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # our session's
        self._last_timeout = (None, self._client_timeout(None))
        self._secrets = _secrets_in(self._headers)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owns_session(self) -> bool:
        """True unless the session was given to us (then we never close it)."""
        return self._owns

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        if self._session is None:
            # Every request goes to the one base URL's host: a per-host limit would
            # only add bookkeeping to each request.
            connector = aiohttp.TCPConnector(limit=self._limit)
            self._loop = asyncio.get_running_loop()
            # Cookies are never part of the API; ignoring them keeps calls independent.
            # Our headers are the session's defaults: aiohttp need not merge them per request.
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
        elif self._session.closed:
            raise errors.ClientClosedError("the aiohttp session given to the client is closed")
        return self._session

    async def request(
        self,
        method: str,
        url: URL,
        *,
        timeout: float | None,
    ) -> RawResponse:
        """Send one request and read the whole body within ``timeout`` seconds.

        Redirects are not followed: a 3xx comes back as it is.

        Raises:
            APIConnectionError, APITimeoutError, ClientClosedError, ConfigurationError,
            InvalidRequestError (refused before sending), ResponseValidationError
            (an answer that is not parseable HTTP).
        """
        session = self._get_session()
        if timeout != self._last_timeout[0]:
            # Calls nearly always share one per-attempt timeout: build its object once.
            self._last_timeout = (timeout, self._client_timeout(timeout))
        try:
            # Awaited, not entered: ``async with`` would cost four more coroutines.
            # read() gives the connection back at the end of the body and closes it
            # if the body fails; release() in the finally guards anything else.
            response = await session.request(
                method,
                url,
                headers=None if self._owns else self._headers,
                timeout=self._last_timeout[1],
                allow_redirects=False,
            )
            try:
                body = await response.read()
            finally:
                response.release()
            if not 200 <= response.status < 300 and self._secrets:
                return self._masked(response.status, response.headers, body)
            return RawResponse(response.status, response.headers, body)
        except Exception as exc:
            mapped = translate(exc, method, str(url))
            if mapped is None or mapped is exc:
                raise
            raise mapped from None

    def masked(self, raw: RawResponse) -> RawResponse:
        """``raw`` with every echo of the key masked, whatever its status (for raw views)."""
        return self._masked(raw.status, raw.headers, raw.body) if self._secrets else raw

    def _masked(self, status: int, headers: Mapping[str, str], body: bytes) -> RawResponse:
        """An error answer with every echo of the key replaced by :data:`MASK`.

        Errors are built from the body and headers, and their text, ``body``
        and ``headers`` must never show the key. Success bodies are left alone:
        they are the data asked for, and searching them would cost every call.
        """
        for secret in self._secrets:
            body = body.replace(secret.encode(), MASK.encode())
        if any(secret in value for value in headers.values() for secret in self._secrets):
            masked: CIMultiDict[str] = CIMultiDict()
            for name, value in headers.items():
                for secret in self._secrets:
                    value = value.replace(secret, MASK)
                masked.add(name, value)
            headers = CIMultiDictProxy(masked)
        return RawResponse(status, headers, body)

    def _client_timeout(self, total: float | None) -> aiohttp.ClientTimeout:
        # sock_connect bounds opening a new connection (TCP and TLS); aiohttp's
        # `connect` would also time the wait for a pooled one, at the price of a
        # timer per request, while `total` bounds that wait anyway.
        return aiohttp.ClientTimeout(total=total, sock_connect=self._connect_timeout)

    async def aclose(self) -> None:
        """Close the session if this transport created it. Safe to call twice.

        Requests in flight on it end with a connection error. A session of another,
        still running event loop is closed in that loop.
        """
        self._closed = True
        session, self._session = self._session, None
        if session is None or not self._owns or session.closed:
            return
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop() or loop.is_closed():
            await session.close()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))


def _secrets_in(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials among the request headers: the key (and a bearer token)."""
    found: list[str] = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "authorization":
            value = value.partition(" ")[2].strip() or value
        elif lowered != "x-api-key":
            continue
        if len(value) >= _SECRET_MIN and value not in found:
            found.append(value)
    # The longest first: a key that contains another is masked whole.
    return tuple(sorted(found, key=len, reverse=True))
