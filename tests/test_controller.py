"""The pure rate controller both rate limiters host: driven by event times, nothing waits."""

from __future__ import annotations

import math

import pytest

from sendkit_async._controller import (
    AIMD,
    CHANGED,
    HEADERS,
    KEEP,
    NONE,
    STARTED,
    USER,
    RateController,
)
from sendkit_async._overload import ESCALATION, MAX_THROTTLE_COOLDOWN, PACED_COOLDOWN


def run_at(ctl: RateController, start: float, rate: float, seconds: float) -> float:
    """Send and accept requests at ``rate`` for ``seconds``; return the end time."""
    n = int(rate * seconds)
    now = start
    for i in range(n):
        now = start + i / rate
        ctl.sent(now)
        ctl.answered(0.01)
        ctl.accepted(now + 0.01, hinted=False)
    return now + 0.01


def test_starts_with_the_users_rate_or_nothing() -> None:
    assert (RateController(rate=5.0).rate, RateController(rate=5.0).source) == (5.0, USER)
    assert RateController(rate=5.0).burst == 5.0
    ctl = RateController()
    assert (ctl.rate, ctl.source) == (None, NONE)


def test_headers_give_limit_per_window_and_the_user_rate_caps_them() -> None:
    ctl = RateController()
    assert ctl.headers(0.0, 100, 99, 1.0, 1.0) is True
    assert (ctl.rate, ctl.burst, ctl.source) == (100.0, 100.0, HEADERS)
    assert ctl.headers(0.1, 100, 98, 0.9, 1.0) is False  # nothing new
    capped = RateController(rate=40.0, burst=10.0)
    capped.headers(0.0, 100, 99, 1.0, 1.0)
    assert (capped.rate, capped.burst) == (40.0, 10.0)


def test_a_short_first_reset_does_not_overshoot_a_token_bucket() -> None:
    # A 200/s bucket of 20 right after one request: reset = one token's refill time.
    ctl = RateController()
    ctl.headers(0.0, 20, 19, 0.005, None)
    assert ctl.rate == pytest.approx(200.0)  # not 20 / 0.005 = 4,000/s


def test_the_largest_reset_seen_elsewhere_is_taken() -> None:
    ctl = RateController()
    ctl.merge_period(2.0, None)
    ctl.headers(0.0, 100, 50, 0.5, None)
    assert ctl.rate == pytest.approx(50.0)  # 100 per the 2 s window another process saw


def test_remaining_is_net_of_requests_still_on_the_wire() -> None:
    assert RateController.net_remaining(10, 3) == 7.0
    assert RateController.net_remaining(2, 5) == 0.0
    assert RateController.net_remaining(4, -1) == 4.0


def test_cooldowns_escalate_per_episode_and_an_accepted_answer_resets_them() -> None:
    ctl = RateController(rate=10.0, adaptive=False)
    gate = -1.0
    seen = []
    for now in (0.0, 2.0, 4.0, 6.0, 8.0):
        cooldown, decrease = ctl.throttled(now, gate, None, None)
        assert decrease is False  # not adaptive
        assert cooldown is not None
        seen.append(cooldown)
        gate = now + cooldown
    base = max(PACED_COOLDOWN, 4.0 / 10.0)
    grown = [base * ESCALATION**k for k in range(3)]
    assert seen == pytest.approx([*grown, MAX_THROTTLE_COOLDOWN, MAX_THROTTLE_COOLDOWN])
    ctl.accepted(9.0, hinted=False)
    assert ctl.throttled(10.0, gate, None, None)[0] == base


def test_a_429_inside_a_closed_gate_is_the_same_episode() -> None:
    ctl = RateController(rate=10.0, adaptive=False)
    first, _ = ctl.throttled(0.0, -1.0, None, None)
    assert first is not None
    assert ctl.throttled(0.1, first, None, None) == (None, False)
    assert ctl.episodes == 1
    # A Retry-After is honoured even inside the gate: the server asked.
    assert ctl.throttled(0.2, first, 3.0, None)[0] == 3.0


def test_retry_after_zero_is_never_a_tight_loop() -> None:
    ctl = RateController(adaptive=False)
    gate = -1.0
    cooldowns = []
    for now in range(10):
        cooldown, _ = ctl.throttled(float(now), gate, 0.0, None)
        assert cooldown is not None
        cooldowns.append(cooldown)
        gate = now + cooldown
    assert cooldowns[0] == PACED_COOLDOWN
    assert cooldowns[-1] == MAX_THROTTLE_COOLDOWN
    assert cooldowns == sorted(cooldowns)


