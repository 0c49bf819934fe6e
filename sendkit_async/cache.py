"""Response caches for ``AsyncSendKit(cache=...)``: what is stored, and the in-memory one.

A cache stores the API's answers as they came over the wire (the 2xx JSON body,
its status and a few headers), never pickles, so any process and any version of
the SDK can read an entry::

    from sendkit_async import AsyncSendKit
    from sendkit_async.cache import MemoryCache

    client = AsyncSendKit(cache=MemoryCache(maxsize=1024, ttl=30))

:class:`MemoryCache` lives in one process; ``sendkit_async.redis_cache.RedisCache``
(the ``redis`` extra) is shared by every process of an app. Any subclass of
:class:`ResponseCache` works: implement :meth:`~ResponseCache.get`,
:meth:`~ResponseCache.set` and (optionally) :meth:`~ResponseCache.aclose` and
:meth:`~ResponseCache.release`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import attrs

from .errors import ConfigurationError

__all__ = ["CachedResponse", "MemoryCache", "ResponseCache"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class CachedResponse:
    """One stored answer: status, the body as received, the headers worth keeping.

    ``age`` is how old the answer was when stored (the server's ``Age`` header), in
    seconds; a cache adds the time it has kept it when it gives the entry back.
    ``fresh_for`` is the age up to which the answer is fresh (None: as long as the
    cache keeps it); an older one is stale, served only while it is revalidated.
    """

    status: int
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=dict)
    age: float = 0.0
    fresh_for: float | None = None


class ResponseCache:
    """What the client needs of a cache: get and set wire answers by key, with a TTL.

    Keys are opaque strings the client builds (a hash of the key and workspace, the
    method, path and query): a cache never sees an API key.

    Attributes:
        ttl: seconds a 2xx answer is served from the cache (a server's
            ``Cache-Control: max-age`` shorter than this wins).
        negative_ttl: seconds a 404 is remembered (a cached 404 raises
            :class:`NotFoundError` again); 0 never caches one.
        stale_while_revalidate: seconds after an answer's freshness ends during
            which it is still served, at once, while one request in the background
            fetches a fresh one (0, the default: never served stale).

    Raises:
        ConfigurationError: a negative (or NaN) ``ttl``, ``negative_ttl`` or
            ``stale_while_revalidate``.
    """

    ttl: float
    negative_ttl: float
    stale_while_revalidate: float

    def __init__(
        self, *, ttl: float = 30.0, negative_ttl: float = 5.0, stale_while_revalidate: float = 0.0
    ) -> None:
        if not (ttl >= 0 and negative_ttl >= 0 and stale_while_revalidate >= 0):
            raise ConfigurationError("ttl, negative_ttl and stale_while_revalidate must be >= 0")
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.stale_while_revalidate = stale_while_revalidate

    async def get(self, key: str) -> tuple[CachedResponse, float] | None:
        """The entry under ``key`` and its age in seconds, or None (missing or expired)."""
        raise NotImplementedError

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> None:
        """Store ``entry`` under ``key`` for ``ttl`` seconds, counted from its ``age``.

        ``ttl`` is how long to keep it: its freshness plus the stale grace window.
        """
        raise NotImplementedError

    async def aclose(self) -> None:  # optional: nothing to close by default
        """Release what the cache holds open (a connection pool). The client never calls it."""

    async def release(self) -> None:  # optional: nothing bound to a loop by default
        """Let go of what the cache holds in the running event loop, which is ending.

        The blocking ``SendKit`` calls it on its private loop when it closes: connections
        made there would be unusable afterwards. The cache stays usable from other loops.
        """


class MemoryCache(ResponseCache):
    """A bounded in-memory cache for one process: least recently used out, entries expire.

    Clients of one event loop may share it; it is not meant for several threads.

    Args:
        maxsize: entries kept at most; the least recently used goes first.
        ttl, negative_ttl, stale_while_revalidate: see :class:`ResponseCache`.
        clock: seconds, monotonic (default ``time.monotonic``); tests pass a fake one.

    Raises:
        ConfigurationError: ``maxsize`` < 1, or a negative TTL.
    """

    def __init__(
        self,
        *,
        maxsize: int = 1024,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        stale_while_revalidate: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            ttl=ttl, negative_ttl=negative_ttl, stale_while_revalidate=stale_while_revalidate
        )
        if maxsize < 1:
            raise ConfigurationError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._clock = clock or time.monotonic
        # key -> (entry, when it was stored, when it expires), oldest use first
        self._entries: OrderedDict[str, tuple[CachedResponse, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> tuple[CachedResponse, float] | None:
        found = self._entries.get(key)
        if found is None:
            return None
        entry, stored, expires = found
        now = self._clock()
        if now >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry, entry.age + (now - stored)

    async def set(self, key: str, entry: CachedResponse, ttl: float) -> None:
        now = self._clock()
        left = ttl - entry.age
        if left <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (entry, now, now + left)
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __repr__(self) -> str:
        return f"<MemoryCache {len(self._entries)}/{self.maxsize} ttl={self.ttl}>"
