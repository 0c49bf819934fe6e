"""One learner across processes: the rate learned from bare 429s, shared through Redis.

Two or three ``RedisRateLimiter`` s on their own connection pools stand for processes.
Answers are fed through ``observe()`` with the limiters' own clock; nothing waits.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from redis.asyncio import Redis

from sendkit_async._adaptive import Climb
from sendkit_async._controller import AIMD, RateController
from sendkit_async._redis._learner import (
    MAX_SETTLE,
    PUSH,
    SETTLE,
    SharedRate,
    answer_times,
    settle_time,
)
from sendkit_async._redis._parts import _Slot
from tests.helpers import FakeClock
from tests.redis_fixtures import hgetall
from tests.test_redis_limiter import SERVER_T0, Factory, make, new_key, redis, settle

__all__ = ["make", "redis"]  # fixtures shared with test_redis_limiter

pytestmark = pytest.mark.usefixtures("redis_url")


def rate_of(limiter: object) -> float | None:
    """The rate learned from 429s that ``limiter`` passes to the shared bucket now."""
    from sendkit_async.redis_limiter import RedisRateLimiter

    assert isinstance(limiter, RedisRateLimiter)
    ctl = limiter._learner.ctl
    return ctl.rate_at(limiter._now()) if ctl.source == AIMD else None


def spy_on_leaders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[SharedRate, int, float]]:
    """Each epoch's leader as it leads: (its SharedRate, answers counted, lag)."""
    leads: list[tuple[SharedRate, int, float]] = []
    original = SharedRate.lead

    def lead(self: SharedRate, *args: Any) -> list[str]:
        # (now, cooldown, counts, cautious, lag), as `_claim_epoch` passes them
        counts: dict[int, int] = args[2]
        leads.append((self, sum(counts.values()), args[4]))
        return original(self, *args)

    monkeypatch.setattr(SharedRate, "lead", lead)
    return leads


async def warm_up(limiter: object, answers: int) -> None:
    """Admit and answer ``answers`` requests without rate-limit headers."""
    from sendkit_async.redis_limiter import RedisRateLimiter

    assert isinstance(limiter, RedisRateLimiter)
    for _ in range(answers):
        async with limiter.slot():
            limiter.observe(200)
    await settle(limiter)


