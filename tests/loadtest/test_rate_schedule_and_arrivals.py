"""Rate control is pure: the ramp's integral, exact per-second constant arrivals, Poisson."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.rate import ConstantArrivals, PoissonArrivals, RateSchedule, make_arrivals


def test_ramp_steps_every_interval_and_stops_at_max() -> None:
    s = RateSchedule(10, step=10, interval=2, max=50)
    assert [s.rate(t) for t in (0, 1.9, 2, 3.99, 4, 8, 100)] == [10, 10, 20, 20, 30, 50, 50]
    # The integral: 2 s at 10, 2 s at 20, then 1 s at 30.
    assert s.expected(5) == pytest.approx(20 + 40 + 30)


def test_constant_arrivals_give_the_plan_per_second_whatever_the_ticks() -> None:
    s = RateSchedule(10, step=10, interval=2, max=50)
    arrivals = ConstantArrivals(s)
    rng = random.Random(1)
    per_second = [0] * 12
    t = 0.0
    while t < 12:
        nxt = t + rng.uniform(0.0001, 0.05)
        if int(nxt) > int(t):
            # As the engine does: run what was due before the second closes.
            per_second[int(t)] += arrivals.due(math.floor(nxt) - 1e-9)
        t = nxt
        if t < 12:
            per_second[int(t)] += arrivals.due(t)
    assert per_second == [10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 50, 50]


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 500), step=st.floats(0, 100), interval=st.floats(0.1, 10),
    extra=st.floats(0, 500), t=st.floats(0, 100),
)
def test_expected_is_the_integral_of_rate(
    start: float, step: float, interval: float, extra: float, t: float
) -> None:
    s = RateSchedule(start, step=step, interval=interval, max=start + extra)
    n = 2000
    riemann = sum(s.rate((i + 0.5) * t / n) for i in range(n)) * t / n
    # Midpoint sums are exact except in the few slices a step falls in.
    steps = t / interval + 1
    assert s.expected(t) == pytest.approx(riemann, abs=(start + extra) * t / n * 2 * steps + 1e-6)


def test_poisson_arrivals_average_the_rate() -> None:
    arrivals = PoissonArrivals(RateSchedule(200), random.Random(3))
    total = sum(arrivals.due(t / 100) for t in range(1, 2001))  # 20 s
    assert abs(total - 4000) < 4 * math.sqrt(4000)


def test_bad_schedules_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="below"):
        RateSchedule(10, step=1, interval=1, max=5)
    with pytest.raises(ValueError, match="interval"):
        RateSchedule(10, step=1, interval=0)
    with pytest.raises(ValueError, match="unknown arrival"):
        make_arrivals("bursty", RateSchedule(1), random.Random())


def test_retarget_changes_the_rate_without_a_burst_or_a_gap() -> None:
    s = RateSchedule(10, step=10, interval=5, max=100)
    arrivals = ConstantArrivals(s)
    started = [arrivals.due(t / 10) for t in range(0, 71)]  # 0..7 s, ticks of 100 ms
    assert sum(started) == math.ceil(s.expected(7.0) - 1e-9)
    before = s.expected(7.0)
    s.retarget(7.0, 55)
    assert s.expected(7.0) == pytest.approx(before)  # continuous at the switch
    assert s.rate(7.0) == s.rate(60.0) == 55  # and the ramp is over
    got = sum(arrivals.due(7.0 + t / 10) for t in range(1, 21))  # the next 2 s
    assert got == pytest.approx(110, abs=1)
    with pytest.raises(ValueError, match="back in time"):
        s.retarget(6.0, 10)
    with pytest.raises(ValueError, match="calls/s"):
        s.retarget(8.0, -1)


def test_poisson_arrivals_restart_when_a_zero_rate_is_changed() -> None:
    s = RateSchedule(0)
    arrivals = PoissonArrivals(s, random.Random(7))
    assert arrivals.due(10.0) == 0
    s.retarget(10.0, 200)
    n = sum(arrivals.due(10.0 + t / 100) for t in range(1, 101))
    assert 120 < n < 280  # 200/s over a second, within a wide Poisson margin
