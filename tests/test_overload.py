"""The pure overload decisions: 429 cooldowns, the retry budget and the fault circuit."""

from __future__ import annotations

import math

import pytest

from sendkit_async._overload import (
    BARE_COOLDOWN,
    CLOSED,
    ESCALATION,
    MAX_THROTTLE_COOLDOWN,
    OPEN,
    PACED_COOLDOWN,
    PROBING,
    FaultCircuit,
    RetryBudget,
    throttle_cooldown,
)

# -- throttle_cooldown ------------------------------------------------------------------


def test_retry_after_is_honoured_as_asked() -> None:
    assert throttle_cooldown(1, 100.0, 2.0, None) == 2.0
    assert throttle_cooldown(1, None, 0.2, None) == 0.2
    assert throttle_cooldown(3, 100.0, 30.0, 5.0) == 30.0


def test_retry_after_zero_is_never_a_tight_loop() -> None:
    waits = [throttle_cooldown(e, 100.0, 0.0, None) for e in range(1, 11)]
    assert waits[0] == PACED_COOLDOWN
    assert waits == sorted(waits)
    assert waits[1] == ESCALATION * PACED_COOLDOWN
    assert waits[-1] == MAX_THROTTLE_COOLDOWN
    # A whole 5 s of nothing but 429s with Retry-After: 0 costs a dozen probes at most
    # (the bound is 10 a second).
    elapsed, probes = 0.0, 0
    while elapsed < 5.0:
        probes += 1
        elapsed += throttle_cooldown(probes, 100.0, 0.0, None)
    assert probes <= 12


def test_hintless_cooldown_rests_on_the_rate_and_escalates_to_the_cap() -> None:
    assert throttle_cooldown(1, None, None, None) == BARE_COOLDOWN
    assert throttle_cooldown(1, 10.0, None, None) == pytest.approx(0.4)
    assert throttle_cooldown(1, 1000.0, None, None) == PACED_COOLDOWN
    assert throttle_cooldown(2, None, None, None) == ESCALATION * BARE_COOLDOWN
    assert throttle_cooldown(50, None, None, None) == MAX_THROTTLE_COOLDOWN


def test_an_announced_reset_caps_our_own_cooldown() -> None:
    assert throttle_cooldown(1, None, None, 0.2) == 0.2
    assert throttle_cooldown(1, None, None, 0.001) == PACED_COOLDOWN
    assert throttle_cooldown(1, None, None, 60.0) == BARE_COOLDOWN


@pytest.mark.parametrize("bad", [math.inf, math.nan, -1.0])
def test_non_finite_hints_count_as_absent(bad: float) -> None:
    assert throttle_cooldown(1, None, bad, bad) == BARE_COOLDOWN


# -- RetryBudget ------------------------------------------------------------------------


def test_the_retry_budget_stops_retries_when_exhausted_and_refills() -> None:
    budget = RetryBudget(ratio=0.2, per_second=5.0, cap=50.0, now=0.0)
    allowed = 0
    while budget.withdraw(0.0) == 0.0:
        allowed += 1
    assert allowed == 10  # the starting reserve
    wait = budget.withdraw(0.0)
    assert wait == pytest.approx(1 / 5.0)  # one token accrues at per_second
    assert budget.withdraw(0.1) > 0.0
    assert budget.withdraw(0.2) == 0.0  # refilled by time
    for _ in range(5):
        budget.deposit()  # five first attempts: one retry's worth at ratio 0.2
    assert budget.withdraw(0.2) == 0.0
    assert budget.withdraw(0.2) > 0.0


def test_the_retry_budget_never_runs_dry_at_five_percent_faults() -> None:
    budget = RetryBudget(now=0.0)
    now = 0.0
    for i in range(10_000):  # 1,000 requests a second, every 20th retried
        now = i / 1000
        budget.deposit()
        if i % 20 == 0:
            assert budget.withdraw(now) == 0.0
    assert budget.balance == budget.cap


def test_the_retry_budget_is_capped() -> None:
    budget = RetryBudget(cap=20.0, now=0.0)
    budget.withdraw(1e6)
    assert budget.balance == 19.0
    with pytest.raises(ValueError, match="per_second"):
        RetryBudget(per_second=0)


# -- FaultCircuit -----------------------------------------------------------------------


def feed(circuit: FaultCircuit, now: float, oks: int, faults: int) -> None:
    for _ in range(oks):
        circuit.record(now, True)
    for _ in range(faults):
        circuit.record(now, False)


