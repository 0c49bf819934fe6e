"""Tests for `AdaptiveRate`, the rate learned from 429s alone (a pure state machine)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendkit_async._adaptive import AdaptiveRate, Climb


def drain(
    rate: float, burst: float, send: float, start: float = 0.0, tokens: float | None = None
) -> tuple[list[float], float]:
    """Send at ``send``/s into a token bucket (full, or holding ``tokens``) until it refuses.

    Returns the times of the accepted requests and the time of the first refusal.
    """
    tokens, t, accepted = burst if tokens is None else tokens, start, []
    while True:
        if tokens >= 1.0:
            tokens -= 1.0
            accepted.append(t)
        else:
            return accepted, t
        t += 1.0 / send
        tokens = min(burst, tokens + rate / send)


def limited_after(
    adaptive: AdaptiveRate, accepted: list[float], now: float, send: float, cautious: bool = True
) -> float:
    for at in accepted:
        adaptive.accepted(at)
    new = adaptive.limited(now, since=accepted[0] - 1e-9, current=send, cautious=cautious)
    assert new is not None
    return new


@given(
    rate=st.floats(5.0, 2000.0),
    burst_seconds=st.floats(0.0, 0.1),
    overshoot=st.floats(1.05, 8.0),
)
def test_estimate_never_exceeds_a_bucket_whose_burst_is_at_most_the_assumed_one(
    rate: float, burst_seconds: float, overshoot: float
) -> None:
    burst = max(1.0, rate * burst_seconds)
    accepted, refused = drain(rate, burst, rate * overshoot)
    adaptive = AdaptiveRate()
    new = limited_after(adaptive, accepted, refused, rate * overshoot)
    assert adaptive.estimate is not None
    # The bound needs B <= 0.1 s of rate; one token of slack where B is 1 request.
    assert adaptive.estimate <= rate * (1.0 + 1.0 / max(burst, 0.1 * rate)) + 1e-9
    assert new == pytest.approx(0.95 * adaptive.estimate)


@pytest.mark.parametrize("overshoot", [1.5, 3.0])
def test_estimate_is_close_when_the_burst_is_the_assumed_one(overshoot: float) -> None:
    accepted, refused = drain(200.0, 20.0, 200.0 * overshoot)
    adaptive = AdaptiveRate()
    limited_after(adaptive, accepted, refused, 200.0 * overshoot)
    assert adaptive.estimate == pytest.approx(200.0, rel=0.05)


def test_after_a_429_the_accepted_rate_since_it_is_a_bound_without_any_burst_guess() -> None:
    adaptive = AdaptiveRate()
    first, refused = drain(200.0, 20.0, 600.0)
    limited_after(adaptive, first, refused, 600.0)
    # A short pause, then 100/s for two seconds and a 429 again (a slower server now, say):
    # the bucket was empty at the last 429, so 200 answers since then mean at least 200 / age.
    later = [refused + 0.05 + i / 100.0 for i in range(200)]
    for at in later:
        adaptive.accepted(at)
    now = later[-1] + 0.01
    adaptive.limited(now, since=0.0, current=110.0)
    assert adaptive.estimate == pytest.approx(200 / (now - refused))


def test_429_below_the_estimate_doubles_the_assumed_burst() -> None:
    adaptive = AdaptiveRate()
    accepted, refused = drain(100.0, 30.0, 300.0)  # a burst of 0.3 s: estimate too high
    limited_after(adaptive, accepted, refused, 300.0)
    first = adaptive.estimate
    assert first is not None
    assert first > 100.0
    # Limited again while sending below that estimate, from a refilled bucket.
    again, refused2 = drain(100.0, 30.0, 0.95 * first, start=refused + 1.0)
    for at in again:
        adaptive.accepted(at)
    adaptive.limited(refused2, since=0.0, current=0.95 * first)
    second = adaptive.estimate
    assert second is not None
    assert abs(second - 100.0) < abs(first - 100.0) / 2  # a larger burst assumed


def following(
    estimate: float,
    trust: float,
    limited: float = -1.0,
    resumed: float = 0.0,
    ceiling: float = 400.0,
) -> AdaptiveRate:
    """A learner following a climb to ``estimate`` (with ``trust``) whose last 429 came
    at ``limited`` and whose gate reopened at ``resumed``."""
    adaptive = AdaptiveRate(ceiling=ceiling)
    adaptive.adopt(0.0, Climb(estimate, 0.0, 1.0, trust, 0, 0.0, limited, resumed))
    return adaptive


def refused_below(
    estimate: float, trust: float, took: int, current: float, cautious: bool = True
) -> AdaptiveRate:
    """A learner at ``estimate`` (with ``trust``) refused at ``current``/s, after a second
    that took ``took`` requests evenly."""
    adaptive = following(estimate, trust)
    for i in range(took):
        adaptive.accepted(9.0 + (i + 0.5) / took)
    adaptive.limited(10.0, since=0.0, current=current, cautious=cautious)
    return adaptive


def test_429_below_a_windows_limit_after_a_second_that_took_it_keeps_the_estimate() -> None:
    # An exact estimate of 100 (a window of 100 a second, shown twice). Back from a pause at
    # 95/s, a reopening's few extra tokens fill the window a second later: refused below
    # the estimate, after a second that took 99. A burst did that, not a lower limit.
    for cautious in (True, False):
        adaptive = refused_below(100.0, 1.0, 99, 95.0, cautious)
        assert adaptive.estimate == pytest.approx(99.0)
        assert adaptive.rate == pytest.approx(0.95 * 99.0)
    # A lower limit shows as a second that took less: the estimate goes below it.
    lower = refused_below(100.0, 1.0, 80, 95.0, cautious=False).estimate
    assert lower is not None and lower < 80.0
    # An estimate from accepted time (trust below 1) may be a bucket's rate plus part of
    # its burst, and a bucket takes that much in the second before it runs dry: too high.
    bucket = refused_below(110.0, 0.9, 105, 104.5, cautious=False).estimate
    assert bucket is not None and bucket < 100.0


def test_nothing_accepted_since_the_last_429_keeps_the_rate() -> None:
    adaptive = AdaptiveRate()
    accepted, refused = drain(50.0, 5.0, 100.0)
    rate = limited_after(adaptive, accepted, refused, 100.0)
    assert adaptive.limited(refused + 0.1, since=0.0, current=rate) == rate  # the gate helps
    assert AdaptiveRate().limited(1.0, since=0.0, current=float("inf")) is None


def test_slow_start_doubles_per_interval_and_only_while_saturated() -> None:
    adaptive = AdaptiveRate()
    adaptive.start(0.0, 10.0)
    assert adaptive.grow(0.05, saturated=True) == pytest.approx(20.0)
    assert adaptive.grow(0.10, saturated=False) == pytest.approx(20.0)
    assert adaptive.grow(0.15, saturated=True, rtt=0.1) == pytest.approx(20.0 * 2**0.5)
    assert adaptive.grow(10.0, saturated=True) == pytest.approx(40.0 * 2**0.5)  # x2 at most


def climb(overshoot: float, seconds: float) -> tuple[float, dict[float, float]]:
    """Estimate after draining a (100/s, burst 10) bucket at ``overshoot`` x its rate, then
    the rate every 10 ms of saturated sending after a 1 s cooldown."""
    adaptive = AdaptiveRate(ceiling=200.0)
    accepted, refused = drain(100.0, 10.0, 100.0 * overshoot)
    limited_after(adaptive, accepted, refused, 100.0 * overshoot)
    assert adaptive.estimate is not None
    adaptive.pause(refused + 1.0, 1.0, rtt=0.001)
    rates = {}
    for step in range(1, int(seconds * 100) + 1):
        rates[step / 100] = adaptive.grow(refused + 1.0 + step / 100, saturated=True)
    return adaptive.estimate, rates


def test_climb_levels_off_below_a_sound_estimate_then_probes_beyond() -> None:
    # A one-second drain: the estimate rests little on the assumed burst; the climb back
    # takes about ten cooldowns (ten seconds here) to a plateau just below the estimate,
    # holds it for two climbs (a steady run has no second episode), then probes beyond.
    estimate, rates = climb(1.1, 60.0)
    assert 0.95 * estimate <= rates[1.0] < rates[5.0] < 0.98 * estimate
    assert rates[15.0] == pytest.approx(0.98 * estimate)
    assert rates[25.0] == pytest.approx(0.98 * estimate)
    assert estimate < rates[45.0] < rates[60.0]
    assert max(rates.values()) == 200.0  # never above the ceiling


def sliding_window_episode(
    adaptive: AdaptiveRate, resumed: float, send: float, limit: int = 100
) -> float:
    """Send at ``send``/s into an emptied one-second window of ``limit``: it accepts
    ``limit`` and refuses the next one. Returns the time of the refusal."""
    for i in range(1, limit + 1):  # each answered one interval after the last
        adaptive.accepted(resumed + i / send)
    return resumed + (limit + 1) / send


def test_a_sliding_window_is_recognised_by_the_same_count_twice() -> None:
    adaptive = AdaptiveRate()
    adaptive.start(0.0, 10.0)
    refused = sliding_window_episode(adaptive, 0.0, 450.0)  # slow start overshot
    adaptive.limited(refused, since=-1e-9, current=450.0)
    assert adaptive.estimate is not None and adaptive.estimate > 150  # burst taken for rate
    adaptive.pause(refused + 1.0, 1.0, rtt=0.001)  # Retry-After: 1
    refused = sliding_window_episode(adaptive, refused + 1.0, adaptive.rate)
    adaptive.limited(refused, since=-1e-9, current=adaptive.rate)
    assert adaptive.estimate == pytest.approx(100.0)  # 100 accepted each time: 100 a second
    assert adaptive.rate == pytest.approx(95.0)


def test_a_token_bucket_is_not_taken_for_a_window() -> None:
    # Far above its rate a bucket with a small burst accepts about its burst each time,
    # as a window would: below fifty requests that is not evidence of a window.
    adaptive = AdaptiveRate()
    accepted, refused = drain(100.0, 20.0, 2000.0)
    limited_after(adaptive, accepted, refused, 2000.0)
    adaptive.pause(refused + 1.0, 1.0, rtt=0.001)
    accepted, refused = drain(100.0, 20.0, 1000.0, start=refused + 1.0)
    for at in accepted:
        adaptive.accepted(at)
    adaptive.limited(refused, since=0.0, current=1000.0)
    assert adaptive.estimate is not None and adaptive.estimate > 50.0


def test_climb_probes_sooner_when_the_estimate_rests_on_the_assumed_burst() -> None:
    slow_estimate, slow = climb(1.1, 10.0)  # a one-second window
    fast_estimate, fast = climb(4.0, 10.0)  # a few milliseconds: mostly the assumed burst
    assert slow[8.0] < slow_estimate
    assert fast[8.0] > fast_estimate


def test_the_slow_starts_first_estimate_is_searched_past_behind_bare_429s() -> None:
    # A one-second drain would make a sound estimate later in a run; as the first 429
    # of a slow start (whose windows include the ramp, sent below the limit) it is a
    # loose bound: behind bare 429s the climb goes past it instead of holding a plateau.
    for cautious, trusted in ((True, False), (False, True)):
        adaptive = AdaptiveRate(ceiling=200.0)
        adaptive.start(0.0, 10.0)
        accepted, refused = drain(100.0, 10.0, 110.0)
        limited_after(adaptive, accepted, refused, 110.0, cautious)
        schedule = adaptive.schedule()
        assert schedule is not None and adaptive.estimate is not None
        assert (schedule.trust > 0.8) is trusted, schedule
        assert schedule.trust >= 0.5
        adaptive.pause(refused + 1.0, 1.0, rtt=0.001)
        top = max(adaptive.grow(refused + 1.0 + s / 100, saturated=True) for s in range(1, 1001))
        if trusted:  # ten seconds on: still on the plateau below the estimate
            assert top == pytest.approx(0.98 * adaptive.estimate)
        else:  # ...or already past it
            assert top > 1.04 * adaptive.estimate


def test_time_not_saturated_does_not_advance_the_climb() -> None:
    adaptive = AdaptiveRate()
    accepted, refused = drain(100.0, 10.0, 300.0)
    rate = limited_after(adaptive, accepted, refused, 300.0)
    adaptive.pause(refused, 0.05, rtt=0.001)
    assert adaptive.grow(refused + 100.0, saturated=False) == rate
    assert adaptive.grow(refused + 100.01, saturated=True) < 1.01 * rate


def test_an_outage_of_429s_leaves_the_climb_as_it_was() -> None:
    estimate, _ = climb(1.1, 1.0)
    adaptive = AdaptiveRate(ceiling=200.0)
    accepted, refused = drain(100.0, 10.0, 110.0)
    limited_after(adaptive, accepted, refused, 110.0)
    adaptive.pause(refused + 1.0, 1.0, rtt=0.001)
    before = adaptive.grow(refused + 30.0, saturated=True)  # on the plateau by now
    # Nothing but 429s for five seconds, one a second: nothing accepted, nothing learned.
    for k in range(5):
        now = refused + 30.0 + k
        assert adaptive.limited(now, since=0.0, current=before) == before
        adaptive.pause(now + 1.0, 1.0, rtt=0.001)
    # The climb was not restarted by the outage: it goes on probing past the estimate
    # on its old schedule (a restarted one would hold the plateau for half a minute).
    assert adaptive.estimate == pytest.approx(estimate)
    assert adaptive.grow(refused + 40.0, saturated=True) > 1.02 * estimate


def test_429s_while_probing_past_a_sound_estimate_keep_it() -> None:
    adaptive = AdaptiveRate(ceiling=400.0)
    accepted, refused = drain(100.0, 10.0, 110.0)
    limited_after(adaptive, accepted, refused, 110.0)
    first = adaptive.estimate
    assert first is not None
    t = refused
    for _ in range(4):
        adaptive.pause(t + 0.05, 0.05, rtt=0.001)
        # Forty seconds at the plateau without a 429, sending less than the server takes:
        # the accepted rate since the last 429 is only what we chose to send.
        start = t
        while t < start + 40.0:
            t += 1.0 / 80.0
            adaptive.accepted(t)
        adaptive.limited(t, since=0.0, current=1.2 * first)  # probing past it: throttled
        # Not ratcheted down to the 80/s we sent, nor to the plateau it held (98 % of
        # the estimate), episode after episode: the plateau was shown to be safe.
        assert adaptive.estimate == pytest.approx(first)
        assert adaptive.rate == pytest.approx(0.95 * first)


def test_one_episode_past_the_slow_start_cuts_the_rate_by_at_most_30_percent() -> None:
    rate = AdaptiveRate()
    rate.start(0.0, 100.0)
    for i in range(100):  # the server took 100/s for a second
        rate.accepted(i / 100)
    rate.limited(1.0, 0.0, 150.0)
    rate.pause(1.05, 0.05, 0.01)
    assert rate.estimate is not None
    sending = rate.rate
    # Then a window that counts refused requests, still full of them, accepts two in half
    # a second: no measure of its rate, and no reason to drop to a fraction of it.
    rate.accepted(1.2)
    rate.accepted(1.3)
    rate.limited(1.5, 0.0, sending)
    assert rate.estimate == pytest.approx(0.7 * sending)
    assert rate.rate == pytest.approx(0.95 * 0.7 * sending)


def test_after_a_retry_after_the_estimate_is_taken_as_it_is() -> None:
    rate = AdaptiveRate()
    rate.start(0.0, 100.0)
    for i in range(100):
        rate.accepted(i / 100)
    rate.limited(1.0, 0.0, 150.0, cautious=False)
    rate.pause(3.0, 2.0, 0.01)
    sending = rate.rate
    rate.accepted(3.2)
    rate.accepted(3.3)
    rate.limited(3.5, 0.0, sending, cautious=False)  # each episode costs the server's 2 s
    assert rate.estimate is not None and rate.estimate < 0.7 * sending


def test_answers_before_the_gate_reopened_teach_nothing_new() -> None:
    adaptive = AdaptiveRate()
    accepted, refused = drain(100.0, 10.0, 300.0)
    limited_after(adaptive, accepted, refused, 300.0)
    estimate, rate = adaptive.estimate, adaptive.rate
    adaptive.pause(refused + 0.05, 0.05, rtt=0.001)
    # Answers to requests sent before that 429 land while the gate is closed; the first
    # request after it reopens is refused again (the server has not refilled yet).
    adaptive.accepted(refused + 0.01)
    adaptive.accepted(refused + 0.02)
    assert adaptive.limited(refused + 0.06, since=0.0, current=rate) == rate
    assert adaptive.estimate == estimate


def probe_past(
    adaptive: AdaptiveRate, at: float, accepted_last_second: int, cautious: bool = True
) -> float:
    """A probe past the plateau refused at ``at`` after the last second accepted
    ``accepted_last_second`` evenly; returns the estimate after it."""
    for i in range(accepted_last_second):
        adaptive.accepted(at - 1.0 + (i + 0.5) / accepted_last_second)
    adaptive.limited(at, since=0.0, current=130.0, cautious=cautious)
    adaptive.pause(at + 0.05, 0.05, rtt=0.001)
    assert adaptive.estimate is not None
    return adaptive.estimate


def trust_of(adaptive: AdaptiveRate) -> float:
    schedule = adaptive.schedule()
    assert schedule is not None
    return schedule.trust


def test_a_probe_refused_after_a_second_that_took_more_than_the_estimate_raises_it() -> None:
    # A sound estimate of 90 (say, depressed by refusals still in a charging window).
    adaptive = following(90.0, 1.0)
    # A window of 100 a second refuses the probe once its last second holds 100: the
    # server sustains that much (the bound from accepted time, with the burst assumed,
    # would say 100 / 1.1).
    assert probe_past(adaptive, 10.0, 100) == pytest.approx(100.0)
    assert adaptive.rate == pytest.approx(95.0)
    # Past a limit known exactly (trust 1), a count within 5 % of it is timing, not more.
    exact = following(100.0, 1.0)
    assert probe_past(exact, 10.0, 102) == pytest.approx(100.0)
    assert trust_of(exact) == 1.0
    # A small count proves nothing of a window (a bucket's burst looks the same).
    small = following(30.0, 1.0)
    assert probe_past(small, 10.0, 40) < 40.0
    # Behind a Retry-After a wrong guess costs the server's seconds: the bound stays.
    behind = following(90.0, 1.0)
    assert probe_past(behind, 10.0, 100, cautious=False) == pytest.approx(100 / 1.1, rel=0.01)


def test_two_probes_in_a_row_show_a_windows_limit() -> None:
    adaptive = following(90.0, 1.0)
    probe_past(adaptive, 10.0, 100)
    assert trust_of(adaptive) < 1.0  # one probe: not yet known exactly
    assert probe_past(adaptive, 20.0, 100) == pytest.approx(100.0)
    assert trust_of(adaptive) == 1.0  # the same count twice: a window's limit
    # Behind a Retry-After: no such guess.
    behind = following(90.0, 1.0)
    probe_past(behind, 10.0, 100, cautious=False)
    assert probe_past(behind, 20.0, 100, cautious=False) < 95.0


def test_probes_of_a_token_bucket_are_not_taken_for_a_window() -> None:
    # A bucket's count in the second before a probe's 429 is its rate plus what the
    # probe drained of its burst, which differs from probe to probe.
    adaptive = following(90.0, 1.0)
    assert probe_past(adaptive, 10.0, 104) == pytest.approx(104.0)
    assert probe_past(adaptive, 20.0, 118) == pytest.approx(118.0)
    # Each second's count is taken, but not as a window's limit known exactly: a 429
    # below it (the bucket's rate) lowers it again (see refused_below).
    assert trust_of(adaptive) < 1.0


def test_429s_right_after_reopenings_keep_what_the_last_second_took() -> None:
    # An estimate of 200 against a window of 100 a second that counts refused requests
    # too: refused below the estimate at 10.0, after a second that took 90.
    adaptive = following(200.0, 0.7)
    answers = [9.0 + (i + 0.5) / 90 for i in range(90)]
    for at in answers:
        adaptive.accepted(at)
    adaptive.limited(10.0, since=0.0, current=190.0)  # the burst guess doubles: 0.2 s
    adaptive.pause(10.05, 0.05, rtt=0.001)
    # The window still holds that episode's refusals: each reopening is refused again
    # 60 ms later, after one answer. Those show no rate, and no larger burst either.
    t = 10.05
    for _ in range(6):
        t += 0.06
        answers.append(t - 0.005)
        adaptive.accepted(answers[-1])
        adaptive.limited(t, since=0.0, current=adaptive.rate)
        adaptive.pause(t + 0.05, 0.05, rtt=0.001)
    # Cut to no less than the last second's bound (with that burst), where six cuts of
    # 30 % each would leave 8 % of 200 (and a burst guess doubled to 1.6 s).
    took = sum(1 for at in answers if at > t - 1.0)
    assert adaptive.estimate == pytest.approx(took / 1.2, rel=0.02)


@pytest.mark.parametrize("trust", [0.7, 0.5])
def test_a_429_right_after_a_reopening_reaches_back_only_behind_a_measured_estimate(
    trust: float,
) -> None:
    # The last 429 at 9.94, the gate reopened at 9.99; one answer since, then refused at
    # 10.0 at 100/s, below the estimate; the last second took 91.
    adaptive = following(110.0, trust, 9.94, 9.99)
    for i in range(90):
        adaptive.accepted(9.0 + (i + 0.5) * 0.93 / 90)
    adaptive.accepted(9.995)
    adaptive.limited(10.0, since=0.0, current=100.0)
    assert adaptive.estimate is not None
    if trust >= 0.6:  # the last second bounds it (a second's windows, burst not doubled)
        assert adaptive.estimate == pytest.approx(91 / 1.1, rel=0.03)
    else:  # behind the ramp's estimate the second may hold a drained burst: cut by 30 %
        assert adaptive.estimate == pytest.approx(70.0)


def test_a_reopening_refused_with_nothing_taken_shows_a_window_not_a_fast_bucket() -> None:
    # The slow start overshoots a window of 100 a second: it takes 100 in the first
    # quarter second and refuses. The ramp's estimate (100 in 0.25 s) is far above it.
    adaptive = AdaptiveRate(ceiling=1000.0)
    adaptive.start(0.0, 50.0)
    for i in range(100):
        adaptive.accepted((i + 0.5) * 0.0025)
    adaptive.limited(0.25, since=0.0, current=800.0)
    adaptive.pause(0.30, 0.05, rtt=0.001)
    assert adaptive.estimate is not None and adaptive.estimate > 250.0
    ramp = adaptive.estimate
    # Refused again 3 ms after the last 429, nothing taken: no bucket of 100 a second
    # would have a token yet either. That shows nothing.
    adaptive.limited(0.253, since=0.0, current=adaptive.rate)
    assert adaptive.estimate == ramp
    adaptive.pause(0.303, 0.05, rtt=0.001)
    # The reopening 50 ms on is refused with nothing taken: a bucket sustaining the 100
    # a second it took would have had 5 tokens. A window full at what its second took.
    adaptive.limited(0.31, since=0.0, current=adaptive.rate)
    assert adaptive.estimate == pytest.approx(100.0)
    assert adaptive.rate == pytest.approx(95.0)
    # Once: as that second's answers leave the last second, later refusals with nothing
    # taken lower nothing more.
    adaptive.pause(0.40, 0.09, rtt=0.001)
    adaptive.limited(1.1, since=0.0, current=adaptive.rate)
    assert adaptive.estimate == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("trust", "took", "estimate", "cautious"),
    [
        (0.6, 100, 300.0, True),  # an estimate from measured time: an outage, say
        (0.5, 40, 300.0, True),  # too few to tell a window
        (0.5, 100, 90.0, True),  # the count is no lower than the estimate
        (0.5, 100, 300.0, False),  # behind a Retry-After (the window empties meanwhile)
    ],
)
def test_a_reopening_refused_with_nothing_taken_is_not_always_a_full_window(
    trust: float, took: int, estimate: float, cautious: bool
) -> None:
    adaptive = following(estimate, trust, 0.25, 0.30, ceiling=1000.0)
    for i in range(took):
        adaptive.accepted((i + 0.5) * 0.25 / took)
    adaptive.limited(0.31, since=0.0, current=adaptive.rate, cautious=cautious)
    assert adaptive.estimate == estimate  # nothing learned: the climb goes on


@pytest.mark.parametrize("trust", [0.7, 0.5])
def test_a_quick_429_below_the_ramps_estimate_doubles_the_assumed_burst(trust: float) -> None:
    # The last 429 at 9.5, reopened at 9.55, 40 answers since, refused at 10.0 below the
    # estimate. Behind an estimate from measured time that is the last episode's leftover;
    # behind the ramp's it may be a burst larger than assumed (0.2 s, then).
    adaptive = following(110.0, trust, 9.5, 9.55)
    answers = [9.55 + (i + 0.5) * 0.44 / 40 for i in range(40)]
    for at in answers:
        adaptive.accepted(at)
    adaptive.limited(10.0, since=9.52, current=100.0)
    burst = 0.1 if trust >= 0.6 else 0.2
    bound = 40 / (10.0 - answers[0] + burst)
    assert adaptive.estimate == pytest.approx(max(bound, 70.0))  # 70: CUBIC's 30 % cut
    assert (bound > 70.0) == (trust >= 0.6)


def two_drains(
    burst: float, first: float, second: float, tokens: float | None = None
) -> AdaptiveRate:
    """A bucket of 100/s drained from full at ``first``/s, then, a Retry-After of 1 s
    later, at ``second``/s from ``tokens`` (full by default)."""
    adaptive = AdaptiveRate()
    adaptive.start(0.0, 100.0)
    accepted, refused = drain(100.0, burst, first)
    limited_after(adaptive, accepted, refused, first, cautious=False)
    adaptive.pause(refused + 1.0, 1.0, rtt=0.002)
    accepted, refused = drain(100.0, burst, second, refused + 1.002, tokens)
    for at in accepted:
        adaptive.accepted(at)
    adaptive.limited(refused, since=0.0, current=second, cautious=False)
    adaptive.pause(refused + 1.0, 1.0, rtt=0.002)
    return adaptive


@pytest.mark.parametrize("burst", [50.0, 100.0])
def test_two_drains_of_a_bucket_from_full_bound_its_rate_whatever_its_burst(
    burst: float,
) -> None:
    # From accepted time (a burst of 0.1 s assumed) the second episode reads 166/s with
    # a burst of 50 and 254/s with 100; the next episode would come at once.
    adaptive = two_drains(burst, 700.0, 300.0)
    estimate = adaptive.estimate
    assert estimate is not None and 100.0 <= estimate <= 110.0
    assert trust_of(adaptive) >= 0.6  # measured: the climb holds its plateau below it
    assert adaptive.at(adaptive.resumed + 10.0) < estimate


def test_two_drains_confirm_an_estimate_from_accepted_time() -> None:
    # A burst of 20 (0.2 s): the bound from accepted time is right, but rests on the
    # assumed burst for 43 % of its window; the drains show it is measured.
    adaptive = two_drains(20.0, 1000.0, 171.3)
    assert adaptive.estimate == pytest.approx(98.2, abs=0.1)
    assert trust_of(adaptive) >= 0.6
    assert adaptive.at(adaptive.resumed + 10.0) < 98.2


def test_a_bucket_not_refilled_in_the_pause_takes_the_bound_from_the_previous_429() -> None:
    # A burst of 120 refills 100 in the 1 s pause: the second drain takes 20 fewer, and
    # the two drains read 60/s; the bound from the previous 429 (empty then) is exact.
    adaptive = two_drains(120.0, 700.0, 250.0, tokens=100.0)
    assert adaptive.estimate == pytest.approx(100.0, abs=1.0)


def test_two_drains_show_nothing_when_the_second_began_below_the_rate() -> None:
    # Back at 57/s (95 % of an estimate of 60) a bucket of 100/s stays full for 0.6 s,
    # then a burst drains it: the two drains read 60/s, which would hold the climb there.
    adaptive = AdaptiveRate()
    adaptive.adopt(0.0, Climb(60.0, 1.0, 1.0, 0.3, 55, 0.05, 0.0, 1.0))
    accepted = [1.002 + i / 57.0 for i in range(35)]
    more, refused = drain(100.0, 50.0, 1000.0, accepted[-1] + 0.001)
    for at in accepted + more:
        adaptive.accepted(at)
    adaptive.limited(refused, since=0.0, current=1000.0, cautious=False)
    assert adaptive.estimate is not None and adaptive.estimate >= 100.0


def test_answers_count_by_send_time_in_any_order_and_not_past_the_refused_one() -> None:
    # Answers come back in any order (a backend's latency varies), and some requests
    # sent after the refused one are answered before the learner decides: counted by
    # send time, only those sent before the refused one, it learns what it would have
    # from answers that came in order.
    accepted, refused = drain(100.0, 20.0, 400.0)
    in_order = AdaptiveRate()
    limited_after(in_order, accepted, refused, 400.0)
    shuffled = AdaptiveRate()
    times = accepted + [refused + 0.001 * i for i in range(1, 6)]
    random.Random(7).shuffle(times)
    for at in times:
        shuffled.accepted(at)
    shuffled.limited(refused, since=accepted[0] - 1e-9, current=400.0)
    assert in_order.estimate is not None
    assert shuffled.estimate == pytest.approx(in_order.estimate)
    assert shuffled.rate == pytest.approx(in_order.rate)


def test_a_windows_drain_counts_what_was_sent_until_the_gate_closed() -> None:
    # Jitter on the way: the last 5 requests the window took were sent after the one it
    # refused (which overtook them). Up to the refused one each episode counts 95, which
    # would read as a window of 95; up to when the gate closed, 100: the limit.
    adaptive = AdaptiveRate()
    adaptive.start(0.0, 10.0)
    resumed = 0.0
    for _ in range(2):
        send = 450.0 if resumed == 0.0 else adaptive.rate
        for i in [*range(1, 96), *range(97, 102)]:
            adaptive.accepted(resumed + i / send)
        refused, closed = resumed + 96 / send, resumed + 102 / send
        adaptive.limited(refused, since=-1e-9, current=send, closed=closed)
        adaptive.pause(closed + 1.0, 1.0, rtt=0.001)  # Retry-After: 1
        resumed = closed + 1.0
    assert adaptive.estimate == pytest.approx(100.0)


def test_a_limit_known_exactly_is_held_at_97_percent_any_other_at_98() -> None:
    # Paced at 98 % of a window's limit read exactly, with the pacing's two-token burst,
    # the server's count is at the limit: requests that the way to it bunches (0-50 ms
    # of jitter) drew a third episode. A limit known exactly is held a point lower.
    for trust, plateau in ((1.0, 0.97), (0.8, 0.98)):
        adaptive = following(100.0, trust)
        tops = [adaptive.grow(s / 100, saturated=True) for s in range(1, 301)]
        assert max(tops) == pytest.approx(plateau * 100.0)  # held for three climbs
        assert tops[-1] == pytest.approx(plateau * 100.0)