async def test_simultaneous_429s_in_two_processes_cause_one_decrease(
    make: Factory, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    await warm_up(a, 30)
    await warm_up(b, 30)
    keys = a._keys
    assert int(sum(int(v) for v in (await hgetall(redis, keys[5])).values())) == 60
    leads = spy_on_leaders(monkeypatch)
    a.observe(429)
    b.observe(429)  # the same moment, in another process
    await settle(a, b)
    assert len(leads) == 1  # one epoch, one leader, one decrease
    assert leads[0][2] == 0.0  # a bare 429's gate: decided at once, answers dated as they came
    shared = await hgetall(redis, keys[4])
    assert float(shared["est"]) > 0
    # The cooldown was closed once, by the leader.
    assert await redis.get(keys[1]) is not None
    # The other process follows the published climb at its next admission.
    follower = b if leads[0][0] is a._learner else a
    await follower._acquire_once("")
    assert follower._learner.ctl.aimd.estimate == pytest.approx(float(shared["est"]), rel=1e-6)
    # More 429s within the epoch change nothing.
    follower.observe(429)
    await settle(follower)
    assert len(leads) == 1
    assert (await hgetall(redis, keys[4]))["from"] == shared["from"]


async def test_a_process_started_later_begins_at_the_learned_rate(
    make: Factory, redis: Redis
) -> None:
    key = new_key()
    a = make(api_key=key)
    await warm_up(a, 40)
    a.observe(429)
    await settle(a)
    learned = rate_of(a)
    assert learned is not None
    assert a.snapshot().rate == pytest.approx(learned, rel=0.05)  # not "unlimited"
    late = make(api_key=key)
    assert rate_of(late) is None  # nothing known yet
    await late._acquire_once("")
    rate = rate_of(late)
    assert rate is not None
    estimate = float((await hgetall(redis, a._keys[4]))["est"])
    assert 0.94 * estimate <= rate <= estimate  # on the climb, not a slow start from 100/s
    assert late._learner.ctl.aimd.estimate == pytest.approx(estimate, rel=1e-6)


async def test_the_learned_rate_paces_the_shared_bucket(make: Factory, redis: Redis) -> None:
    key = new_key()
    a = make(api_key=key)
    await warm_up(a, 20)
    rate = rate_of(a)
    assert rate is not None
    kind, _, _ = await a._acquire_once("")
    assert kind in ("token", "wait", "cooldown")
    bucket = await hgetall(redis, a._keys[0])
    assert "tokens" in bucket  # paced by the shared bucket, not sent 'open'


async def test_a_rate_from_an_older_climb_gets_no_token(make: Factory, redis: Redis) -> None:
    key = new_key()
    a, b = make(api_key=key), make(api_key=key)
    await warm_up(a, 30)
    await warm_up(b, 30)
    a.observe(429)  # a leads an epoch and publishes a climb...
    await settle(a)
    shared = await hgetall(redis, a._keys[4])
    assert float(shared["est"]) > 0
    await redis.delete(a._keys[1])  # ...and the gate reopens: b slept through the epoch
    assert b._learner.args(b._now())[2] == ""  # b asks at its slow start's rate
    kind, wait, _ = await b._acquire_once("")
    assert (kind, wait) == ("wait", 0.0)  # no token at that rate...
    assert b._learner.ctl.aimd.estimate == pytest.approx(float(shared["est"]), rel=1e-6)
    assert float(b._learner.args(b._now())[2]) == float(shared["limited"])
    kind, _, _ = await b._acquire_once("")  # ...but at once at the climb's
    assert kind == "token"
    # A climb older than the one a process follows (Redis lost the newer) turns nobody back.
    older: Any = redis  # redis-py's stubs say "awaitable or not" (see hgetall)
    await older.hset(a._keys[4], "limited", repr(float(shared["limited"]) - 10.0))
    kind, wait, _ = await b._acquire_once("")
    assert kind in ("token", "wait") and (kind, wait) != ("wait", 0.0)
    assert b._learner.ctl.aimd.estimate == pytest.approx(float(shared["est"]), rel=1e-6)


async def test_asking_again_after_a_stale_rate_counts_no_throttle(
    make: Factory, redis: Redis
) -> None:
    clock = FakeClock(start=SERVER_T0)  # Redis time and both processes' clocks

    async def advance(seconds: float) -> None:
        clock.now += max(seconds, 0.0)

    key = new_key()
    a, b = make(api_key=key, sleep=advance), make(api_key=key, sleep=advance)
    for limiter in (a, b):
        limiter._server_clock = limiter._now = clock.time  # type: ignore[method-assign]
    await warm_up(a, 30)
    await warm_up(b, 30)
    a.observe(429)  # a publishes a new climb; b, at its slow start, has not seen it
    await settle(a)
    clock.now += 5.0  # long past the cooldown: the gate is open, the bucket full
    before = b.snapshot().throttle_events
    # b asks at the old rate, is turned back with the new climb and asks again at once:
    # it waited for neither a token nor a gate, so no throttle is counted.
    assert await b._admit(_Slot(b, "background")) is None
    shared = await hgetall(redis, a._keys[4])
    assert b._learner.ctl.aimd.estimate == pytest.approx(float(shared["est"]), rel=1e-6)
    assert b.snapshot().throttle_events == before


async def test_a_bare_429_holds_this_process_before_redis_hears_of_it(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    a = make(api_key=new_key(), sleep=sleep)
    await warm_up(a, 30)
    monkeypatch.setattr(a, "_kick", lambda: None)  # the push to Redis has not happened yet
    a.observe(429)
    held = a._held_until - a._now()
    assert held > 0
    # Redis would grant a token at once; this process, which saw the 429, first waits
    # out the cooldown it claimed (its requests already past the local gate included).
    assert await a._admit(_Slot(a, "background")) is None
    assert slept and slept[0] == pytest.approx(held, abs=0.05)


async def test_every_answer_but_a_429_counts_as_let_through(make: Factory, redis: Redis) -> None:
    # The server's limit counted the 5xx and 4xx it let through too; a 429 it refused.
    a = make(api_key=new_key())
    await warm_up(a, 1)
    for status in (200, 404, 503, 500, 429):
        a.observe(status)
    await settle(a)
    counted = sum(int(n) for n in (await hgetall(redis, a._keys[5])).values())
    assert counted == 1 + 4


async def test_answers_pushed_late_count_in_the_100ms_they_were_answered_in(
    make: Factory, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A leader compares whole episodes: answers pushed after the 429 that ends one must
    # still count in it, not after it.
    a = make(api_key=new_key())
    await warm_up(a, 1)  # its clock offset to Redis is known from here on
    before = await hgetall(redis, a._keys[5])
    real_now = a._now
    monkeypatch.setattr(a, "_now", lambda: real_now() - 3.0)  # answered 3 s ago...
    monkeypatch.setattr(a, "_kick", lambda: None)  # ...and not pushed yet
    for _ in range(5):
        a.observe(200)
    monkeypatch.undo()
    a._kick()
    await settle(a)
    after = await hgetall(redis, a._keys[5])
    added = {int(b): int(n) - int(before.get(b, 0)) for b, n in after.items()}
    added = {b: n for b, n in added.items() if n}
    answered = a._learner.bucket(a._now() - 3.0)
    assert sum(added.values()) == 5
    assert set(added) <= {answered - 1, answered, answered + 1}  # Redis time moved on a bit


async def test_a_leader_counts_its_own_answers_that_came_while_it_waited(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Behind a Retry-After, the leader reads every process's counts again a moment
    # later. Its own answers of that moment wait for its push (this one) to end: they
    # count all the same (a charging gateway's window of 100 read 93-96 without them).
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        if armed:
            waits.append(seconds)
            for _ in range(5):  # answers to requests sent before the 429, coming late
                a.observe(200)

    armed = False

    a = make(api_key=new_key(), sleep=sleep)
    await warm_up(a, 30)
    leads = spy_on_leaders(monkeypatch)
    armed = True
    a.observe(429, retry_after=1.0)
    await settle(a)
    assert waits == [settle_time(a._learner.ctl.srtt, 1.0)] and waits[0] > 0
    assert [counted for _, counted, _ in leads] == [35]
    # ...and date them a round trip before they came, about when they were sent.
    assert [lag for _, _, lag in leads] == [a._learner.ctl.srtt] and leads[0][2] > 0


def test_a_leader_waits_about_two_round_trips_within_a_quarter_of_the_gate() -> None:
    assert settle_time(0.001, 1.0) == SETTLE  # loopback: 50 ms, as before
    assert settle_time(0.05, 1.0) == pytest.approx(2 * 0.05 + PUSH)  # a 50 ms backend
    assert settle_time(0.05, 0.2) == pytest.approx(0.05)  # a quarter of a 0.2 s gate
    assert settle_time(5.0, 60.0) == MAX_SETTLE  # slow answers do not hold it for long
    assert settle_time(0.05, 0.19) == 0.0  # a bare 429's short gate: decided at once


def test_a_leader_keeps_every_answer_of_the_429s_own_100ms() -> None:
    # 40 answers in the 100 ms bucket the 429 came in, 30 ms into it (server time 12.0
    # is our 2.0): all of them came by now, none is dropped as "later".
    offset, now = 10.0, 2.03
    counts = {119: 60, 120: 40}  # server buckets 11.9-12.0 and 12.0-12.1
    times = answer_times(counts, offset, resumed=-math.inf, now=now)
    assert len(times) == 100
    assert all(1.9 < t < 2.0 for t in times[:60])
    assert all(2.0 < t < now for t in times[60:])
    # Behind a gate that reopened at 1.95, the first bucket's answers came after it.
    times = answer_times(counts, offset, resumed=1.95, now=now)
    assert len(times) == 100 and min(times) > 1.95
    # An answer counted in a bucket ahead of our clock (its offset drifted) is kept, at now.
    assert answer_times({121: 3}, offset, resumed=-math.inf, now=now) == [now] * 3


def test_answers_that_came_while_the_gate_was_closed_count_when_it_closed() -> None:
    # A 429 at 1.0 closed the gate until 2.0; a 50 ms backend still answered 12 requests
    # sent before it in 1.0-1.1. Nothing is sent behind a closed gate: they count at 1.0,
    # and the second before the reopening is quiet (the server was full then).
    offset = 10.0
    counts = {109: 30, 110: 12, 120: 5}  # server buckets 10.9-11.0, 11.0-11.1, 12.0-12.1
    times = answer_times(counts, offset, resumed=2.0, now=2.08, closed=1.0)
    assert len(times) == 47
    assert all(0.9 < t < 1.0 for t in times[:30])
    assert times[30:42] == [1.0] * 12
    assert all(2.0 < t < 2.08 for t in times[42:])
    # Without a gate known, they stay where they came.
    assert all(1.0 < t < 1.1 for t in answer_times({110: 12}, offset, -math.inf, 2.08))


def test_a_leader_that_waited_dates_answers_a_round_trip_before_they_came() -> None:
    # The gate reopened at 2.0; requests went out from then until the 429 at 2.4, and a
    # 50 ms backend answered them 2.05-2.45. The leader read the counts at 2.5.
    offset = 10.0
    counts = {120: 10, 121: 20, 122: 20, 123: 20, 124: 10}  # server 12.0-12.5
    times = answer_times(counts, offset, resumed=2.0, now=2.4, lag=0.05)
    assert len(times) == 80  # none lost
    assert 2.0 < min(times) < 2.001 and max(times) <= 2.4  # after the reopening, by the 429
    # As they came, squeezed before the 429: the same 80 in 0.4 s would look faster.
    squeezed = answer_times(counts, offset, resumed=2.0, now=2.4)
    assert sum(t > 2.3 for t in squeezed) == 30 and sum(t > 2.3 for t in times) == 20
    # Answers to requests sent before the gate closed (at 1.0) still count at its close.
    times = answer_times({110: 12, 121: 5}, offset, resumed=2.0, now=2.4, closed=1.0, lag=0.05)
    assert times[:12] == [1.0] * 12 and all(2.05 < t < 2.15 for t in times[12:])


def test_a_leader_dates_the_answers_behind_the_last_gate_at_its_close() -> None:
    ctl = RateController(shared=True)
    # The climb every process follows: its 429 came at 1.0, its gate reopened at 2.0.
    ctl.follow(2.0, Climb(100.0, 2.0, 1.0, 1.0, 0, 0.0, limited=1.0, resumed=2.0))
    shared = SharedRate(ctl)
    shared.offset = 10.0
    shared.lead(2.5, 1.0, {109: 30, 110: 12, 121: 40}, cautious=False)
    oks = list(ctl.aimd._oks)
    assert len(oks) == 82 and oks.count(1.0) == 12


async def test_the_shared_counts_keep_a_bounded_history(make: Factory, redis: Redis) -> None:
    # Every push renews the counts' expiry, so a run of hours would grow them without
    # end (and every epoch reads them whole): buckets older than 30 s are dropped.
    a = make(api_key=new_key())
    keys = a._keys
    for i in range(1_000):  # 100 s of server time, one push per 100 ms bucket
        clock = SERVER_T0 + i * 0.1 + 0.05
        bucket = int(clock * 10)
        await a._epoch(
            keys=[keys[1], keys[4], keys[5], keys[0]],
            args=["0", "0", "10", f"{bucket} 1", repr(clock)],
        )
    held = {int(b) for b in (await hgetall(redis, keys[5]))}
    last = int((SERVER_T0 + 999 * 0.1 + 0.05) * 10)
    assert 300 <= len(held) <= 601
    assert set(range(last - 300, last + 1)) <= held  # the last 30 s are all there
    assert min(held) >= last - 600