def test_a_bare_429_lowers_the_rate_once_per_episode() -> None:
    ctl = RateController()
    ctl.sent(0.0)
    ctl.answered(0.01)
    assert ctl.accepted(0.01, hinted=False) == STARTED
    assert ctl.source == AIMD
    for i in range(200):  # 100/s accepted for two seconds
        ctl.accepted(0.02 + i / 100, hinted=False)
    ctl.rate = 150.0  # the slow start overshot
    cooldown, decrease = ctl.throttled(2.1, -1.0, None, None)
    assert decrease is True and cooldown is not None
    assert ctl.rate is not None and 80.0 <= ctl.rate <= 100.0
    assert ctl.aimd.estimate is not None and 85.0 <= ctl.aimd.estimate <= 100.0
    lowered = ctl.rate
    # 429s of requests sent before the decrease lower nothing more.
    assert ctl.throttled(2.1 + cooldown / 2, 2.1 + cooldown, None, None)[1] is False
    assert ctl.rate == lowered
    assert ctl.hold_until >= 2.1 + cooldown


def test_a_5xx_counts_with_the_accepted_answers_and_grows_nothing() -> None:
    # nginx's limit_req counts what it let through to a backend that then failed: a run
    # with 5 % of 503s is as close to the limit as one without, and the estimate the same.
    def estimate(fail_every: int, report: bool) -> float:
        ctl = RateController()
        ctl.sent(0.0)
        ctl.answered(0.01)
        ctl.accepted(0.01, hinted=False)
        for i in range(200):  # 100/s let through for two seconds
            at = 0.02 + i / 100
            if fail_every and i % fail_every == 0:
                if report:
                    ctl.failed(at)
            else:
                ctl.accepted(at, hinted=False)
        ctl.rate = 150.0
        ctl.throttled(2.1, -1.0, None, None)
        assert ctl.aimd.estimate is not None
        return ctl.aimd.estimate

    clean = estimate(0, True)
    assert estimate(20, True) == pytest.approx(clean)
    assert estimate(20, False) < 0.97 * clean  # left out, they sank it
    fresh = RateController()
    fresh.failed(0.1)  # a fault starts no slow start and sets no rate
    assert (fresh.rate, fresh.source) == (None, NONE)


def test_no_decrease_while_headers_tell_the_rate() -> None:
    ctl = RateController()
    ctl.headers(0.0, 100, 0, 1.0, 1.0)
    cooldown, decrease = ctl.throttled(0.5, -1.0, None, 0.5)
    assert (decrease, ctl.rate) == (False, 100.0)
    assert cooldown == pytest.approx(PACED_COOLDOWN)  # capped by the announced reset


def test_slow_start_is_dropped_once_the_concurrency_cap_binds() -> None:
    ctl = RateController()
    ctl.sent(0.0)
    assert ctl.accepted(0.01, hinted=False) == STARTED
    assert ctl.accepted(0.02, hinted=False, busy=True) == CHANGED
    assert ctl.rate is None


def test_not_adaptive_learns_nothing() -> None:
    ctl = RateController(rate=7.0, adaptive=False)
    assert ctl.headers(0.0, 100, 99, 1.0, 1.0) is False
    assert ctl.accepted(0.1, hinted=False) == KEEP
    assert ctl.rate == 7.0


# -- shared: one schedule, the same rate in every process ----------------------------------


def test_a_followed_slow_start_doubles_on_a_fixed_schedule() -> None:
    ctl = RateController(shared=True)
    ctl.follow_start(0.0, 10.0, 0.0)
    ctl.measured = 1000.0  # the server accepts all we send
    assert ctl.rate_at(0.0) == pytest.approx(10.0)
    assert ctl.rate_at(0.05) == pytest.approx(20.0)
    assert ctl.rate_at(0.2) == pytest.approx(160.0)
    capped = RateController(rate=50.0, shared=True)
    capped.follow_start(0.0, 10.0, 0.0)
    capped.measured = 1000.0
    assert capped.rate_at(1.0) == 50.0


def test_a_shared_slow_start_grows_with_what_the_server_accepts() -> None:
    ctl = RateController(shared=True)
    ctl.follow_start(0.0, 10.0, 0.0)
    assert ctl.rate_at(1.0) == pytest.approx(10.0)  # nothing accepted yet: the first pace
    ctl.measured = 30.0
    # A few times what every process got through lately (answers come a round trip late).
    assert ctl.rate_at(1.0) == pytest.approx(90.0)
    ctl.measured = 1e6
    assert ctl.rate_at(0.1) == pytest.approx(40.0)  # and never faster than the doubling


