"""Single flight: identical concurrent calls share one upstream request.

The shared request runs as its own task; each caller waits for it without being
part of it, and counts itself in and out. A caller that is cancelled (a browser
that went away) leaves the others their request; the last one to leave cancels
it. Every caller gets the one result, or its own copy of the one error.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

from . import errors

__all__ = ["SETTLE_WAIT", "Flights"]

T = TypeVar("T")

SETTLE_WAIT = 5.0
"""Seconds closing a client waits for its shared requests to end, and again after
cancelling those still running."""

logger = logging.getLogger("sendkit_async")


class _Flight:
    __slots__ = ("background", "task", "waiters")

    def __init__(self, task: asyncio.Task[Any], background: bool = False) -> None:
        self.task = task
        self.waiters = 0
        self.background = background  # a refresh nobody asked for: callers never cancel it


class Flights:
    """The shared requests of one client (its :class:`Core`), by key."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._flights

    async def join(self, key: Hashable, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the flight under ``key``, started with ``start()`` if there is none.

        Raises:
            SendKitError: a copy of the shared request's error (same class and values).
            ClientClosedError: the client was closed while the request was shared.
            CancelledError: this caller was cancelled (the request goes on for the
                others; the last caller's cancellation cancels it).
        """
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(start()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda task: self._landed(key, flight, task))
        task: asyncio.Task[T] = flight.task
        flight.waiters += 1
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.background and not task.done():
                task.cancel()
                if self._flights.get(key) is flight:
                    del self._flights[key]  # a new caller starts afresh, not into the cancel
                # As for a call of its own: once the caller's cancellation is through, the
                # request has left the rate limiter and the pool (a step or two). Bounded:
                # a user's cache that swallowed the cancellation must not hold us.
                await asyncio.wait((task,), timeout=SETTLE_WAIT)
            raise
        flight.waiters -= 1
        if task.cancelled():
            # Only ``cancel_all`` cancels a flight someone still waits for.
            raise errors.ClientClosedError("the client was closed while the call waited")
        exc = task.exception()
        if exc is None:
            return task.result()
        if isinstance(exc, errors.SendKitError):
            # Each caller raises its own copy: one instance raised in many tasks
            # would gather all their tracebacks.
            own = copy.copy(exc)
            own.__cause__ = exc.__cause__
            own.__suppress_context__ = exc.__suppress_context__
            raise own.with_traceback(exc.__traceback__)
        raise exc

    def launch(self, key: Hashable, start: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
        """Start a background flight under ``key`` unless one is in progress; True if started.

        Its result goes nowhere (its own code stores it); its error is retrieved here.
        """
        if key in self._flights:
            return False
        flight = _Flight(asyncio.ensure_future(start()), background=True)
        self._flights[key] = flight
        flight.task.add_done_callback(lambda task: self._landed(key, flight, task))
        return True

    def _landed(self, key: Hashable, flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not task.cancelled():
            exc = task.exception()  # retrieved even if every caller left in the same step
            if exc is not None and flight.background:
                logger.info("a background refresh failed (%s)", type(exc).__name__)

    async def aclose(self, *, cancel: bool) -> None:
        """End the shared requests of the running loop (the client is closing).

        With ``cancel`` (a borrowed pool keeps its requests) they are cancelled at once.
        Otherwise they have :data:`SETTLE_WAIT` seconds to end as the closed pool ends
        them (their errors keep ``attempts``); any still running then (a cache that
        hangs in ``set``) is cancelled. Waits at most twice :data:`SETTLE_WAIT`.
        """
        if not cancel:
            running = self._running()
            if not running:
                return
            _, pending = await asyncio.wait(running, timeout=SETTLE_WAIT)
            if not pending:
                return
        shared = self.cancel_all()
        if shared:
            await asyncio.wait(shared, timeout=SETTLE_WAIT)

    def _running(self) -> list[asyncio.Task[Any]]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a coroutine closed outside its loop (collected): no waiting
            return []
        return [
            flight.task
            for flight in self._flights.values()
            if flight.task.get_loop() is loop and not flight.task.done()
        ]

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        """Cancel every shared request (the client is closing); those of the running loop.

        Their callers get :class:`ClientClosedError`.
        """
        flights, self._flights = self._flights, {}
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        mine = []
        for flight in flights.values():
            loop = flight.task.get_loop()
            if loop is running:
                flight.task.cancel()
                mine.append(flight.task)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(flight.task.cancel)
        return mine
