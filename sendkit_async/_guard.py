"""One client's overload guard: hosts the fault circuit and the retry budget over asyncio.

The decisions are :mod:`._overload`'s pure objects; this module only waits on them, wakes
waiters when the circuit changes state, and ends every wait at :meth:`OverloadGuard.close`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from . import errors
from ._overload import CLOSED, FaultCircuit, RetryBudget

__all__ = ["OverloadGuard"]

_THROTTLE_STREAK = 3  # 429s in a row, none accepted between: the server rejects everything


class OverloadGuard:
    """Fault circuit and retry budget of one client, with an injectable clock and sleep.

    Before an attempt the pipeline calls :meth:`admit` (or takes the synchronous lane
    while :attr:`open` is False and the attempt is a first one), and after it
    :meth:`record`. Waits here count against the call's deadline. While the API has
    never been reached at all (no response, e.g. refused connections), an open circuit
    fails calls at once instead.
    """

    __slots__ = (
        "_changed", "_closed", "_sleep", "answered", "budget", "circuit", "clock", "last_fault",
        "throttle_streak", "unreachable",
    )  # fmt: skip

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        circuit: FaultCircuit | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.clock = clock
        self._sleep = sleep
        self.circuit = circuit or FaultCircuit()
        self.budget = budget or RetryBudget(now=clock())
        self.throttle_streak = 0
        self.answered = False  # has the server ever answered (anything but a 5xx)?
        self.last_fault = ""  # the last fault's description, for the fail-fast error
        self.unreachable = False  # the last fault got no response at all
        self._changed: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def open(self) -> bool:
        """True while an outage is suspected (only probes go)."""
        return self.circuit.state is not CLOSED

    def deposit(self) -> None:
        """A first attempt goes by the synchronous lane (circuit closed)."""
        self.budget.deposit()

    async def admit(self, retry: bool, left: Callable[[], float] = lambda: math.inf) -> bool:
        """Wait until the circuit (and, for a retry, the budget) lets one attempt go.

        Returns True when the attempt goes as the open circuit's probe. ``left()`` is
        what remains of the call's deadline: no wait here outlasts it.

        Raises:
            ClientClosedError: the client was closed meanwhile.
            APITimeoutError: the call's deadline ran out while it waited.
        """
        probe = False
        while True:
            if self._closed:
                raise errors.ClientClosedError("the client was closed while the call waited")
            if left() <= 0.0:
                raise _out_of_time(self.last_fault)
            now = self.clock()
            delay = self.circuit.admit(now)
            if delay is None:
                probe = True
                break
            if delay <= 0.0:
                break
            if not self.answered and self.unreachable:
                # Never reached at all (down, or a wrong base URL): fail fast, as a
                # circuit breaker does, instead of waiting out the deadline.
                error = errors.APIConnectionError(
                    "not sent: every attempt to reach the API has failed so far"
                    f" (last: {self.last_fault})"
                )
                error._final = True  # type: ignore[attr-defined]
                raise error
            await self._wait(min(delay, left()))
        if not retry:
            self.budget.deposit()
            return probe
        try:
            while (delay := self.budget.withdraw(self.clock())) > 0.0:
                if left() <= 0.0:
                    raise _out_of_time(self.last_fault)
                await self._wait(min(delay, left()))
                if self._closed:
                    raise errors.ClientClosedError("the client was closed while the call waited")
        except BaseException:
            if probe:
                self.lost_probe()
            raise
        return probe

    def lost_probe(self) -> None:
        """An admitted probe was never sent: let another go at once."""
        self.circuit.probe_lost(self.clock())
        self._wake()

    def record(self, status: int | None, probe: bool, fault: str = "") -> bool:
        """Count one attempt's outcome (``status`` None: no response); True if it is free.

        A free failure does not use up one of the call's retries: it happened while the
        server was failing everything (a probe of the open circuit, or a 429 after a
        run of them), so it says nothing about this request.
        """
        circuit = self.circuit
        if status is not None and status < 429 and circuit.state is CLOSED and not probe:
            self.answered = True  # the common case, kept short: a request per call
            self.throttle_streak = 0
            circuit.accepted(self.clock())
            return False
        before = circuit.state
        ok = status is not None and status < 500
        if ok:
            self.answered = True
        else:
            self.last_fault = fault or f"HTTP {status}"
            self.unreachable = status is None
        self.circuit.record(self.clock(), ok, probe)
        if self.circuit.state is not before:
            self._wake()
        if status == 429:
            self.throttle_streak += 1
            return probe or self.throttle_streak > _THROTTLE_STREAK
        if ok:
            self.throttle_streak = 0
        return probe

    def close(self) -> None:
        """End every wait here with :class:`ClientClosedError`."""
        self._closed = True
        self._wake()

    async def _wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if the circuit changes state or we close."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        changed = self._changed
        if not math.isfinite(delay):
            await asyncio.wait([changed])
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait([changed, sleeper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
                await asyncio.gather(sleeper, return_exceptions=True)

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def __repr__(self) -> str:
        return f"<OverloadGuard {self.circuit!r} {self.budget!r}>"


def _out_of_time(last_fault: str) -> errors.APITimeoutError:
    """The call's deadline ran out while it waited for the circuit or the budget: final."""
    error = errors.APITimeoutError(
        f"call deadline exceeded while the API was failing (last: {last_fault or 'none'})"
    )
    error._final = True  # type: ignore[attr-defined]
    return error
