"""Pieces of the Redis budget: its error, pending observations, reply decoding, the slot."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._priority import Priority
from ..errors import ClientClosedError, SharedBudgetUnavailableError

if TYPE_CHECKING:
    from ._limiter import RedisRateLimiter

__all__ = ["SharedBudgetUnavailableError"]  # defined in errors; re-exported for _limiter

_T = TypeVar("_T")


class _RedisDown(Exception):
    """Internal: Redis failed or is known to be down; the caller chooses what to do."""


@attrs.define
class _Pending:
    """Observations not yet pushed to Redis, merged (later/stricter wins)."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    window: float | None = None
    reopen_at: float | None = None  # loop time
    no_headers: bool = False
    probe: str = ""
    # Answers accepted with no rate-limit headers, for the shared learner: how many per
    # 100 ms of server time in which they were answered (not in which they are pushed:
    # a leader compares whole episodes, and a push lands after the 429 that ends one).
    accepted: dict[int, int] = attrs.Factory(dict)
    claim: float | None = None  # a bare 429's cooldown: claim a new epoch with it
    cautious: bool = True  # ...and it carried no Retry-After (AdaptiveRate.limited)
    rate: float | None = None  # rate and burst learned from headers (by the controller)
    burst: float | None = None
    start: tuple[float, float] | None = None  # a slow start to publish (rate, server time)
    gone: list[str] = attrs.Factory(list)  # waiters that left unadmitted: unannounce them

    def only_gone(self) -> bool:
        """True when nothing but waiters that left is pending (OBSERVE has nothing to do)."""
        return self == _Pending(gone=self.gone)

    def count_accepted(self, bucket: int) -> None:
        """One more accepted answer in 100 ms bucket ``bucket`` (of server time)."""
        self.accepted[bucket] = self.accepted.get(bucket, 0) + 1

    def add_accepted_to(self, counts: dict[int, int]) -> None:
        """Add the accepted answers not pushed yet to ``counts`` (bucket: count)."""
        for bucket, n in self.accepted.items():
            counts[bucket] = counts.get(bucket, 0) + n

    def accepted_arg(self) -> str:
        """The accepted answers as the scripts read them: "bucket count bucket count ..."."""
        return " ".join(f"{bucket} {count}" for bucket, count in self.accepted.items())

    def to_args(self, user: list[str], cooldown: float | None, ttl_ms: int) -> list[str]:
        """ARGV of the OBSERVE script."""
        return [
            *user,
            "" if self.limit is None else str(self.limit),
            "" if self.remaining is None else str(self.remaining),
            _arg(self.reset_after),
            _arg(self.window),
            _arg(cooldown),
            "1" if self.no_headers else "0",
            self.probe,
            str(ttl_ms),
            self.accepted_arg(),
            _arg(self.rate),
            _arg(self.burst),
            "" if self.start is None else repr(self.start[0]),
            "" if self.start is None else repr(self.start[1]),
        ]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _f(value: Any) -> float | None:
    text = _s(value)
    return float(text) if text else None


def _arg(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class _Slot(AbstractAsyncContextManager[None]):
    __slots__ = ("_cap", "_fallback", "_limiter", "_sent_at", "priority", "probe")

    def __init__(self, limiter: RedisRateLimiter, priority: Priority) -> None:
        self._limiter = limiter
        self.priority = priority
        self._cap: AbstractAsyncContextManager[None] | None = None
        self._fallback: AbstractAsyncContextManager[None] | None = None
        self._sent_at = 0.0
        self.probe = ""

    async def __aenter__(self) -> None:
        limiter = self._limiter
        limiter._bind()  # the loop-bound state of the running loop (see _lifecycle)
        cap = self._cap = limiter._local.slot(priority=self.priority)
        await cap.__aenter__()
        try:
            self._fallback = await limiter._admit(self)
        except BaseException:
            await cap.__aexit__(None, None, None)
            if self.probe:
                limiter._release_probe(self.probe)
            raise
        limiter._sending += 1
        self._sent_at = limiter._now()
        limiter._learner.ctl.sent(self._sent_at)

    async def ask(self, call: Awaitable[_T], *, probe: str = "") -> _T:
        """Await one call to Redis in a task of its own, shielded from our cancellation.

        A cancellation then reaches the caller at once and is never lost: redis-py may
        swallow one that lands inside its own ``asyncio.wait_for`` (Python < 3.12), and
        admission would go on as if not cancelled. The call runs to its end (bounded by
        the socket timeout); a ``probe`` it was granted meanwhile is released.
        ``aclose()`` waits for the call (bounded, see ``_lifecycle.CLOSE_WAIT``).

        Raises:
            ClientClosedError: the limiter was closed before or while asking.
        """
        limiter = self._limiter
        if limiter._closed:
            if asyncio.iscoroutine(call):
                call.close()  # never awaited: no warning
            raise _closed()
        asking = asyncio.ensure_future(call)
        limiter._calls.add(asking)
        asking.add_done_callback(limiter._calls.discard)
        try:
            result = await asyncio.shield(asking)
        except asyncio.CancelledError:
            if asking.cancelled() and limiter._closed and not _cancelling():
                raise _closed() from None  # cancelled by aclose(), not our caller
            asking.add_done_callback(functools.partial(self._late_answer, probe))
            raise
        except _RedisDown:
            if limiter._closed:  # aclose() closed the pool under it: no fallback then
                raise _closed() from None
            raise
        if limiter._closed:  # answered after aclose(): not admitted
            raise _closed()
        return result

    def _late_answer(self, probe: str, asked: asyncio.Future[Any]) -> None:
        if asked.cancelled() or asked.exception() is not None:  # retrieved: never logged
            return
        if probe and asked.result()[0] == "probe":
            self._limiter._release_probe(probe)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        limiter = self._limiter
        limiter._sending -= 1
        limiter._learner.ctl.answered(max(0.0, limiter._now() - self._sent_at))
        try:
            if self._fallback is not None:
                await self._fallback.__aexit__(exc_type, exc, tb)
        finally:
            if self.probe:
                limiter._release_probe(self.probe)
            if self._cap is not None:
                await self._cap.__aexit__(exc_type, exc, tb)


def _closed() -> ClientClosedError:
    return ClientClosedError("the RedisRateLimiter is closed")


def _cancelling() -> bool:
    """True when the running task was asked to cancel (Python 3.11+; False before)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling is not None and cancelling())
