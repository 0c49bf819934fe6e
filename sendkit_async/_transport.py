"""The only module that touches aiohttp.

It sends one request and returns status, headers and the whole body; every
aiohttp, OS and timeout exception is mapped to our tree in one place
(:func:`map_exceptions`, after httpx's ``map_httpcore_exceptions``). Our
errors are built from the exception's class and the URL, never from
aiohttp's text, whose repr can include the request headers and so the key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

import aiohttp
import attrs
from yarl import URL

from . import errors

__all__ = ["RawResponse", "Transport", "map_exceptions"]


@attrs.frozen
class RawResponse:
    """One HTTP answer, fully read."""

    status: int
    headers: Mapping[str, str]
    body: bytes


# Every aiohttp client exception derives from ClientError except the websocket
# message-type error (a TypeError, absent before aiohttp 3.11).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    OSError,
    ValueError,
    *((aiohttp.WSMessageTypeError,) if hasattr(aiohttp, "WSMessageTypeError") else ()),
)


@contextlib.contextmanager
def map_exceptions(method: str, url: str) -> Iterator[None]:
    """Turn every exception aiohttp or the OS raises during a request into ours."""
    try:
        yield
    except errors.SendKitError:
        raise
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError):
        raise errors.APITimeoutError(
            f"timed out during {method} {url}", method=method, url=url
        ) from None
    except aiohttp.InvalidURL:
        raise errors.ConfigurationError(f"invalid URL: {url}") from None
    except _CONNECTION_ERRORS as exc:
        detail = type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            detail += f": {exc.strerror}"
        raise errors.APIConnectionError(
            f"connection error during {method} {url} ({detail})", method=method, url=url
        ) from None


class Transport:
    """Sends requests on an aiohttp session it owns or borrows.

    An owned session is created lazily inside the running loop on first use
    and closed by :meth:`aclose`; a borrowed one is never closed here.
    """

    __slots__ = ("_closed", "_connect_timeout", "_limit", "_owns", "_session")

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 100,
        connect_timeout: float | None = 10.0,
    ) -> None:
        self._session = session
        self._owns = session is None
        self._limit = connection_limit
        self._connect_timeout = connect_timeout
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise errors.ClientClosedError("the client is closed; create a new AsyncSendKit")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
            # Cookies are never part of the API; ignoring them keeps calls independent.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False
            )
        elif self._session.closed:
            raise errors.ClientClosedError("the aiohttp session given to the client is closed")
        return self._session

    async def request(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> RawResponse:
        """Send one request and read the whole body within ``timeout`` seconds.

        Redirects are not followed: a 3xx comes back as it is.

        Raises:
            APIConnectionError, APITimeoutError, ClientClosedError, ConfigurationError.
        """
        session = self._get_session()
        client_timeout = aiohttp.ClientTimeout(
            total=timeout, connect=self._connect_timeout, sock_connect=self._connect_timeout
        )
        with map_exceptions(method, str(url)):
            async with session.request(
                method, url, headers=headers, timeout=client_timeout, allow_redirects=False
            ) as response:
                body = await response.read()
                return RawResponse(response.status, dict(response.headers), body)

    async def aclose(self) -> None:
        """Close the session if this transport created it. Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns and not session.closed:
            await session.close()
