"""A single GET through cache -> single flight -> pipeline (bulk runs take the pipeline alone).

The client's entry (:func:`._calls.single`) checks the call and picks the lane (the
pipeline alone when neither cache nor coalescing applies); :func:`get` runs the rest.

The cache holds the wire answer (2xx body as received, status, a few headers) under
a key made of a hash of (base URL, API key, workspace), the method, path and query;
a hit costs no request and no rate-limit token. A miss joins the flight of an
identical call in progress, or starts one; the flight stores what it got. A cache
that fails (Redis down, a bug in a user's cache) is a miss and a warning, never a
failed call.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Coroutine, Hashable, Mapping
from typing import Any, TypeVar

from yarl import URL

from . import _protocol as protocol
from . import errors
from ._core import Core
from ._transport import RawResponse
from .cache import CachedResponse, ResponseCache

__all__ = ["cache_scope", "checked_cache", "freshness", "get"]

T = TypeVar("T")

logger = logging.getLogger("sendkit_async")

KEPT_HEADERS = ("content-type", *protocol.REQUEST_ID_HEADERS)
"""The headers a cached answer keeps (the errors a cached 404 raises show the request id)."""

_DIRECTIVE = re.compile(r"\s*([A-Za-z-]+)\s*(?:=\s*\"?([^\",]*)\"?)?\s*(?:,|$)")


def cache_scope(api_key: str, workspace_id: str | None, base_url: str) -> str:
    """A short stable id of (base URL, key, workspace): 24 hex digits of sha256, never the key."""
    text = f"{base_url}\n{api_key}\n{workspace_id or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_key(scope: str, method: str, url: URL) -> str:
    """The cache key of a call: scope, method, path and query (the host is in the scope)."""
    return f"{scope}:{method}:{url.raw_path_qs}"


def freshness(headers: Mapping[str, str], ttl: float) -> float:
    """Seconds an answer may be served from the cache: ``ttl`` unless the server says less.

    ``Cache-Control: no-store`` or ``no-cache`` (we never revalidate) give 0, so the
    answer is not stored; ``max-age=N`` below ``ttl`` gives N. ``private`` is fine:
    the cache belongs to one user of the API.
    """
    value = _header(headers, "cache-control")
    if not value:
        return ttl
    for match in _DIRECTIVE.finditer(value):
        name = match.group(1).lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                ttl = min(ttl, max(0.0, float(match.group(2) or "")))
            except ValueError:
                return 0.0  # a garbled max-age: the safe reading is "do not cache"
    return ttl


def header_age(headers: Mapping[str, str]) -> float:
    """The server's ``Age`` header in seconds (0 when absent or garbled)."""
    value = _header(headers, "age")
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name in KEPT_HEADERS if (value := _header(headers, name)) is not None}


def checked_cache(cache: object) -> ResponseCache | None:
    """``cache`` if it is a :class:`ResponseCache` (or None).

    Raises:
        ConfigurationError: anything else.
    """
    if cache is None or isinstance(cache, ResponseCache):
        return cache
    raise errors.ConfigurationError(
        "cache must be a sendkit_async.cache.ResponseCache (MemoryCache, RedisCache)"
    )


async def get(
    core: Core,
    url: URL,
    read: Callable[[RawResponse], T],
    start: Callable[[], Coroutine[Any, Any, RawResponse]],
    *,
    store: ResponseCache | None,
    scope: str,
    coalesce: bool,
    max_age: float | None,
    options: Hashable,
) -> T:
    """``read`` the answer to ``GET url``: from ``store``, a shared flight, or ``start()``.

    ``options`` (timeout, retry policy) and ``store`` are part of the flight's key: calls
    with other options, or another cache, do not share a request.

    Raises:
        NotFoundError: the answer is a 404 (perhaps remembered by the cache).
        SendKitError: whatever the pipeline or ``read`` raises.
    """
    key = None if store is None else cache_key(scope, "GET", url)

    async def fetch() -> T:
        try:
            raw = await start()
        except errors.NotFoundError as exc:
            if store is not None and key is not None and store.negative_ttl > 0:
                entry = CachedResponse(404, exc.body.encode(), _kept(exc.headers))
                await _save(store, key, entry, store.negative_ttl)
            raise
        result = read(raw)  # an answer we cannot read is not stored
        if store is not None and key is not None:
            ttl = freshness(raw.headers, store.ttl)
            if ttl > 0:
                entry = CachedResponse(
                    raw.status, raw.body, _kept(raw.headers), header_age(raw.headers), ttl
                )
                await _save(store, key, entry, ttl + store.stale_while_revalidate)
        return result

    # The cache is part of the key too (by identity: the fetch keeps it alive): a view
    # over another cache sharing this request would leave its own cache unfilled.
    flight = (url, read, options, None if store is None else id(store))
    if store is not None and key is not None:
        hit = await _lookup(store, key)
        if hit is not None and _usable(hit, max_age, store.stale_while_revalidate):
            entry, age = hit
            if entry.fresh_for is not None and age >= entry.fresh_for:
                # Stale, within the grace window: served now, refreshed by one request
                # in the background (unless one is in progress already).
                core.flights.launch(flight, fetch)
            if entry.status == 404:
                core.stats.cache_hits += 1
                error = protocol.error_from_response(
                    404, entry.headers, entry.body, method="GET", url=str(url)
                )
                error.attempts = 0
                raise error
            try:
                result = read(RawResponse(entry.status, entry.headers, entry.body))
            except errors.ResponseValidationError:
                logger.warning("response cache gave an unreadable entry: a miss")
            else:
                core.stats.cache_hits += 1
                return result

    if not coalesce:
        return await fetch()
    if flight in core.flights:
        core.stats.coalesced += 1
    return await core.flights.join(flight, fetch)


def _usable(hit: tuple[CachedResponse, float], max_age: float | None, grace: float) -> bool:
    """Young enough for the caller, and fresh or within the grace window.

    The cache's own expiry should see to the second part; a shared cache whose
    expiry runs on other clocks (Redis, other machines) may be a little late.
    """
    entry, age = hit
    if max_age is not None and age > max_age:
        return False
    return entry.fresh_for is None or age < entry.fresh_for + grace


async def _lookup(store: ResponseCache, key: str) -> tuple[CachedResponse, float] | None:
    try:
        return await store.get(key)
    except Exception as exc:
        logger.warning("response cache failed to read (%s): a miss", type(exc).__name__)
        return None


async def _save(store: ResponseCache, key: str, entry: CachedResponse, ttl: float) -> None:
    try:
        await store.set(key, entry, ttl)
    except Exception as exc:
        logger.warning("response cache failed to store (%s): not cached", type(exc).__name__)