def test_processes_following_one_schedule_send_at_the_same_rate() -> None:
    leader = RateController(shared=True)
    leader.sent(0.0)
    leader.accepted(0.01, hinted=False)
    start = leader.slow_start()
    assert start is not None
    others = [RateController(shared=True) for _ in range(3)]
    for ctl in [leader, *others]:
        ctl.measured = 80.0  # the same reply from Redis
    for i, ctl in enumerate(others):
        ctl.follow_start(0.5, *start)
        # Their own traffic (different amounts, waits) does not move the shared rate.
        for k in range(i * 10):
            ctl.accepted(0.5 + k / 1000, hinted=False)
        ctl.last_wait = 0.5 + i
    for now in (0.6, 0.75, 1.0):
        rates = {round(c.rate_at(now) or 0.0, 9) for c in [leader, *others]}
        assert len(rates) == 1


def test_a_shared_429_is_claimed_not_applied() -> None:
    ctl = RateController(shared=True)
    ctl.follow_start(0.0, 100.0, 0.0)
    before = ctl.rate_at(0.01)
    cooldown, decrease = ctl.throttled(0.01, -1.0, None, None)
    assert decrease is True and cooldown is not None and cooldown > 0
    assert ctl.rate_at(0.01) == before  # the epoch's leader decides
    assert ctl.throttled(0.02, -1.0, None, None)[1] is False  # held until Redis answers


def test_the_leader_learns_from_every_process_and_followers_adopt_its_climb() -> None:
    leader = RateController(shared=True)
    leader.sent(0.0)
    leader.follow_start(0.0, 1000.0, 0.0)
    accepted = [i / 100 for i in range(300)]  # every process together: 100/s for 3 s
    schedule = leader.lead(3.0, 1.0, accepted)
    assert schedule is not None
    estimate, start, climb, trust = (
        schedule.estimate,
        schedule.start,
        schedule.length,
        schedule.trust,
    )
    assert 90.0 <= estimate <= 100.0
    assert start == pytest.approx(4.0)  # the climb starts as the gate opens
    assert schedule.limited == 3.0
    assert schedule.resumed == pytest.approx(4.0)
    assert climb > 0 and 0 < trust <= 1
    follower = RateController(shared=True)
    follower.follow(3.5, schedule)
    assert follower.aimd.estimate == estimate
    # It would learn from the next 429 as the leader would: the same state.
    assert follower.aimd.schedule() == schedule
    assert follower.hold_until >= start
    for now in (3.5, 4.0, 6.0, 30.0):
        assert follower.rate_at(now) == pytest.approx(leader.rate_at(now) or 0.0)
    assert follower.rate_at(4.0) == pytest.approx(0.95 * estimate)
    assert estimate * 0.95 <= (follower.rate_at(4.0 + climb) or 0.0) <= estimate


def test_an_epoch_that_taught_nothing_restarts_one_slow_start() -> None:
    ctl = RateController(shared=True)
    ctl.answered(0.02)
    assert ctl.lead(1.0, 0.5, []) is None
    rate, start = ctl.restart(1.5)
    assert rate == pytest.approx(25.0)
    assert start == 1.5
    ctl.measured = 100.0
    assert ctl.rate_at(1.55) == pytest.approx(50.0)
    assert ctl.slow_start() == pytest.approx((25.0, 1.5))


def test_a_follower_that_leads_the_next_epoch_learns_as_the_first_leader_would() -> None:
    # A window of 100 per second that counts refusals: from a full start it accepts 100
    # at once, whatever the send rate. Process A leads the first episode...
    first = RateController(shared=True)
    first.sent(0.0)
    first.follow_start(0.0, 1000.0, 0.0)
    first.measured = 1e6
    burst = [0.001 * i for i in range(1, 101)]
    schedule = first.lead(0.2, 2.0, burst)
    assert schedule is not None and schedule.estimate > 150.0  # fooled by the full window
    # ...process B follows it, sees the same 100 accepted after the 2 s pause, and leads
    # the second: the same count twice from a full window is the window's limit.
    second = RateController(shared=True)
    second.sent(0.0)
    second.follow(2.1, schedule)
    again = [2.201 + 0.005 * i for i in range(100)]
    learned = second.lead(2.75, 2.0, burst + again)
    assert learned is not None
    assert learned.estimate == pytest.approx(100.0)
    assert learned.trust == 1.0


def fed(answered_by: float) -> tuple[RateController, list[int]]:
    """A controller that sent at 100/s for two seconds, each request answered 50 ms
    later, and heard the answers that came by ``answered_by``; the rest, by index."""
    ctl = RateController()
    ctl.sent(0.0)
    ctl.answered(0.05)
    late = []
    for i in range(200):
        if i / 100 + 0.05 <= answered_by:
            ctl.accepted(i / 100 + 0.05, hinted=False, sent=i / 100)
        else:
            late.append(i)
    ctl.rate = 150.0  # the slow start overshot
    return ctl, late


