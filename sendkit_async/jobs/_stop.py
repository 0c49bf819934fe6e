"""A stopping worker's main task is cancelled again until it has ended.

arq stops a worker by cancelling its main task once (its SIGTERM/SIGINT handler). On
Python 3.10 and 3.11, redis-py's bounded send (``asyncio.wait_for``) swallows a
cancellation that lands as the send completes: arq's main loop would then go on
polling (and taking chunks) after SIGTERM, and the worker would never exit.

Two guards, both cancelling again every ``RECANCEL`` seconds until the task has ended:

- :func:`until_stopped`, arq's ``on_stop``, installed by ``run_worker`` (our
  ``sendkit-async jobs worker``), starts at the signal itself;
- :func:`insist_on_stop`, called by our ``on_startup`` in the main task, also covers arq's
  own ``arq`` command, which builds the worker itself (settings cannot reach its
  ``on_stop``). It needs no arq internals: it watches the task's public count of pending
  cancellation requests (``Task.cancelling()``, Python 3.11+), which a swallowed
  cancellation leaves raised. On Python 3.10 it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from signal import Signals
from typing import Any, Protocol

__all__ = ["RECANCEL", "Insist", "insist_on_stop", "until_stopped"]

RECANCEL = 0.2
"""Seconds between the cancellations of a stopping worker's main task."""


class _MainTask(Protocol):
    def done(self) -> bool: ...
    def cancel(self) -> bool: ...
    def cancelling(self) -> int: ...


class _HasMainTask(Protocol):
    main_task: asyncio.Task[None] | None


def until_stopped(
    worker: _HasMainTask, loop: asyncio.AbstractEventLoop
) -> Callable[[Signals], None]:
    """arq's ``on_stop``: after arq's one cancellation of the worker's main task, cancel
    it again every ``RECANCEL`` seconds until it has ended."""

    def again() -> None:
        task = worker.main_task
        if task is not None and not task.done():
            task.cancel()
            loop.call_later(RECANCEL, again)

    def on_stop(_: Signals) -> None:
        loop.call_later(RECANCEL, again)

    return on_stop


class Insist:
    """Cancels ``task`` again once it has had a cancellation request pending at two checks
    in a row; checks every ``every`` seconds until the task is done.

    Two checks, not one: ``asyncio.timeout`` (redis-py's read bound) cancels the task and
    withdraws the request (``uncancel``) as it expires, within one step of the loop; a
    single check landing in between must not turn a Redis timeout into a stop.
    """

    __slots__ = ("_every", "_loop", "_seen", "_task")

    def __init__(self, task: _MainTask, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self._task = task
        self._loop = loop
        self._every = every
        self._seen = 0

    def start(self) -> None:
        """Schedule the first check."""
        self._loop.call_later(self._every, self.check)

    def check(self) -> None:
        """One check: cancel again if a request was pending at this and the last check;
        schedule the next unless the task is done."""
        task = self._task
        if task.done():
            return
        pending = task.cancelling()
        if pending and self._seen:
            task.cancel()
        self._seen = pending
        self._loop.call_later(self._every, self.check)


def insist_on_stop() -> Insist | None:
    """Guard the current task (arq's worker main task, from ``on_startup``): once it has
    been asked to stop, cancel it again every ``RECANCEL`` seconds until it has ended.
    Returns the guard, or None where ``Task.cancelling()`` does not exist (Python 3.10)
    or there is no current task. Never raises.
    """
    task: Any = asyncio.current_task()
    if sys.version_info < (3, 11) or task is None:
        return None
    guard = Insist(task, asyncio.get_running_loop(), RECANCEL)
    guard.start()
    return guard
