"""Slots handed to waiters in two lanes (interactive, background), each first come, first served.

A plain state machine of the rate limiter (ratelimit layer): which lane a freed
slot goes to is decided by a :class:`~._priority.Turns` (interactive first with a
bounded share for background), or, without one, interactive first always.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ._priority import BACKGROUND, INTERACTIVE, Priority, Turns

__all__ = ["FifoSlots"]


def _live(lane: deque[asyncio.Future[None]]) -> bool:
    """True when ``lane`` has a waiter that still waits (drops the cancelled at its head)."""
    while lane:
        if not lane[0].done():
            return True
        lane.popleft()
    return False


class FifoSlots:
    """A counting semaphore with two lanes of waiters, each served first come, first served.

    A released slot is handed straight to a waiter, so a newcomer can never
    overtake the queue. With one priority only it is strictly FIFO. Between
    lanes, ``turns`` decides (None: interactive always first). Cancellation never
    leaks a slot.
    """

    __slots__ = ("_back", "_fore", "_turns", "held", "limit")

    def __init__(self, limit: int, turns: Turns | None = None) -> None:
        self.limit = limit
        self.held = 0
        self._turns = turns
        self._fore: deque[asyncio.Future[None]] = deque()  # interactive
        self._back: deque[asyncio.Future[None]] = deque()  # background

    @property
    def _waiters(self) -> list[asyncio.Future[None]]:
        """Every queued waiter (both lanes; for tests and debugging)."""
        return [*self._fore, *self._back]

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is queued; never waits."""
        if self.held < self.limit and not self._fore and not self._back:
            self.held += 1
            return True
        return False

    @property
    def free(self) -> bool:
        """True when :meth:`try_acquire` would succeed."""
        return self.held < self.limit and not self._fore and not self._back

    def waiting(self, priority: Priority) -> bool:
        """True when a call of ``priority`` is queued."""
        return _live(self._fore if priority == INTERACTIVE else self._back)

    async def acquire(self, priority: Priority = INTERACTIVE, *, front: bool = False) -> None:
        """Wait for and take one slot, queued in the lane of ``priority``.

        ``front``: queue at the head of the lane (a call that gave its slot back
        and queues again keeps its place).
        """
        if self.held < self.limit and not self._fore and not self._back:
            self.held += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._fore if priority == INTERACTIVE else self._back
        if front:
            lane.appendleft(fut)
        else:
            lane.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            elif fut in lane:  # release() may have dropped it in the same tick
                lane.remove(fut)
            raise

    def release(self) -> None:
        """Give one slot back, to a waiter of the lane that goes next, if any."""
        fore, back = _live(self._fore), _live(self._back)
        if self._turns is not None:
            lane = self._turns.next(fore, back)
        else:
            lane = INTERACTIVE if fore else BACKGROUND if back else None
        if lane is None:
            self.held -= 1
            return
        # The slot moves to the waiter: `held` is unchanged.
        (self._fore if lane == INTERACTIVE else self._back).popleft().set_result(None)

    def hand_to(self, priority: Priority) -> bool:
        """Hand the held slot straight to the oldest waiter of ``priority``, if any."""
        lane = self._fore if priority == INTERACTIVE else self._back
        if not _live(lane):
            return False
        lane.popleft().set_result(None)
        return True