def test_a_429_with_earlier_requests_on_the_wire_is_learned_from_once_they_are_answered() -> None:
    # A gateway refuses the request sent at 2.0 at once; the backend answers what it
    # admitted 50 ms later. Decided at once, the learner misses those answers.
    waiting, late = fed(answered_by=2.0)
    assert late  # still on the wire when the 429 comes
    cooldown, decreased = waiting.throttled(2.0, -1.0, 1.0, None, sent=2.0, earlier=True)
    assert cooldown == 1.0 and decreased is False
    assert waiting.rate == 150.0 and waiting.pending is not None
    assert waiting.settle(2.5) is False  # the gate is closed: the answers may still come
    for i in late:
        waiting.accepted(i / 100 + 0.05, hinted=False, sent=i / 100)
    assert waiting.settle(2.06, oldest=math.inf) is True and waiting.pending is None
    in_hand, _ = fed(answered_by=3.0)
    assert in_hand.throttled(2.0, -1.0, 1.0, None, sent=2.0) == (1.0, True)
    assert waiting.rate == in_hand.rate and waiting.rate is not None and waiting.rate < 150.0
    assert waiting.aimd.estimate == in_hand.aimd.estimate
    assert waiting.hold_until == in_hand.hold_until  # the climb starts as the gate opens
    hasty, _ = fed(answered_by=2.0)
    hasty.throttled(2.0, -1.0, 1.0, None, sent=2.0)
    assert hasty.aimd.estimate is not None and in_hand.aimd.estimate is not None
    assert hasty.aimd.estimate < in_hand.aimd.estimate


def test_a_pending_episode_is_decided_when_its_gate_opens_at_the_latest() -> None:
    ctl, _ = fed(answered_by=2.0)
    cooldown, _ = ctl.throttled(2.0, -1.0, 1.0, None, sent=2.0, earlier=True)
    assert cooldown == 1.0
    # Another 429 inside the closed gate waits with it; one after the gate opened
    # decides the pending episode first (and says the rate changed: the host applies
    # it to its bucket), then waits as the next one.
    assert ctl.throttled(2.5, 3.0, 1.0, None, sent=2.49, earlier=True)[1] is False
    assert ctl.pending is not None and ctl.rate == 150.0
    assert ctl.settle(2.99) is False
    opened, _ = fed(answered_by=2.0)
    opened.throttled(2.0, -1.0, 1.0, None, sent=2.0, earlier=True)
    assert opened.settle(3.0) is True and opened.pending is None
    assert ctl.throttled(3.01, 3.0, 1.0, None, sent=3.0, earlier=True)[1] is True
    assert ctl.pending is not None and ctl.pending[0] == 3.0 and ctl.rate == opened.rate
    assert ctl.rate is not None and ctl.rate < 150.0


def test_every_answer_of_an_episode_counts_also_the_first_sent() -> None:
    # A sliding window of 100 a second, drained twice from full: the first request of
    # the run and the first after the gate reopened are dated by their send times, as
    # the episode's start and its reopening are: each drain counts 100, and two equal
    # counts are the window's limit, exactly (99 would sink the run by 1 % for good).
    ctl = RateController()
    ctl.sent(0.0)
    ctl.answered(0.002)
    for i in range(100):
        ctl.accepted(i / 400 + 0.002, hinted=False, sent=i / 400)
    ctl.rate = 400.0
    cooldown, _ = ctl.throttled(0.25, -1.0, 1.0, None, sent=0.25)
    assert cooldown == 1.0
    for i in range(100):
        ctl.accepted(1.25 + i / 200 + 0.002, hinted=False, sent=1.25 + i / 200)
    ctl.rate = 200.0
    ctl.throttled(1.75, 1.25, 1.0, None, sent=1.75)
    assert ctl.aimd.estimate == 100.0


def test_headers_that_came_while_an_episode_was_pending_rule() -> None:
    ctl, _ = fed(answered_by=2.0)
    ctl.throttled(2.0, -1.0, 1.0, None, sent=2.0, earlier=True)
    assert ctl.headers(2.03, 100, 40, 1.0, None) is True
    assert ctl.settle(2.06, oldest=math.inf) is False and ctl.pending is None
    assert ctl.source == HEADERS and ctl.rate == 100.0


def test_a_held_429_that_decides_the_pending_episode_reports_the_change() -> None:
    # The host applies the rate to its bucket only when told it changed.
    ctl, _ = fed(answered_by=2.0)
    ctl.srtt = 1.0  # slow answers: the decrease holds back 429s for 2 s after it came
    ctl.throttled(2.0, -1.0, 1.0, None, sent=2.0, earlier=True)
    cooldown, changed = ctl.throttled(3.01, 3.0, 1.0, None, sent=3.0, earlier=True)
    assert changed is True and ctl.pending is None and cooldown == 1.0
    assert ctl.hold_until == 4.0 and ctl.rate is not None and ctl.rate < 150.0
