"""A private event loop in a daemon thread, and blocking calls into it.

The synchronous client (:mod:`._sync`) runs one :class:`AsyncSendKit` here: every
call is a coroutine handed to this loop; the calling thread blocks on a
``concurrent.futures.Future`` until the coroutine ends. Nothing here knows the
API: it only moves coroutines and results between threads (like anyio's
``BlockingPortal``, without the dependency).

Interrupts: a ``KeyboardInterrupt`` (or any other exception) that reaches the
calling thread while it waits cancels the coroutine, waits for it to end
(bounded by :data:`CANCEL_WAIT`), then propagates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

from .errors import ClientClosedError, InvalidRequestError

__all__ = ["CANCEL_WAIT", "CLOSE_WAIT", "BlockingIterator", "Portal"]

R = TypeVar("R")
T = TypeVar("T")

CANCEL_WAIT = 10.0
"""Seconds an interrupted call waits for its cancelled coroutine to end."""
CLOSE_WAIT = 10.0
"""Seconds closing waits for the client's own close, then for the thread to end."""
_POLL = 0.25 if sys.platform == "win32" else None  # Windows: a lock wait ignores Ctrl-C
_DONE = object()


class Portal:
    """One event loop running in one daemon thread, until :meth:`stop`."""

    __slots__ = ("_lock", "_loop", "_stopped", "_thread", "thread_id")

    def __init__(self, name: str = "sendkit-sync") -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()  # orders submissions against stop()
        self._stopped = False
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), name=name, daemon=True)
        self._thread.start()
        self.thread_id = self._thread.ident
        if not started.wait(CLOSE_WAIT):  # a thread that never runs: give up, loudly
            self.stop(wait=False)
            raise ClientClosedError("the client's event-loop thread did not start")

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def alive(self) -> bool:
        """True until :meth:`stop` has been called."""
        return not self._stopped

    def _serve(self, started: threading.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        while True:
            try:
                loop.run_forever()
            except BaseException:  # a KeyboardInterrupt raised by user code
                # in a task is that task's result already; the loop must go on serving.
                if not self._stopped:
                    continue
            if self._stopped:
                break
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # ------------------------------------------------------------------ calls

    def run(
        self,
        coro: Coroutine[Any, Any, R],
        events: queue.SimpleQueue[object] | None = None,
        handle: Callable[[Any], object] | None = None,
    ) -> R:
        """Run ``coro`` on the loop and return its result (or raise its exception).

        With ``events``, the waiting thread calls ``handle(event)`` for each event
        the coroutine puts there (e.g. progress), in this thread, until it ends.

        Raises:
            ClientClosedError: the portal is stopped (``coro`` is closed, never run).
            InvalidRequestError: called from the loop's own thread (it would deadlock).
            BaseException: whatever interrupted the wait, after cancelling ``coro``.
        """
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        task: list[asyncio.Task[R]] = []
        loop = self._loop

        def start() -> None:
            if future.set_running_or_notify_cancel():
                task.append(t := loop.create_task(coro))
                t.add_done_callback(lambda _: _settle(future, t, events))
            else:
                coro.close()

        self._submit(start, coro)
        try:
            if events is not None and handle is not None:
                while (event := _get(events)) is not _DONE:
                    handle(event)
            return future.result() if _POLL is None else _poll(future)
        except BaseException:
            if future.done():
                raise  # the coroutine's own result
            # Interrupted while waiting: cancel the coroutine and let it finish unwinding.
            with contextlib.suppress(Exception):  # a loop closed meanwhile ended it already
                loop.call_soon_threadsafe(_cancel_first, task, future)
                concurrent.futures.wait([future], timeout=CANCEL_WAIT)
            raise

    def call(self, fn: Callable[[], R]) -> R:
        """Call the plain function ``fn`` in the loop's thread and return its result.

        Raises:
            ClientClosedError: the portal is stopped.
        """
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def start() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the caller, raised there
                future.set_exception(exc)

        self._submit(start, None)
        return future.result() if _POLL is None else _poll(future)

    def iterate(self, source: AsyncIterator[T]) -> BlockingIterator[T]:
        """``source`` as a plain iterator whose every step runs on the loop."""
        return BlockingIterator(self, source)

    def _submit(self, start: Callable[[], None], coro: Coroutine[Any, Any, Any] | None) -> None:
        if threading.get_ident() == self.thread_id:
            if coro is not None:
                coro.close()
            raise InvalidRequestError(
                "a SendKit method was called from the client's own event-loop thread "
                "(e.g. from an id generator handed to it); call it from another thread"
            )
        with self._lock:
            if self._stopped:
                if coro is not None:
                    coro.close()
                raise ClientClosedError("the client is closed; create a new SendKit")
            self._loop.call_soon_threadsafe(start)

    # ------------------------------------------------------------------ lifecycle

    def stop(self, *, wait: bool = True) -> None:
        """Stop the loop (pending tasks are cancelled) and, with ``wait``, the thread. Idempotent.

        Waits at most :data:`CLOSE_WAIT` seconds for the thread; never waits when
        called from the loop's own thread.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._loop.call_soon_threadsafe(self._loop.stop)
        if wait and threading.get_ident() != self.thread_id:
            self._thread.join(CLOSE_WAIT)

    def thread_alive(self) -> bool:
        """True while the loop's thread runs."""
        return self._thread.is_alive()


async def _anext(source: AsyncIterator[T]) -> T:
    return await source.__anext__()


async def _aclose(source: AsyncIterator[Any]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


def _settle(
    future: concurrent.futures.Future[R],
    task: asyncio.Task[R],
    events: queue.SimpleQueue[object] | None,
) -> None:
    if task.cancelled():
        future.set_exception(ClientClosedError("the call was cancelled (client closed)"))
    elif (exc := task.exception()) is not None:
        future.set_exception(exc)
    else:
        future.set_result(task.result())
    if events is not None:
        events.put(_DONE)


def _cancel_first(task: list[asyncio.Task[Any]], future: concurrent.futures.Future[Any]) -> None:
    if task:
        task[0].cancel()
    elif not future.done():  # not started yet: start() sees the cancel and never runs it
        future.cancel()


def _get(events: queue.SimpleQueue[object]) -> object:
    if _POLL is None:
        return events.get()
    while True:
        with contextlib.suppress(queue.Empty):
            return events.get(timeout=_POLL)


def _poll(future: concurrent.futures.Future[R]) -> R:
    while True:
        with contextlib.suppress(concurrent.futures.TimeoutError):
            return future.result(_POLL)


class BlockingIterator(Iterator[T], Generic[T]):
    """An async iterator driven from another thread: ``next()`` runs one step on the loop.

    Closing it (:meth:`close`, the end of a ``with`` block, or garbage collection
    after a ``break``) closes the async iterator, which cancels whatever it had
    in flight. An exception from a step (an interrupt included) ends it too.
    """

    __slots__ = ("_done", "_portal", "_started", "source")

    def __init__(self, portal: Portal, source: AsyncIterator[T]) -> None:
        self._portal = portal
        self.source = source
        self._done = self._started = False

    def __iter__(self) -> BlockingIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        self._started = True
        try:
            return self._portal.run(_anext(self.source))
        except StopAsyncIteration:
            self._done, self._started = True, False  # finished: nothing left to close
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def take_source(self) -> AsyncIterator[T]:
        """Hand the async iterator over to async code; this one is then exhausted."""
        self._done, self._started = True, False
        return self.source

    def close(self) -> None:
        """Close the async iterator (cancelling its work in flight). Idempotent."""
        started, self._started, self._done = self._started, False, True
        portal = self._portal
        if not started or not portal.alive:  # never started: nothing runs on its behalf
            return
        if threading.get_ident() == portal.thread_id:  # collected in the loop's thread
            portal.loop.create_task(_aclose(self.source))
        else:
            with contextlib.suppress(ClientClosedError):
                portal.run(_aclose(self.source))

    def __enter__(self) -> BlockingIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task left on ``loop`` and run it until they have all ended."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