def test_the_circuit_never_opens_at_isolated_faults() -> None:
    circuit = FaultCircuit()
    for i in range(20_000):  # 100/s with every 20th (and a burst of 40 %) failing
        now = i / 100
        circuit.record(now, ok=i % 20 != 0 and not (5000 <= i < 5010 and i % 5 < 2))
        assert circuit.state == CLOSED


def test_the_circuit_opens_when_most_attempts_fail() -> None:
    circuit = FaultCircuit(min_requests=10, max_streak=1000)
    feed(circuit, 0.0, 3, 6)
    assert circuit.state == CLOSED  # 9 outcomes: below the minimum volume
    circuit.record(0.0, False)
    assert circuit.state == OPEN  # 10 outcomes, 3 accepted: 10 > 2 * 3
    assert circuit.admit(0.05) == pytest.approx(0.05)


def test_old_outcomes_leave_the_window() -> None:
    circuit = FaultCircuit(window=1.0, buckets=10, min_requests=10, max_streak=1000)
    feed(circuit, 0.0, 100, 0)
    feed(circuit, 0.95, 0, 60)
    assert circuit.state == CLOSED  # 100 accepts still in the window
    feed(circuit, 1.5, 0, 40)  # the accepts at 0.0 have slid out
    assert circuit.state == OPEN


def test_faults_in_a_row_open_the_circuit_however_slow() -> None:
    circuit = FaultCircuit(max_streak=5)
    for i in range(4):
        circuit.record(10.0 * i, False)  # one fault per 10 s: the window never fills
    assert circuit.state == CLOSED
    circuit.record(40.0, True)  # an answer ends the streak
    for i in range(4):
        circuit.record(50.0 + 10.0 * i, False)
    assert circuit.state == CLOSED
    circuit.record(90.0, False)
    assert circuit.state == OPEN


def test_an_open_circuit_lets_one_probe_through_and_backs_off() -> None:
    circuit = FaultCircuit(probe_interval=0.1, max_probe_interval=0.5)
    feed(circuit, 0.0, 0, 10)
    assert circuit.admit(0.0) == pytest.approx(0.1)
    assert circuit.admit(0.1) is None  # the probe
    assert circuit.state == PROBING
    assert (circuit.admit(0.1) or 0.0) > 0.0  # the others wait for its answer
    circuit.record(0.15, False, probe=True)
    assert circuit.state == OPEN
    assert circuit.admit(0.15) == pytest.approx(0.2)  # the interval doubled
    probes, now = 0, 0.15
    while now < 5.15:  # a five-second outage: a trickle of probes
        wait = circuit.admit(now)
        if wait is None:
            probes += 1
            circuit.record(now, False, probe=True)
            continue
        now += wait
    assert 9 <= probes <= 12  # one per half second once backed off


def test_an_answered_probe_closes_the_circuit_at_once() -> None:
    circuit = FaultCircuit()
    feed(circuit, 0.0, 0, 10)
    assert circuit.admit(1.0) is None
    circuit.record(1.01, True, probe=True)
    assert circuit.state == CLOSED
    assert circuit.admit(1.01) == 0.0
    circuit.record(1.02, False)  # the window was cleared: one fault opens nothing
    assert circuit.state == CLOSED


def test_a_lost_or_silent_probe_is_replaced() -> None:
    circuit = FaultCircuit(probe_interval=0.1, max_probe_interval=0.5)
    feed(circuit, 0.0, 0, 10)
    assert circuit.admit(0.2) is None
    circuit.probe_lost(0.3)  # cancelled before it was sent
    assert circuit.admit(0.3) is None
    # Never answered at all: after a few probe intervals another goes.
    assert (circuit.admit(0.31) or 0.0) > 0
    assert circuit.admit(0.3 + 4 * 0.5) is None


def test_a_late_answer_closes_an_open_circuit() -> None:
    circuit = FaultCircuit()
    feed(circuit, 0.0, 0, 10)
    circuit.record(0.01, False)
    assert circuit.state == OPEN
    circuit.record(0.02, True)  # sent before the outage was seen, answered now
    assert circuit.state == CLOSED


def test_the_short_lane_for_answers_counts_as_record_does() -> None:
    slow, fast = FaultCircuit(), FaultCircuit()
    for i in range(300):
        now = i * 0.013
        ok = i % 7 != 0
        slow.record(now, ok)
        if ok:
            fast.accepted(now)
        else:
            fast.record(now, False)
        assert (slow._requests, slow._accepts, slow._streak, slow.state) == (
            fast._requests,
            fast._accepts,
            fast._streak,
            fast.state,
        )
