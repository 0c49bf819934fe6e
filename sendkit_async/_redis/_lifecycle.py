"""``RedisRateLimiter``'s lifecycle: the event loop it is bound to, release and close.

A Redis connection (and an asyncio lock or future) belongs to the event loop that
made it. The limiter binds its loop-bound state to the loop of its first call and,
once that loop has ended or been released, to the next one's: so one limiter
serves one ``SendKit`` (a private loop each) after another, or successive
``asyncio.run()`` calls. ``release()`` (awaited by ``AsyncSendKit.aclose()`` on its
own loop) ends this loop's Redis calls and disconnects the idle connections, which
would otherwise outlive their loop. Using one limiter from two loops at once is an
error (:class:`ClientClosedError`): give each running loop its own limiter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .. import errors
from .._priority import Priority
from .._ratelimit import RateLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("sendkit_async")

CLOSE_WAIT = 2.0
"""Seconds ``release()``/``aclose()`` wait for Redis calls in flight (admissions, the
background push) before cancelling them; a cancelled call ends at once (redis-py
drops its connection), so either returns within about twice this."""


class _Lifecycle:
    """Mixin of `RedisRateLimiter`: loop binding, release and close.

    ``RedisRateLimiter.__init__`` sets every attribute declared here.
    """

    _redis: Redis
    _owns_redis: bool
    _closed: bool
    _loop: asyncio.AbstractEventLoop | None
    _calls: set[asyncio.Future[Any]]  # Redis round trips of admissions, in flight
    _turns: dict[Priority, asyncio.Lock]  # per lane: the one waiter asking Redis
    _flusher: asyncio.Task[None] | None
    _local: RateLimiter
    _fallback: RateLimiter
    _shared: dict[str, float | None]
    _rate: float | None
    _burst: float | None
    _max: int
    _share: float

    def _bind(self) -> None:
        """Bind the loop-bound state to the running loop (a no-op while it is the same).

        Raises:
            ClientClosedError: the limiter is still in use on another running loop.
        """
        loop = asyncio.get_running_loop()
        old = self._loop
        if old is loop:
            return
        if old is None:  # first use: whatever it made (direct script calls) is this loop's
            self._loop = loop
            return
        busy = self._calls or self._local.snapshot().in_flight or self._flushing()
        if old.is_running() and not old.is_closed() and (busy or self._connected()):
            raise errors.ClientClosedError(
                "this RedisRateLimiter is in use on another running event loop: give each "
                "loop (each SendKit) its own, or close the other client (or release() the "
                "limiter on its loop) first"
            )
        self._rebind(loop)

    def _connected(self) -> list[Any]:
        pool = self._redis.connection_pool
        held = [*getattr(pool, "_available_connections", ()), *pool._in_use_connections]
        return [c for c in held if getattr(c, "is_connected", False)]

    def _flushing(self) -> bool:
        return self._flusher is not None and not self._flusher.done()

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        pool = self._redis.connection_pool
        stale = self._connected()
        if stale:  # connected on a loop that ended without release(): they cannot be closed
            logger.warning(
                "shared rate limit: %d Redis connection(s) of an ended event loop dropped; "
                "call 'await limiter.release()' on a loop before it ends (clients do at close)",
                len(stale),
            )
            pool.reset()  # type: ignore[no-untyped-call]
        if hasattr(pool, "_lock") and not pool._lock.locked():
            pool._lock = asyncio.Lock()  # redis-py's pool lock binds to a loop on first wait
        self._calls = set()
        self._turns = {lane: asyncio.Lock() for lane in self._turns}  # bound to the old loop
        if self._flushing():  # a push task of a loop that ended: its work is lost
            self._flusher = None
        # The per-process cap's asyncio primitives belong to the old loop too; nothing
        # waits in it (checked above), so a new one loses only its first-call probe.
        self._local = RateLimiter(max_concurrency=self._max, background_share=self._share)
        self._fallback = RateLimiter(
            max_concurrency=self._max,
            rate=self._shared.get("rate") or self._rate,
            burst=self._shared.get("burst") or self._burst,
            background_share=self._share,
        )
        self._loop = loop

    async def _drain(self) -> None:
        """Wait (at most ``CLOSE_WAIT``) for this loop's Redis calls; cancel the rest."""
        pending: set[asyncio.Future[Any]] = set(self._calls)
        if self._flusher is not None and not self._flusher.done():
            pending.add(self._flusher)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=CLOSE_WAIT)
        for call in late:
            call.cancel()
        if late:  # a cancelled redis-py call drops its connection and ends at once
            await asyncio.wait(late, timeout=CLOSE_WAIT)

    async def release(self) -> None:
        """End this event loop's use of Redis; the limiter stays open for the next loop.

        Waits for the Redis calls in flight (admissions and the background push of
        observations) at most ``CLOSE_WAIT`` (2 s) each, cancels those still running,
        then disconnects the idle connections of the pool (they belong to this loop).
        A later call, on this loop or another, reconnects. ``AsyncSendKit.aclose()``
        (so also ``SendKit.close()``) calls it on the client's loop. Never raises for
        a Redis failure (logged at INFO).
        """
        if self._loop is not asyncio.get_running_loop():
            return  # nothing of ours lives on this loop
        await self._drain()
        try:
            await self._redis.connection_pool.disconnect(inuse_connections=False)
        except Exception as exc:  # a socket error while closing: nothing to keep
            logger.info("shared rate limit: disconnecting from Redis failed (%s)", exc)

    async def aclose(self) -> None:
        """Close: later and waiting admissions end with :class:`ClientClosedError`.

        Redis calls in flight (admissions waiting for an answer, the background push
        of observations) are awaited at most ``CLOSE_WAIT`` (2 s), then cancelled;
        the admissions among them end with :class:`ClientClosedError`. Then the
        Redis pool is closed if :meth:`from_url` made it (yours is left open, its
        idle connections disconnected). Idempotent; may run on any loop once the one
        in use has ended.

        Raises:
            ClientClosedError: the limiter is still in use on another running loop.
        """
        if self._closed:
            return
        self._bind()
        self._closed = True
        await self._drain()
        if self._owns_redis:
            await self._redis.aclose()
        else:
            await self.release()
