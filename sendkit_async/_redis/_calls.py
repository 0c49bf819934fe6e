"""The Redis side of ``RedisRateLimiter``: script calls, outages, shared state in and out.

``_RedisCalls`` is a mixin that ``RedisRateLimiter`` (in ``_limiter``) inherits. It
runs the Lua scripts, notices an outage (and starts the per-process fallback
limiter), pulls the shared bucket with each ACQUIRE and pushes pending observations
in a background task. Admission, ``observe()`` and the public API stay in ``_limiter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from redis.exceptions import RedisError

from .._adaptive import Climb
from .._priority import INTERACTIVE, Priority
from .._ratelimit import RateLimiter
from ._learner import Schedule, SharedRate, settle_time
from ._parts import _arg, _f, _Pending, _RedisDown, _s
from ._scripts import CLOCKED

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

logger = logging.getLogger("sendkit_async")

_PROBE_TTL_MS = 2000  # a probe whose answer never comes frees the way after this
_LEARNED_TTL_MS = 3_600_000  # learned limits are forgotten after an hour without traffic
_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
_GARBLED = (TypeError, ValueError, IndexError, KeyError, AttributeError, UnicodeError)
_HISTORY = "10"  # seconds of every process's accepted answers an epoch's leader reads


class _RedisCalls:
    """Mixin of `RedisRateLimiter`: its calls to Redis and the state they carry.

    ``RedisRateLimiter.__init__`` sets every attribute declared here.
    """

    _redis: Redis
    _keys: list[str]
    _acquire: AsyncScript
    _observe: AsyncScript
    _epoch: AsyncScript
    _counts: AsyncScript
    _sleep: Callable[[float], Awaitable[None]]
    _schedule: AsyncScript
    _leave: AsyncScript
    _learner: SharedRate
    _rate: float | None  # the user's ceiling and bucket size
    _burst: float | None
    _max: int
    _share: float  # background_share, and the step Turns takes from it
    _step: float
    _on_error: Literal["fallback", "raise"]
    _horizon: float
    _retry_after: float
    _closed: bool
    _fallback: RateLimiter  # replaced, from the last shared numbers, when Redis goes down
    _down: bool
    _down_until: float
    _pending: _Pending | None
    _flusher: asyncio.Task[None] | None
    _shared: dict[str, float | None]  # as last seen from Redis
    _shared_at: float
    _reopen_at: float
    # Tests only: the Redis server time the scripts use instead of TIME (see
    # _scripts.CLOCKED), read at each call. Never set in production: no argument is sent.
    _server_clock: Callable[[], float] | None = None

    if TYPE_CHECKING:

        def _now(self) -> float: ...

    def _where(self) -> str:
        kw = self._redis.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix:{kw['path']}"
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    async def _run(
        self,
        script: Any,
        keys: Sequence[str],
        args: Sequence[str],
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run one script and ``parse`` its reply; a reply that does not parse (a server
        that is not Redis, or not ours) counts as Redis failing, never escapes."""
        if self._down and self._now() < self._down_until:
            raise _RedisDown
        if self._server_clock is not None and script.script in CLOCKED:
            args = [*args, repr(self._server_clock())]
        try:
            result = await script(keys=list(keys), args=list(args), client=self._redis)
            if parse is not None:
                result = parse(result)
        except _REDIS_ERRORS + _GARBLED as exc:
            self._down_until = self._now() + self._retry_after
            if not self._down:
                self._down = True
                self._fallback = RateLimiter(
                    max_concurrency=self._max,
                    rate=self._shared.get("rate") or self._rate,
                    burst=self._shared.get("burst") or self._burst,
                    background_share=self._share,
                )
                then = "using a per-process limiter" if self._on_error == "fallback" else "failing"
                logger.warning(
                    "shared rate limit: Redis at %s failed (%s: %s); %s until it answers again",
                    self._where(),
                    type(exc).__name__,
                    exc,
                    then,
                )
            raise _RedisDown from exc
        if self._down:
            self._down = False
            logger.info("shared rate limit: Redis at %s answers again", self._where())
        return result

    def _user_args(self) -> list[str]:
        return [_arg(self._rate), _arg(self._burst)]

    async def _acquire_once(
        self, probe_token: str, priority: Priority = INTERACTIVE, waiter: str = ""
    ) -> tuple[str, float, float]:
        """One ACQUIRE: (kind, wait seconds, server time). Raises _RedisDown.

        ``waiter`` (the same for every ACQUIRE of one admission) names the caller in
        the lane of its ``priority`` while it waits; '' takes no part in priorities.
        """
        learner = self._learner
        learned = learner.args(self._now())
        args = [*self._user_args(), repr(self._horizon), str(_PROBE_TTL_MS), probe_token]
        lane = ("i" if priority == INTERACTIVE else "b") if waiter else ""
        turns = [lane, waiter, repr(self._step)]
        kind, wait, server_now, shared, climb, start, accepted_rate = await self._run(
            self._acquire, self._keys, [*args, *learned, *turns], _parse_acquire
        )
        now = self._now()
        learner.offset = server_now - now
        if kind == "cooldown":
            self._reopen_at = max(self._reopen_at, now + wait)
        if kind in ("token", "wait") and shared[0] is not None:
            self._shared.update(rate=shared[0], burst=shared[1], tokens=shared[2])
            self._shared_at = now
        learner.ctl.measured = accepted_rate
        learner.take(now, climb, start)
        return kind, wait, server_now

    async def _claim_epoch(self, cooldown: float, cautious: bool = True, mine: str = "") -> None:
        """A bare 429: lead a new epoch (one decrease and one cooldown for every process)
        or find that another process already does; ``mine``: this process's accepted
        answers not yet counted in Redis (as `_Pending.accepted_arg`). Raises _RedisDown.

        A leader whose gate stays closed a while (a Retry-After) decides a moment later
        (``settle_time``), with the answers that were still on their way and the counts
        the other processes push in the background: the estimates compare counts of
        whole episodes, and a few answers missing can hide a sliding window's limit.
        """
        learner = self._learner
        # The epoch ends as the gate reopens (and the answers to requests sent before the
        # decrease are in): a 429 after that is a new episode, as in one process.
        hold = cooldown + min(0.05, max(0.005, 2.0 * learner.ctl.srtt))
        keys = [self._keys[1], self._keys[4], self._keys[5], self._keys[0]]
        leader, server_now, counts = await self._run(
            self._epoch, keys, [repr(hold), repr(cooldown), _HISTORY, mine], _parse_epoch
        )
        now = self._now()
        learner.offset = server_now - now
        self._reopen_at = max(self._reopen_at, now + cooldown)
        if not leader:
            return
        wait = settle_time(learner.ctl.srtt, cooldown)
        lag = 0.0
        if wait > 0:
            lag = min(learner.ctl.srtt, wait)
            await self._sleep(wait)
            _, counts = await self._run(self._counts, self._keys[5:6], [_HISTORY], _parse_counts)
            # Our own answers that came meanwhile wait for this push to end: count them.
            if self._pending is not None:
                self._pending.add_accepted_to(counts)
        args = [*learner.lead(now, cooldown, counts, cautious, lag), repr(server_now + hold)]
        await self._run(self._schedule, self._keys[4:5], args)

    def _forget_waiter(self, waiter: str) -> None:
        """A waiter announced in a lane left without a token: unannounce it (background
        push), so that it holds the other lane back no longer than one push."""
        p = self._pending if self._pending is not None else _Pending()
        p.gone.append(waiter)
        self._pending = p
        self._kick()

    def _release_probe(self, token: str) -> None:
        p = self._pending if self._pending is not None else _Pending()
        p.probe = token
        self._pending = p
        self._kick()

    def _kick(self) -> None:
        if self._closed or (self._flusher is not None and not self._flusher.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # observed outside a loop: nothing can be pushed
            return
        self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending is not None:
            p, self._pending = self._pending, None
            if p.gone:
                with contextlib.suppress(_RedisDown):  # they expire by themselves anyway
                    await self._run(self._leave, self._keys[6:8], p.gone)
                if p.only_gone():
                    continue
            if p.claim is not None:
                with contextlib.suppress(_RedisDown):  # the fallback (if any) learns meanwhile
                    await self._claim_epoch(p.claim, p.cautious, p.accepted_arg())
                    p.accepted = {}  # counted by the claim
            cool = None if p.reopen_at is None else max(0.0, p.reopen_at - self._now())
            args = p.to_args(self._user_args(), cool, _LEARNED_TTL_MS)
            try:
                reply = await self._run(self._observe, self._keys, args, _parse_observe)
            except _RedisDown:
                continue  # the fallback (if any) learned it; Redis will relearn
            rate, burst, tokens, left, limit, remaining, reset, max_reset, window = reply
            self._learner.ctl.merge_period(max_reset, window)
            now = self._now()
            self._shared.update(
                rate=rate,
                burst=burst,
                tokens=tokens,
                limit=limit,
                remaining=remaining,
                reset_after=reset,
            )
            self._shared_at = now
            if left:
                self._reopen_at = max(self._reopen_at, now + left)


# -- replies: decoded here, so that a garbled one is a Redis failure (see _run) ----------


class _Acquired(NamedTuple):
    """One ACQUIRE reply, decoded."""

    kind: str
    wait: float
    server_now: float
    shared: tuple[float | None, ...]  # (rate, burst, tokens) of the shared bucket
    climb: Schedule | None  # the published climb
    start: tuple[float, float] | None  # the published slow start (rate, start)
    accepted_rate: float  # answers every process accepted lately, per second


def _parse_acquire(reply: Any) -> _Acquired:
    kind, wait, server_now = _s(reply[0]), float(_s(reply[1])), float(_s(reply[2]))
    if kind not in ("token", "open", "probe", "wait", "cooldown") or not math.isfinite(wait):
        raise ValueError(f"unexpected ACQUIRE reply kind {kind!r}")
    shared = tuple(_f(v) for v in reply[3:6])
    fields = [_f(v) for v in (*reply[6:12], *reply[14:16])]
    climb: Schedule | None = None
    if len(fields) == 8 and all(v is not None for v in fields):
        est, start, length, trust, count, seconds, limited, resumed = (v or 0.0 for v in fields)
        climb = Climb(est, start, length, trust, int(count), seconds, limited, resumed)
    ss_rate, ss_from = (_f(v) for v in reply[12:14])
    begun = None if ss_rate is None or ss_from is None else (ss_rate, ss_from)
    recent, span = float(_s(reply[16])), float(_s(reply[17]))
    accepted_rate = recent / span if span > 0 and math.isfinite(recent) else 0.0
    return _Acquired(kind, wait, server_now, shared, climb, begun, accepted_rate)


def _parse_counts(reply: Any) -> tuple[float, dict[int, int]]:
    """(server time, accepted answers per 100 ms bucket)."""
    counts = {int(_s(reply[i])): int(_s(reply[i + 1])) for i in range(1, len(reply) - 1, 2)}
    return float(_s(reply[0])), counts


def _parse_epoch(reply: Any) -> tuple[bool, float, dict[int, int]]:
    """(leader?, server time, accepted answers per 100 ms bucket)."""
    counts = {int(_s(reply[i])): int(_s(reply[i + 1])) for i in range(2, len(reply) - 1, 2)}
    return _s(reply[0]) == "leader", float(_s(reply[1])), counts


def _parse_observe(reply: Any) -> tuple[float | None, ...]:
    values = tuple(_f(v) for v in reply)
    if len(values) != 9:
        raise ValueError("unexpected OBSERVE reply")
    return values


def _parse_seconds(reply: Any) -> float:
    seconds = float(_s(reply))
    if not math.isfinite(seconds):
        raise ValueError("unexpected CHECK reply")
    return seconds
